/** 5. Prune what left Git and is still ours, in reverse order. */
import { pruneStaged } from "../../apply/prune.ts";
import { objectId } from "../../object/object.ts";
import { hasWrites } from "../../plan/plan.ts";
import { type Planned, type Stop, timed } from "../attempt.ts";
import type { EngineDeps } from "../ports.ts";
import { desiredInventory, noteWrites, writesMessage } from "./outcomes.ts";

/** Deletes the plan's deletions; the inventory becomes what is desired, plus whatever a cut-off prune left. */
export async function pruneOrphans(deps: EngineDeps, a: Planned): Promise<Stop | undefined> {
  const { plan, manifests } = a;
  if (hasWrites(plan)) {
    const pruned = await timed(deps, a, "prune", () =>
      pruneStaged(plan.changes, deps.cluster, a.signal ? { signal: a.signal } : {}),
    );
    noteWrites(a.records, pruned.outcomes);
    if (pruned.failed || pruned.interrupted) {
      // Whatever was not acknowledged as deleted stays owned, so a later sync prunes it.
      const stillThere = new Set(
        pruned.outcomes.filter((o) => o.status !== "applied").map((o) => objectId(o.ref)),
      );
      a.inventory = desiredInventory(plan, manifests).concat(
        a.previous.filter((p) => stillThere.has(objectId(p.ref))),
      );
      const message = writesMessage([...a.applied, ...pruned.outcomes], []);
      return pruned.failed
        ? { reason: "PruneFailed", message }
        : { reason: "Interrupted", message: `stopped by the agent; ${message}` };
    }
  }
  // Objects skipped by prune (opt-out, prune: false) are no longer tracked: they are not ours any more.
  a.inventory = desiredInventory(plan, manifests);
  return undefined;
}
