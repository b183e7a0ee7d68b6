/**
 * Drift is a change or deletion, by another manager, of a field berth owns. It is found on managed
 * fields: the paths in berth's Apply entry before the change that are gone from it after, while
 * berth's entry kept its time (so berth itself did not re-apply). Fields other managers own — an
 * HPA's replicas, a controller's status, defaulted fields — are never in berth's set, so never drift.
 */
import type { KubeObject, ObjectRef } from "../object/object.ts";
import { berthEntry, fieldPaths, managerOf } from "./fields.ts";
import { changedStringDataPaths } from "./secret-data.ts";

/** One out-of-band change of fields berth owns. */
export interface DriftFinding {
  ref: ObjectRef;
  /** The manager that took (or removed) the fields, from managedFields; "unknown" for deletions. */
  manager: string;
  /** Paths berth owned that another manager changed or removed; ["/"] when the object was deleted. */
  fields: string[];
  deleted: boolean;
}

/**
 * Compares the object berth last saw with its new state; `after` undefined means deleted.
 * `before` may be stripped (only berth's own field set is needed from it).
 */
export function detectDrift(
  ref: ObjectRef,
  before: KubeObject | undefined,
  after: KubeObject | undefined,
): DriftFinding | undefined {
  const was = berthEntry(before);
  if (!was) return undefined; // never seen applied by berth: nothing to compare with
  if (!after) return { ref, manager: "unknown", fields: ["/"], deleted: true };
  const now = berthEntry(after);
  if (now && now.time !== was.time) return undefined; // berth applied again: the new set is the baseline
  const kept = new Set(now ? fieldPaths(now.fieldsV1) : []);
  const lost = fieldPaths(was.fieldsV1).filter((p) => !kept.has(p));
  // A Secret's stringData keys show an out-of-band edit only in the value of data (see secret-data.ts).
  for (const p of changedStringDataPaths(before, after, [...kept])) if (!lost.includes(p)) lost.push(p);
  if (lost.length === 0) return undefined;
  const managers = new Map<string, string[]>();
  for (const p of lost) {
    const m = managerOf(after, p);
    managers.set(m, [...(managers.get(m) ?? []), p]);
  }
  // Name the manager that took most of the fields; every field is listed.
  const manager = [...managers.entries()].sort((a, b) => b[1].length - a[1].length)[0]?.[0] ?? "unknown";
  return { ref, manager, fields: lost, deleted: false };
}
