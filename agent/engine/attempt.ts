/**
 * One sync attempt: what its steps have gathered so far (agent/engine/steps/), and finish(), which records it
 * in the ledger, logs it and announces it, however it ended.
 */
import type { ApplyOutcome } from "../apply/apply.ts";
import { messageOf } from "../object/errors.ts";
import { capMessage, MESSAGE_LIMIT } from "../object/message.ts";
import type { CommitInfo, HealthStatus, KubeObject, Reason, VerdictRecord } from "../object/object.ts";
import type { InventoryItem, ObjectRecord } from "../object/records.ts";
import { hasWrites, type Plan } from "../plan/plan.ts";
import type { ObjectHealth } from "../wait/wait.ts";
import type { AppSpec, EngineDeps } from "./ports.ts";
import { renderMemoOf } from "./render-memo.ts";

/** How one attempt ended. */
export interface ReconcileResult {
  entry: number;
  app: string;
  revision: string;
  outcome: "Succeeded" | "Failed";
  reason: Reason;
  message: string;
  plan?: Plan;
  health: ObjectHealth[];
  timings: Record<string, number>;
  /** The sync rules' verdicts on this attempt (absent when none matched). */
  verdicts?: VerdictRecord[];
  /** Stopped by a hold (waits for an approval) or a defer (waits for a window): not a failure to fix. */
  held?: "hold" | "defer";
}

/** Why an attempt ends: a step's failure, or the last step's success. */
export interface Stop {
  reason: Reason;
  message: string;
}

/** What an attempt starts from: its begun ledger entry and, once rendered, its desired objects. */
export interface AttemptStart {
  app: AppSpec;
  revision: string;
  entry: number;
  timings: Record<string, number>;
  desired?: ReadonlyArray<{ object: KubeObject; source: string }>;
  /** Digest of the desired set as rendered (recorded with the entry). */
  digest?: string;
  /** The commit being synced, for sync rules (replay has none). */
  commit?: CommitInfo;
  /** Whether a file exists at the revision synced, to say why an object is pruned (replay has none). */
  fileExists?: (path: string) => Promise<boolean>;
  signal?: AbortSignal;
  /** Said at the end of the entry's message whatever the outcome (the render's skipped documents). */
  note?: string;
  /** A render another process may reuse: its durable key and what it skipped (for the entry's RenderMemo). */
  reusable?: { key: string; skipped: ReadonlyArray<{ path: string; message: string }>; files: number };
}

/** An attempt under way: its start, plus what each step has added for the next ones and for finish(). */
export interface Attempt extends AttemptStart {
  desired: ReadonlyArray<{ object: KubeObject; source: string }>;
  plan?: Plan;
  /** The app's inventory before this attempt. */
  previous: InventoryItem[];
  /** Manifest digest by object id, as stored in the ledger. */
  manifests: Map<string, string>;
  /** What the entry records of each planned object. */
  records: Map<string, ObjectRecord>;
  verdicts: VerdictRecord[];
  /** A hold or defer verdict stopped the sync: logged as a warning, not an error. */
  held?: "hold" | "defer";
  /** What became of each planned apply. */
  applied: ApplyOutcome[];
  /** The inventory to record; absent: unchanged. */
  inventory?: InventoryItem[];
  health: ObjectHealth[];
}

/** An attempt past planning: the steps after it read the plan. */
export type Planned = Attempt & { plan: Plan };

/** A new attempt, nothing gathered yet. */
export function startAttempt(start: AttemptStart): Attempt {
  return {
    desired: [],
    previous: [],
    manifests: new Map(),
    records: new Map(),
    verdicts: [],
    applied: [],
    health: [],
    ...start,
  };
}

/** Runs a stage, announcing it and recording its duration (ms) in the attempt's timings. */
export async function timed<T>(
  deps: EngineDeps,
  a: Pick<Attempt, "app" | "timings">,
  stage: string,
  fn: () => Promise<T>,
): Promise<T> {
  deps.emit?.({ type: "stage", app: a.app.name, stage });
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    a.timings[stage] = Math.round(performance.now() - t0);
  }
}

/** Records the attempt in the ledger, logs and announces how it ended; never throws. */
export function finish(deps: EngineDeps, a: Attempt, end: Stop): ReconcileResult {
  const { app, revision } = a;
  const { reason } = end;
  // Stored, logged, emitted and served: bounded (the per-object records keep the detail); a note keeps 1 KB.
  const message = a.note
    ? capMessage(`${capMessage(end.message, MESSAGE_LIMIT - 1024)}; ${a.note}`)
    : capMessage(end.message);
  const outcome = reason === "Succeeded" ? "Succeeded" : "Failed";
  const { health, verdicts } = a;
  let recorded = a.entry;
  try {
    const memo = outcome === "Succeeded" ? renderMemoOf(a) : undefined;
    const folded = deps.ledger.finish(a.entry, {
      outcome,
      reason,
      message,
      ...(a.digest ? { renderedDigest: a.digest } : {}),
      objects: [...a.records.values()],
      ...(health.length > 0 ? { health: worst(health.map((h) => h.status)) } : {}),
      timings: a.timings,
      ...(a.inventory ? { inventory: a.inventory } : {}),
      ...(verdicts.length > 0 ? { verdicts } : {}),
      ...(memo ? { renderMemo: memo } : {}),
    });
    if (typeof folded === "number") recorded = folded;
  } catch (err) {
    deps.log.log("error", "could not record the sync in the ledger", {
      app: app.name,
      entry: a.entry,
      error: messageOf(err),
    });
  }
  // A resync that changed nothing is routine; say it only at debug level.
  const noop = outcome === "Succeeded" && a.plan !== undefined && !hasWrites(a.plan);
  const level = outcome === "Succeeded" ? (noop ? "debug" : "info") : a.held ? "warn" : "error";
  const said =
    a.held === "hold"
      ? "sync held for approval"
      : a.held === "defer"
        ? "sync deferred by a window"
        : `sync ${outcome.toLowerCase()}`;
  deps.log.log(level, said, { app: app.name, revision, reason, message, entry: recorded });
  deps.emit?.({ type: "finished", app: app.name, entry: recorded, outcome, reason, message });
  return {
    entry: recorded,
    app: app.name,
    revision,
    outcome,
    reason,
    message,
    ...(a.plan ? { plan: a.plan } : {}),
    ...(verdicts.length > 0 ? { verdicts } : {}),
    ...(a.held ? { held: a.held } : {}),
    health,
    timings: a.timings,
  };
}

const SEVERITY: HealthStatus[] = ["Current", "InProgress", "Terminating", "Unknown", "NotFound", "Failed"];

/** The worst health of a set, for the entry's summary. */
function worst(statuses: HealthStatus[]): HealthStatus {
  return statuses.reduce<HealthStatus>(
    (w, s) => (SEVERITY.indexOf(s) > SEVERITY.indexOf(w) ? s : w),
    "Current",
  );
}
