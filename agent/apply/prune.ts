/** Deletes what left Git, in reverse apply order, so dependants go before what they depend on. */
import { messageOf } from "../object/errors.ts";
import type { ObjectRef } from "../object/object.ts";
import { STAGES } from "../object/order.ts";
import { mapLimit } from "../object/pool.ts";

/** The cluster operation prune needs. */
export interface PruneCluster {
  delete(ref: ObjectRef): Promise<boolean>;
}

/** One deletion's result. */
export interface PruneOutcome {
  subject: string;
  ref: ObjectRef;
  ok: boolean;
  error?: string;
}

/** Deletes every change whose action is `deleted`, webhooks first and definitions last. */
export async function pruneStaged(
  changes: ReadonlyArray<{ ref: ObjectRef; subject: string; action: string; stage: string }>,
  cluster: PruneCluster,
  concurrency = 8,
): Promise<{ outcomes: PruneOutcome[]; failed: boolean }> {
  const outcomes: PruneOutcome[] = [];
  for (const stage of [...STAGES].reverse()) {
    const batch = changes.filter((c) => c.stage === stage && c.action === "deleted");
    const results = await mapLimit(batch, concurrency, async (c): Promise<PruneOutcome> => {
      try {
        await cluster.delete(c.ref);
        return { subject: c.subject, ref: c.ref, ok: true };
      } catch (err) {
        return { subject: c.subject, ref: c.ref, ok: false, error: messageOf(err) };
      }
    });
    outcomes.push(...results);
    if (results.some((r) => !r.ok)) return { outcomes, failed: true };
  }
  return { outcomes, failed: false };
}
