/**
 * Staged server-side apply of a plan: definitions (CRDs, Namespaces, cluster
 * RBAC) first, then wait until the CRDs are Established, then classes,
 * workloads, and admission webhooks last. A failing write stops the apply: writes
 * in flight finish, nothing else is sent, and every planned write is accounted for.
 */
import { messageOf } from "../object/errors.ts";
import type { HealthAssessor, HealthResult } from "../object/health.ts";
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
  /** Judges whether an applied CRD is Established (the engine's health assessor, so CEL rules apply too). */
  health: HealthAssessor;
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
      const waited = await waitEstablished(
        crds,
        cluster,
        options.health,
        options.crdTimeoutMs ?? 60_000,
        options.signal,
      );
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

/**
 * Waits until every applied CRD is Current by the health assessor (Established=True); a Failed one (names
 * not accepted) stops the wait at once. Returns the problem, "interrupted" when the signal aborts, or
 * undefined when all are Established.
 */
async function waitEstablished(
  crds: readonly WriteOutcome[],
  cluster: ApplyCluster,
  health: HealthAssessor,
  timeoutMs: number,
  signal: AbortSignal | undefined,
): Promise<ApplyResult["problems"][number] | "interrupted" | undefined> {
  const deadline = Date.now() + timeoutMs;
  const last = new Map<WriteOutcome, HealthResult>();
  for (;;) {
    for (const crd of crds) {
      if (signal?.aborted) return "interrupted";
      if (last.get(crd)?.status === "Current") continue;
      const live = await cluster.get(crd.ref);
      const verdict: HealthResult = live
        ? health.assess(live)
        : { status: "NotFound", reason: "NotFound", message: "object not found" };
      last.set(crd, verdict);
      if (verdict.status === "Failed") {
        return { subject: crd.subject, ref: crd.ref, message: `applied, but ${verdict.message}` };
      }
    }
    if ([...last.values()].every((h) => h.status === "Current")) return undefined;
    if (Date.now() > deadline) {
      const first = crds.find((c) => last.get(c)?.status !== "Current") as WriteOutcome;
      const seen = last.get(first);
      return {
        subject: first.subject,
        ref: first.ref,
        message: `applied, but not Established after ${Math.round(timeoutMs / 1000)}s${seen ? ` (${seen.reason}: ${seen.message})` : ""}`,
      };
    }
    if (!(await pause(100, signal))) return "interrupted";
  }
}

/** Sleeps `ms`; false when `signal` aborted first (a stopping agent does not sit out the poll). */
function pause(ms: number, signal: AbortSignal | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve(false);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", stop);
      resolve(true);
    }, ms);
    function stop() {
      clearTimeout(timer);
      resolve(false);
    }
    signal?.addEventListener("abort", stop, { once: true });
  });
}
