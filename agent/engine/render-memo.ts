/**
 * The RenderMemo of a successful attempt: each rendered object, in render order, by the digest of the
 * manifest the ledger stored of it, so a later process with the same durable render key can hand the plan the
 * same objects without rendering (agent/ledger/README.md, "Render memo").
 */
import { objectId, refOf } from "../object/object.ts";
import type { RenderMemo } from "../object/records.ts";
import type { Attempt } from "./attempt.ts";

/**
 * The attempt's RenderMemo, or undefined when it is not reusable or any rendered object cannot be matched to
 * exactly one stored manifest (then the next process renders again).
 */
export function renderMemoOf(a: Attempt): RenderMemo | undefined {
  const { reusable, plan, digest } = a;
  if (!reusable || !plan || digest === undefined || plan.errors.length > 0) return undefined;
  // Source file by object id, of each planned object that has a manifest.
  const planned = new Map<string, string>();
  for (const c of plan.changes) if (c.desired) planned.set(c.id, c.source ?? "");
  const objects: RenderMemo["objects"] = [];
  const seen = new Set<string>();
  for (const d of a.desired) {
    const ref = refOf(d.object);
    // The plan gives a namespaced object without one the app's namespace; that is the id it is stored under.
    const own = objectId(ref);
    const defaulted =
      !ref.namespace && a.app.namespace ? objectId({ ...ref, namespace: a.app.namespace }) : undefined;
    const id = planned.has(own)
      ? own
      : defaulted !== undefined && planned.has(defaulted)
        ? defaulted
        : undefined;
    const stored = id === undefined ? undefined : a.manifests.get(id);
    if (id === undefined || !stored || planned.get(id) !== d.source || seen.has(id)) return undefined;
    seen.add(id);
    objects.push(
      id === own
        ? { digest: stored, source: d.source }
        : { digest: stored, source: d.source, defaultedNamespace: true },
    );
  }
  return { key: reusable.key, digest, objects, skipped: [...reusable.skipped], files: reusable.files };
}
