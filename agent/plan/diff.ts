/** Field-level differences between a live object and what the server would store. */
import type { KubeObject } from "../object/object.ts";

/** One changed field, by JSON pointer. `before`/`after` are absent when the field was added/removed. */
export interface DiffEntry {
  path: string;
  before?: unknown;
  after?: unknown;
}

/** Fields the server owns or that change on every write; never a reason to apply. */
const VOLATILE = new Set([
  "/metadata/managedFields",
  "/metadata/resourceVersion",
  "/metadata/generation",
  "/status",
]);

/** Differences between two objects, ignoring server-owned fields; Secret values are redacted. */
export function diffObjects(before: KubeObject | undefined, after: KubeObject): DiffEntry[] {
  const out: DiffEntry[] = [];
  walk(before, after, "", out);
  if (after.kind === "Secret" && after.apiVersion === "v1") {
    for (const entry of out) {
      if (/^\/(data|stringData)(\/|$)/.test(entry.path)) {
        if ("before" in entry) entry.before = "(redacted)";
        if ("after" in entry) entry.after = "(redacted)";
      }
    }
  }
  return out;
}

function walk(a: unknown, b: unknown, path: string, out: DiffEntry[]): void {
  if (VOLATILE.has(path)) return;
  if (isRecord(a) && isRecord(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const key of [...keys].sort()) walk(a[key], b[key], `${path}/${escapePointer(key)}`, out);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    for (let i = 0; i < a.length; i++) walk(a[i], b[i], `${path}/${i}`, out);
    return;
  }
  if (JSON.stringify(a) === JSON.stringify(b)) return;
  const entry: DiffEntry = { path: path || "/" };
  if (a !== undefined) entry.before = a;
  if (b !== undefined) entry.after = b;
  out.push(entry);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function escapePointer(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}
