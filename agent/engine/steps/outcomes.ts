/** What the entry and the inventory record of an attempt's writes (shared by the apply and prune steps). */
import type { WriteOutcome } from "../../apply/apply.ts";
import { joinMessages } from "../../object/message.ts";
import { objectId } from "../../object/object.ts";
import type { InventoryItem, ObjectRecord } from "../../object/records.ts";
import type { Plan, PlannedChange } from "../../plan/plan.ts";

/** Records on each object whether its write was acknowledged, failed (and why) or never sent. */
export function noteWrites(records: Map<string, ObjectRecord>, outcomes: readonly WriteOutcome[]): void {
  for (const o of outcomes) {
    const rec = records.get(objectId(o.ref));
    if (!rec) continue;
    rec.status = o.status;
    if (o.error) rec.message = o.error;
  }
}

/**
 * "partially applied: 40 of 600 (8 failed, 552 not attempted): <errors>" over every planned write, within the
 * message limit (each object's error is on its own record).
 */
export function writesMessage(
  outcomes: readonly WriteOutcome[],
  problems: ReadonlyArray<{ subject: string; message: string }>,
): string {
  const done = outcomes.filter((o) => o.status === "applied").length;
  const failed = outcomes.filter((o) => o.status === "failed");
  const unsent = outcomes.filter((o) => o.status === "not-attempted").length;
  const total = outcomes.length;
  const head =
    done === total
      ? `applied ${done} of ${total}`
      : done === 0
        ? `nothing applied: 0 of ${total}`
        : `partially applied: ${done} of ${total}`;
  const counts = [
    ...(failed.length > 0 ? [`${failed.length} failed`] : []),
    ...(unsent > 0 ? [`${unsent} not attempted`] : []),
  ].join(", ");
  const errors = [...failed.map((o) => ({ subject: o.subject, message: o.error ?? "failed" })), ...problems];
  const prefix = `${head}${counts ? ` (${counts})` : ""}`;
  return errors.length === 0 ? prefix : joinMessages(errors, { prefix: `${prefix}: ` });
}

/** The inventory after a full apply: every desired object with its manifest digest. */
export function desiredInventory(p: Plan, digests: Map<string, string>): InventoryItem[] {
  return p.changes.filter((c) => c.desired).map((c) => inventoryItem(c, digests));
}

/** One desired object as the inventory records it: ref, manifest digest and where it was rendered from. */
export function inventoryItem(c: PlannedChange, digests: Map<string, string>): InventoryItem {
  return { ref: c.ref, digest: digests.get(c.id) ?? "", ...(c.source ? { source: c.source } : {}) };
}

/** The inventory after a partial apply: what was owned before plus what this attempt wrote. */
export function mergeInventory(
  previous: InventoryItem[],
  p: Plan,
  digests: Map<string, string>,
  wrote: (id: string) => boolean,
): InventoryItem[] {
  const out = new Map(previous.map((i) => [objectId(i.ref), i]));
  for (const c of p.changes) {
    if (c.desired && wrote(c.id)) out.set(c.id, inventoryItem(c, digests));
  }
  return [...out.values()];
}
