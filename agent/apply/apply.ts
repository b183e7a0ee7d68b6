/**
 * Staged server-side apply of a plan: definitions (CRDs, Namespaces, cluster
 * RBAC) first, then wait until the CRDs are Established, then classes,
 * workloads, and admission webhooks last. A failing write stops the apply: writes
 * in flight finish, nothing else is sent, and every planned write is accounted for.
 */
import { messageOf } from "../object/errors.ts";
import type { KubeObject, ObjectRef } from "../object/object.ts";
import { STAGES } from "../object/order.ts";
import { attempt, notAttempted, WRITE_TIMEOUT_MS, type WriteOutcome, writeBatch } from "./writes.ts";

export type { WriteOutcome } from "./writes.ts";

/**
 * Applies in flight at once within a stage. 32, not 8: on this project's 2-core test machine the API server's raw
 * server-side-apply throughput was highest at 32 concurrent requests, and berth's apply stage of 1,000 objects
 * took 11.5 s at 32 against 15.5 s at 8 (scripts/bench/ssa-limit.ts, interleaved; scripts/bench/README.md).
 * Deletions keep their own, lower limit (prune.ts): each may start a garbage-collection cascade.
 */
export const APPLY_CONCURRENCY = 32;

/** The cluster operations apply needs (KubeClient satisfies it). */
export interface ApplyCluster {
  apply(
    obj: KubeObject,
    options: { dryRun?: boolean; force?: boolean; signal?: AbortSignal },
  ): Promise<KubeObject>;
  get(ref: ObjectRef): Promise<KubeObject | undefined>;
  discover(force?: boolean): Promise<void>;
}

/** The part of a planned change apply reads. */
export interface ApplyChange {
  ref: ObjectRef;
  subject: string;
  action: string;
  stage: string;
  desired?: KubeObject;
  owned: boolean;
}

/** What became of one planned apply; `result` is what the server stored when it acknowledged the write. */
export interface ApplyOutcome extends WriteOutcome {
  result?: KubeObject;
}

export interface ApplyOptions {
  force: boolean;
  concurrency?: number;
  crdTimeoutMs?: number;
  /** Per write: how long to wait for the API server's answer. */
  writeTimeoutMs?: number;
  /** Aborted when the agent stops: writes not yet sent are not sent. */
  signal?: AbortSignal;
  onApplied?: (outcome: ApplyOutcome) => void;
}

/** How a staged apply ended. */
export interface ApplyResult {
  /** One per planned write (created/configured), in apply order: applied, failed or not attempted. */
  outcomes: ApplyOutcome[];
  /** A write failed or a CRD never became Established; later writes were not attempted. */
  failed: boolean;
  /** The signal stopped the apply before every write was sent. */
  interrupted: boolean;
  /** Failures that are not a write's own (a CRD applied but not Established), by object. */
  problems: Array<{ subject: string; ref: ObjectRef; message: string }>;
}

/** Applies every created/configured change stage by stage; returns what became of each. */
export async function applyStaged(
  changes: readonly ApplyChange[],
  cluster: ApplyCluster,
  options: ApplyOptions,
): Promise<ApplyResult> {
  const outcomes: ApplyOutcome[] = [];
  const problems: ApplyResult["problems"] = [];
  const writes = (stage: string) =>
    changes.filter((c) => c.stage === stage && (c.action === "created" || c.action === "configured"));
  const stop = (i: number, failed: boolean): ApplyResult => {
    // Every write of the stages after the one that stopped is accounted for as never sent.
    for (const stage of STAGES.slice(i + 1)) outcomes.push(...writes(stage).map(notAttempted));
    const interrupted = !failed && outcomes.some((o) => o.status === "not-attempted");
    return { outcomes, failed, interrupted, problems };
  };
  for (const [i, stage] of STAGES.entries()) {
    const batch = writes(stage);
    if (batch.length === 0) continue;
    const results = await writeBatch(
      batch,
      options.concurrency ?? APPLY_CONCURRENCY,
      options.signal,
      async (change) => {
        const outcome = await applyOne(change, cluster, options.force || change.owned, options);
        options.onApplied?.(outcome);
        return outcome;
      },
    );
    outcomes.push(...results);
    if (results.some((r) => r.status === "failed")) return stop(i, true);
    if (results.some((r) => r.status === "not-attempted")) return stop(i, false);
    const crds = results.filter((r) => r.ref.kind === "CustomResourceDefinition");
    if (crds.length > 0) {
      const waited = await waitEstablished(crds, cluster, options.crdTimeoutMs ?? 60_000, options.signal);
      if (waited === "interrupted") return stop(i, false);
      if (waited) {
        problems.push(waited);
        return stop(i, true);
      }
      // The new kinds must be known before objects of them are applied.
      await cluster.discover(true);
    }
    if (options.signal?.aborted) return stop(i, false);
  }
  return { outcomes, failed: false, interrupted: false, problems };
}

async function applyOne(
  change: ApplyChange,
  cluster: ApplyCluster,
  force: boolean,
  options: ApplyOptions,
): Promise<ApplyOutcome> {
  return attempt(
    change,
    options.writeTimeoutMs ?? WRITE_TIMEOUT_MS,
    (signal) => cluster.apply(change.desired as KubeObject, { force, signal }),
    explainApplyError,
  );
}

/** Turns an API error into a message a user can act on. */
export function explainApplyError(err: unknown): string {
  const e = err as { status?: number; message?: string };
  const message = messageOf(err);
  if (e.status === 409) return `conflict: ${message} (set force: true on the app to take these fields over)`;
  if (e.status === 422 && /immutable/i.test(message)) {
    return `immutable field changed: ${message} (revert the change, or delete the object so it can be recreated)`;
  }
  return message;
}

/** Waits until every applied CRD reports Established=True; returns the problem on timeout. */
async function waitEstablished(
  crds: readonly WriteOutcome[],
  cluster: ApplyCluster,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<ApplyResult["problems"][number] | "interrupted" | undefined> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(crds);
  while (pending.size > 0) {
    for (const crd of [...pending]) {
      const live = await cluster.get(crd.ref);
      const conditions = (
        live?.status as { conditions?: Array<{ type: string; status: string }> } | undefined
      )?.conditions;
      if (conditions?.some((c) => c.type === "Established" && c.status === "True")) pending.delete(crd);
    }
    if (pending.size === 0) return undefined;
    if (signal?.aborted) return "interrupted";
    if (Date.now() > deadline) {
      const first = [...pending][0] as WriteOutcome;
      return {
        subject: first.subject,
        ref: first.ref,
        message: `applied, but not Established after ${Math.round(timeoutMs / 1000)}s`,
      };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}
