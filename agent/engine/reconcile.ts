/**
 * reconcile(): one sync attempt of one app, reading like the pipeline —
 * fetch → render → plan → rules → apply → prune → wait for health → record. Each step (agent/engine/steps/)
 * adds what it found to the attempt (agent/engine/attempt.ts) and either lets the next one run or stops the
 * attempt with a reason. Every stop becomes a ledger entry through finish(); nothing throws past here.
 */
import type { Snapshot } from "../object/snapshot.ts";
import { type Attempt, finish, type Planned, type ReconcileResult, type Stop } from "./attempt.ts";
import { type AppSpec, clusterOf, type EngineDeps } from "./ports.ts";
import { applyChanges } from "./steps/apply.ts";
import { fetchSnapshot } from "./steps/fetch.ts";
import { waitForHealth } from "./steps/health.ts";
import { planChanges } from "./steps/plan.ts";
import { pruneOrphans } from "./steps/prune.ts";
import { renderApp } from "./steps/render.ts";
import { judgePlan } from "./steps/rules.ts";

export type { ReconcileResult } from "./attempt.ts";

/** What triggered the attempt and, when the caller already fetched, the snapshot to use. */
export interface ReconcileRequest {
  app: AppSpec;
  trigger: string;
  snapshot?: Snapshot;
  /** Revision to record when fetching fails (the last one seen). */
  lastRevision?: string;
  /** Someone waits for this attempt's entry (API sync, webhook): never folded into the entry before it. */
  requested?: boolean;
  signal?: AbortSignal;
}

/** Runs one sync attempt of one app and records it in the ledger. */
export async function reconcile(deps: EngineDeps, req: ReconcileRequest): Promise<ReconcileResult> {
  // 1. Fetch the snapshot (the loop may have fetched it already) and begin the attempt's ledger entry.
  const fetched = await fetchSnapshot(deps, req);
  if ("stop" in fetched) return finish(deps, fetched.attempt, fetched.stop);
  const { attempt, snapshot } = fetched;

  // 2. Render the app's path into its desired objects; any render error applies nothing.
  const stop = await renderApp(deps, attempt, snapshot);
  if (stop) return finish(deps, attempt, stop);

  // 3–7. Plan, judge, apply, prune, wait for health and record: shared with replay (agent/engine/replay.ts).
  return converge(deps, attempt);
}

/** The steps after planning, in order: each reads the plan, adds to the attempt, and may stop it. */
const AFTER_PLAN: ReadonlyArray<
  (deps: EngineDeps, a: Planned) => Promise<Stop | undefined> | Stop | undefined
> = [
  judgePlan, // 3b. Sync rules and prune guards: deny, hold and defer stop here; skip and protect edit the plan.
  applyChanges, // 4. Store the manifests, then apply what changed, in stages.
  pruneOrphans, // 5. Delete what left Git and is still ours, in reverse order.
  waitForHealth, // 6. Wait until every desired object is healthy, or the app's timeout passes.
];

/** Plans, judges, applies, prunes, waits for health and records one attempt's desired objects (sync and replay). */
export async function converge(engine: EngineDeps, attempt: Attempt): Promise<ReconcileResult> {
  // Every cluster request of this attempt goes out as the app's identity (its ServiceAccount), if it has one.
  const deps: EngineDeps = { ...engine, cluster: clusterOf(engine, attempt.app) };

  // 3. Plan: desired vs. inventory vs. live, decided by server-side dry-run; any plan error applies nothing.
  const planned = await planChanges(deps, attempt);
  if ("reason" in planned) return finish(deps, attempt, planned);

  for (const step of AFTER_PLAN) {
    const stop = await step(deps, planned);
    if (stop) return finish(deps, planned, stop);
  }

  // 7. Record success.
  const s = planned.plan.summary;
  const message = `${s.created} created, ${s.configured} configured, ${s.unchanged} unchanged, ${s.deleted} deleted${s.skipped ? `, ${s.skipped} skipped` : ""}`;
  return finish(deps, planned, { reason: "Succeeded", message });
}
