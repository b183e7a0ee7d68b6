/** Waits until applied objects are healthy, polling the cluster and judging each object with a health checker. */
import { messageOf } from "../object/errors.ts";
import type { HealthAssessor } from "../object/health.ts";
import type { HealthStatus, KubeObject, ObjectRef } from "../object/object.ts";
import { mapLimit } from "../object/pool.ts";

/** Judges one object's health (the kstatus checks, or CEL health rules over them). */
export type HealthJudge = HealthAssessor;

/** The cluster operation waiting needs. */
export interface WaitCluster {
  get(ref: ObjectRef): Promise<KubeObject | undefined>;
}

/** The last health seen for one object. */
export interface ObjectHealth {
  subject: string;
  ref: ObjectRef;
  status: HealthStatus;
  /** The kstatus-style reason word (agent/object/health.ts). */
  reason: string;
  message: string;
}

export interface WaitOptions {
  timeoutMs: number;
  intervalMs?: number;
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (pending: ObjectHealth[]) => void;
  /** A watch view of live objects (the engine's LivePort); objects it holds are read from it instead of GET. */
  view?: (ref: ObjectRef) => KubeObject | undefined;
}

/** One object to wait for; `appliedVersion` is the resourceVersion the apply returned, if it wrote. */
export interface WaitTarget {
  ref: ObjectRef;
  subject: string;
  appliedVersion?: string;
}

/** Polls until every object is Current, one is Failed, or the timeout passes; returns the last health of each. */
export async function waitHealthy(
  targets: ReadonlyArray<WaitTarget>,
  cluster: WaitCluster,
  judge: HealthJudge,
  options: WaitOptions,
): Promise<{ healthy: boolean; objects: ObjectHealth[]; timedOut: boolean }> {
  const deadline = Date.now() + options.timeoutMs;
  let interval = options.intervalMs ?? 250;
  for (;;) {
    // What the view holds is judged here, in order; only the rest is read from the server (a promise each).
    const objects = new Array<ObjectHealth>(targets.length);
    const ask: number[] = [];
    targets.forEach((t, i) => {
      const held = options.view?.(t.ref);
      if (held && !olderThan(held, t.appliedVersion))
        objects[i] = { ref: t.ref, subject: t.subject, ...judge.assess(held) };
      else ask.push(i);
    });
    await mapLimit(ask, options.concurrency ?? 16, async (i) => {
      const { ref, subject } = targets[i] as WaitTarget;
      try {
        const live = await cluster.get(ref);
        objects[i] = live
          ? { ref, subject, ...judge.assess(live) }
          : { ref, subject, status: "NotFound", reason: "NotFound", message: "object not found" };
      } catch (err) {
        objects[i] = { ref, subject, status: "Unknown", reason: "Unknown", message: messageOf(err) };
      }
    });
    const pending = objects.filter((o) => o.status !== "Current");
    if (pending.length === 0) return { healthy: true, objects, timedOut: false };
    // Failed is final for kstatus (e.g. ProgressDeadlineExceeded); stop waiting.
    if (pending.some((o) => o.status === "Failed")) return { healthy: false, objects, timedOut: false };
    if (Date.now() >= deadline || options.signal?.aborted) return { healthy: false, objects, timedOut: true };
    options.onProgress?.(pending);
    await pause(Math.min(interval, Math.max(0, deadline - Date.now())), options.signal);
    interval = Math.min(interval * 1.5, 2000);
  }
}

/**
 * True when the view's copy predates what apply wrote, so judging it could call the old spec healthy.
 * resourceVersions are etcd revisions in practice; anything not numeric is treated as stale (ask the server).
 */
function olderThan(held: KubeObject, appliedVersion: string | undefined): boolean {
  if (appliedVersion === undefined) return false;
  const have = held.metadata.resourceVersion ?? "";
  if (!/^\d+$/.test(have) || !/^\d+$/.test(appliedVersion)) return true;
  return BigInt(have) < BigInt(appliedVersion);
}

/** Sleeps `ms`, or less when `signal` aborts (a stopping agent should not sit out a poll interval). */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
  });
}
