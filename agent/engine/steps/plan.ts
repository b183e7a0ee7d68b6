/** 3. Plan: desired vs. inventory vs. live, decided by server-side dry-run; any plan error applies nothing. */
import { messageOf } from "../../object/errors.ts";
import { joinMessages } from "../../object/message.ts";
import { type ObjectRef, objectId, refOf } from "../../object/object.ts";
import { plan } from "../../plan/plan.ts";
import { type Attempt, type Planned, type Stop, timed } from "../attempt.ts";
import type { EngineDeps } from "../ports.ts";

/** Plans the attempt's desired objects; a plan with errors stops it, each object's own error in its record. */
export async function planChanges(deps: EngineDeps, a: Attempt): Promise<Planned | Stop> {
  const { app, revision } = a;
  const previous = deps.ledger.inventory(app.name);
  a.previous = previous;
  // Objects in other apps' inventories: rendering one here is an ownership conflict, not a takeover.
  const owners = deps.ledger.inventoryOwners?.(app.name);
  const base = {
    app,
    revision,
    desired: a.desired,
    inventory: previous,
    ...(owners ? { ownerOf: (ref: ObjectRef) => owners.get(objectId(ref)) } : {}),
    ...(a.fileExists ? { fileExists: a.fileExists } : {}),
    ...(a.signal ? { signal: a.signal } : {}),
    ...(deps.ledger.secretDigest ? { secretDigest: deps.ledger.secretDigest.bind(deps.ledger) } : {}),
  };
  let planned: Planned;
  try {
    const made = await timed(deps, a, "plan", async () => {
      await deps.cluster.discover();
      const live = deps.live;
      if (!live) return plan(base, deps.cluster);
      // The watch view stands in for one GET (and, when untouched, one dry-run) per object.
      await live.track(app.name, [...previous.map((i) => i.ref), ...a.desired.map((d) => refOf(d.object))]);
      const lookup = (ref: ObjectRef) => live.lookup(app.name, ref);
      return plan({ ...base, live: lookup }, deps.cluster);
    });
    planned = Object.assign(a, { plan: made });
  } catch (err) {
    if (a.signal?.aborted) return { reason: "Interrupted", message: "stopped while planning" };
    return { reason: "PlanRejected", message: messageOf(err) };
  }
  // Requests the signal abandoned are not the objects' errors.
  if (a.signal?.aborted) return { reason: "Interrupted", message: "stopped while planning" };
  const { errors, changes } = planned.plan;
  if (errors.length === 0) return planned;
  const message = joinMessages(
    errors.map((e) => ({ subject: `${e.subject}${e.source ? ` (${e.source})` : ""}`, message: e.message })),
  );
  // The message is bounded; each object's own error stays in its record.
  const failed = new Map(errors.map((e) => [e.subject, e.message]));
  for (const c of changes) {
    const why = failed.get(c.subject);
    if (why !== undefined) planned.records.set(c.id, { ref: c.ref, action: "skipped", message: why });
  }
  return { reason: "PlanRejected", message };
}
