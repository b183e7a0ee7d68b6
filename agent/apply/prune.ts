/** Deletes what left Git, in reverse apply order, so dependants go before what they depend on. */
import type { ObjectRef } from "../object/object.ts";
import { STAGES } from "../object/order.ts";
import { attempt, notAttempted, WRITE_TIMEOUT_MS, type WriteOutcome, writeBatch } from "./writes.ts";

/** The cluster operation prune needs. */
export interface PruneCluster {
  delete(ref: ObjectRef, options?: { signal?: AbortSignal }): Promise<boolean>;
}

/** What became of one planned deletion (`applied`: the API server acknowledged it, or it was already gone). */
export type PruneOutcome = WriteOutcome;

export interface PruneOptions {
  concurrency?: number;
  /** Per deletion: how long to wait for the API server's answer. */
  writeTimeoutMs?: number;
  /** Aborted when the agent stops: deletions not yet sent are not sent. */
  signal?: AbortSignal;
}

/**
 * Deletes every change whose action is `deleted`, webhooks first and definitions last. A failed deletion
 * stops the prune (deletions in flight finish); every planned deletion comes back with its outcome.
 */
export async function pruneStaged(
  changes: ReadonlyArray<{ ref: ObjectRef; subject: string; action: string; stage: string }>,
  cluster: PruneCluster,
  options: PruneOptions = {},
): Promise<{ outcomes: PruneOutcome[]; failed: boolean; interrupted: boolean }> {
  const outcomes: PruneOutcome[] = [];
  const stages = [...STAGES].reverse();
  const deletions = (stage: string) => changes.filter((c) => c.stage === stage && c.action === "deleted");
  for (const [i, stage] of stages.entries()) {
    const batch = deletions(stage);
    const results = await writeBatch(batch, options.concurrency ?? 8, options.signal, (c) =>
      attempt(c, options.writeTimeoutMs ?? WRITE_TIMEOUT_MS, (signal) => cluster.delete(c.ref, { signal })),
    );
    outcomes.push(...results);
    const failed = results.some((r) => r.status === "failed");
    const interrupted = !failed && options.signal?.aborted === true;
    if (failed || interrupted) {
      for (const later of stages.slice(i + 1)) outcomes.push(...deletions(later).map(notAttempted));
      // Interrupted only if something was left unsent.
      return {
        outcomes,
        failed,
        interrupted: interrupted && outcomes.some((o) => o.status === "not-attempted"),
      };
    }
  }
  return { outcomes, failed: false, interrupted: false };
}
