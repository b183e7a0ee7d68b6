/** 4. Apply: the manifests go to the ledger, then what the plan says changed is written, in stages. */
import { applyStaged, type WriteOutcome } from "../../apply/apply.ts";
import { messageOf } from "../../object/errors.ts";
import { objectId } from "../../object/object.ts";
import type { ObjectRecord } from "../../object/records.ts";
import { hasWrites } from "../../plan/plan.ts";
import { type Planned, type Stop, timed } from "../attempt.ts";
import type { EngineDeps } from "../ports.ts";
import { inventoryItem, mergeInventory, noteWrites, writesMessage } from "./outcomes.ts";

/**
 * A no-op of the render the app's last entry recorded: its manifests are stored already and the inventory
 * holds their digests, so they are not digested and stored again. Undefined when any is missing.
 */
function reusedDigests(deps: EngineDeps, a: Planned): Map<string, string> | undefined {
  if (hasWrites(a.plan) || a.digest === undefined || deps.ledger.lastRender?.(a.app.name) !== a.digest)
    return undefined;
  const known = new Map(a.previous.map((i) => [objectId(i.ref), i.digest]));
  const digests = new Map<string, string>();
  for (const c of a.plan.changes) {
    if (!c.desired) continue;
    const digest = known.get(c.id);
    if (!digest) return undefined;
    digests.set(c.id, digest);
  }
  return digests.size === known.size ? digests : undefined;
}

/** Stores the planned manifests and applies the plan's writes; a failed or stopped apply prunes nothing. */
export async function applyChanges(deps: EngineDeps, a: Planned): Promise<Stop | undefined> {
  const { app, plan, records } = a;
  a.manifests =
    reusedDigests(deps, a) ??
    (await deps.ledger.putManifests(plan.changes.flatMap((c) => (c.desired ? [c.desired] : []))));
  const digests = a.manifests;
  for (const c of plan.changes) {
    const rec: ObjectRecord = { ref: c.ref, action: c.action };
    const digest = digests.get(c.id);
    if (digest) rec.digest = digest;
    if (c.note) rec.message = c.note;
    records.set(c.id, rec);
  }
  if (!hasWrites(plan)) return undefined;

  // Nothing is applied that the ledger could not record: check it can still write right before applying.
  try {
    deps.ledger.preflight?.();
  } catch (err) {
    return { reason: "ApplyFailed", message: `nothing applied: ${messageOf(err)}` };
  }
  // Claim first: if the process dies mid-apply, what it wrote stays owned and a later sync can prune it.
  deps.ledger.claimInventory(
    app.name,
    plan.changes.filter((c) => c.action === "created" && c.desired).map((c) => inventoryItem(c, digests)),
  );
  const applied = await timed(deps, a, "apply", () =>
    applyStaged(plan.changes, deps.cluster, {
      force: app.force,
      health: deps.health,
      ...(a.signal ? { signal: a.signal } : {}),
      onApplied: (o) => {
        deps.emit?.({
          type: "applied",
          app: app.name,
          subject: o.subject,
          action: records.get(objectId(o.ref))?.action ?? "configured",
          ok: o.status === "applied",
          ...(o.error ? { error: o.error } : {}),
        });
      },
    }),
  );
  a.applied = applied.outcomes;
  noteWrites(records, applied.outcomes);
  for (const p of applied.problems) {
    const rec = records.get(objectId(p.ref));
    if (rec) rec.message = p.message;
  }
  if (!applied.failed && !applied.interrupted) return undefined;

  // Nothing is pruned after a failed or stopped apply.
  const deletions: WriteOutcome[] = plan.changes
    .filter((c) => c.action === "deleted")
    .map((c) => ({ subject: c.subject, ref: c.ref, status: "not-attempted" }));
  noteWrites(records, deletions);
  // The inventory keeps what was owned plus what the server acknowledged (or may have stored without
  // answering): claims of writes never sent are dropped, and nothing that may exist is orphaned.
  const mayExist = new Set(
    applied.outcomes.filter((o) => o.status === "applied" || o.uncertain).map((o) => objectId(o.ref)),
  );
  a.inventory = mergeInventory(a.previous, plan, digests, (id) => mayExist.has(id));
  const message = writesMessage([...applied.outcomes, ...deletions], applied.problems);
  return applied.failed
    ? { reason: "ApplyFailed", message }
    : { reason: "Interrupted", message: `stopped by the agent; ${message}` };
}
