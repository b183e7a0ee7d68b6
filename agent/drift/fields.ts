/** Field sets of managedFields (fieldsV1) as readable paths, and who owns or took a path. */
import { FIELD_MANAGER, type KubeObject, type ManagedFieldsEntry } from "../object/object.ts";

/**
 * The leaf paths of a fieldsV1 set, JSON-pointer style: `f:spec` → `/spec`, a keyed list item
 * `k:{"name":"c"}` → `/name=c`, a set value `v:"x"` → `/x`, an index `i:0` → `/0`.
 */
export function fieldPaths(fieldsV1: unknown, prefix = ""): string[] {
  if (fieldsV1 === null || typeof fieldsV1 !== "object") return prefix ? [prefix] : [];
  const keys = Object.keys(fieldsV1 as Record<string, unknown>).filter((k) => k !== ".");
  if (keys.length === 0) return prefix ? [prefix] : [];
  const out: string[] = [];
  for (const key of keys.sort()) {
    out.push(...fieldPaths((fieldsV1 as Record<string, unknown>)[key], `${prefix}/${segment(key)}`));
  }
  return out;
}

function segment(key: string): string {
  const kind = key.slice(0, 2);
  const rest = key.slice(2);
  if (kind === "f:" || kind === "i:") return escapeKey(rest);
  if (kind === "k:") {
    try {
      const parts = Object.entries(JSON.parse(rest) as Record<string, unknown>).map(
        ([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`,
      );
      return escapeKey(parts.join(","));
    } catch {
      return escapeKey(rest);
    }
  }
  if (kind === "v:") {
    try {
      const v = JSON.parse(rest) as unknown;
      return escapeKey(typeof v === "string" ? v : JSON.stringify(v));
    } catch {
      return escapeKey(rest);
    }
  }
  return escapeKey(key);
}

function escapeKey(s: string): string {
  return s.replace(/~/g, "~0").replace(/\//g, "~1");
}

/** berth's own Apply entry of an object (not a subresource's), if any. */
export function berthEntry(obj: KubeObject | undefined): ManagedFieldsEntry | undefined {
  return obj?.metadata.managedFields?.find(
    (m) => m.manager === FIELD_MANAGER && m.operation === "Apply" && !m.subresource,
  );
}

/** Which manager now owns `path` in `obj`, else the manager that wrote last (besides berth and status writers). */
export function managerOf(obj: KubeObject, path: string): string {
  const entries = (obj.metadata.managedFields ?? []).filter((m) => m.manager !== FIELD_MANAGER);
  for (const m of entries) {
    if (m.fieldsV1 && fieldPaths(m.fieldsV1).some((p) => p === path || p.startsWith(`${path}/`))) {
      return m.manager ?? "unknown";
    }
  }
  const writers = entries.filter((m) => m.subresource !== "status");
  writers.sort((a, b) => String(b.time ?? "9999").localeCompare(String(a.time ?? "9999")));
  return writers[0]?.manager ?? "unknown";
}
