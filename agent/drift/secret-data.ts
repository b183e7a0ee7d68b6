/**
 * A Secret's `stringData` is write-only: the API server merges it into `data` and stores no `stringData`.
 * berth's Apply entry therefore owns `/stringData/K`, while whoever later writes key K — through `data` or
 * through `stringData` alike — is recorded as owning `/data/K`, so berth's own field set never changes and
 * managed fields alone cannot show the edit. The value can: `data.K` changed while berth did not apply.
 */
import type { KubeObject } from "../object/object.ts";

const STRING_DATA = "/stringData/";

/**
 * The `/data/K` paths of a core Secret whose value changed between `before` and `after`, for every key K
 * berth sets through `stringData` (paths of berth's field set, as `fieldPaths` gives them). Compares the
 * stored (base64) values only; the values themselves never leave this function.
 */
export function changedStringDataPaths(
  before: KubeObject | undefined,
  after: KubeObject,
  berthPaths: readonly string[],
): string[] {
  if (after.apiVersion !== "v1" || after.kind !== "Secret" || !before) return [];
  const was = dataOf(before);
  const now = dataOf(after);
  return berthPaths
    .filter((p) => p.startsWith(STRING_DATA) && p.length > STRING_DATA.length)
    .map((p) => p.slice(STRING_DATA.length))
    .filter((key) => {
      const k = unescapeKey(key);
      return was[k] !== now[k];
    })
    .map((key) => `/data/${key}`);
}

function dataOf(obj: KubeObject): Record<string, unknown> {
  const data = obj.data;
  return data !== null && typeof data === "object" ? (data as Record<string, unknown>) : {};
}

/** Reverses fields.ts's JSON-pointer escaping of a key. */
function unescapeKey(s: string): string {
  return s.replace(/~1/g, "/").replace(/~0/g, "~");
}
