/**
 * reconcile(): one sync attempt of one app, reading like the pipeline —
 * fetch → render → plan → apply → prune → wait for health → record. Every
 * failure becomes a reason and a ledger entry; nothing throws past here.
 */
import { applyStaged, type WriteOutcome } from "../apply/apply.ts";
import { pruneStaged } from "../apply/prune.ts";
import { messageOf } from "../object/errors.ts";
import { capMessage, joinMessages, MESSAGE_LIMIT } from "../object/message.ts";
import type { VerdictRecord } from "../object/object.ts";
import {
  type CommitInfo,
  type HealthStatus,
  type KubeObject,
  type ObjectRef,
  objectId,
  type Reason,
  refOf,
} from "../object/object.ts";
import type { InventoryItem, ObjectRecord } from "../object/records.ts";
import type { Snapshot } from "../object/snapshot.ts";
import { hasWrites, type Plan, type PlannedChange, plan } from "../plan/plan.ts";
import { type ObjectHealth, waitHealthy } from "../wait/wait.ts";
import { type AppSpec, clusterOf, DEFAULT_SOURCE_NAME, type EngineDeps, sourceOf } from "./ports.ts";

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
  const { app } = req;
  const timings: Record<string, number> = {};
  const timed = stageTimer(deps, app.name, timings);

  // 1. Fetch: the snapshot of the commit to apply (the loop may have fetched it already).
  let snapshot = req.snapshot;
  if (!snapshot) {
    try {
      const source = sourceOf(deps, app);
      snapshot = await timed("fetch", async () => source.snapshot(await source.resolve()));
    } catch (err) {
      const entry = deps.ledger.begin({
        app: app.name,
        revision: req.lastRevision ?? "unknown",
        trigger: req.trigger,
        ...(req.requested ? { requested: true } : {}),
      });
      return finish(deps, entry, app, req.lastRevision ?? "unknown", "FetchFailed", messageOf(err), {
        timings,
      });
    }
  }
  const revision = snapshot.revision;
  // Which source the revision is of goes with the commit (hash-chained with the entry).
  const commit = { ...snapshot.commit, source: app.source ?? DEFAULT_SOURCE_NAME };
  const entry = deps.ledger.begin({
    app: app.name,
    revision,
    commit,
    trigger: req.trigger,
    ...(req.requested ? { requested: true } : {}),
  });
  deps.emit?.({ type: "started", app: app.name, entry, revision, trigger: req.trigger });

  // 2. Render: any render error applies nothing. A generated app whose directory is gone renders nothing.
  let rendered: Awaited<ReturnType<EngineDeps["render"]>>;
  try {
    rendered = app.gone
      ? { objects: [], skipped: [], errors: [], digest: EMPTY_DIGEST }
      : await timed("render", () => deps.render(snapshot, app, req.signal));
  } catch (err) {
    if (req.signal?.aborted)
      return finish(deps, entry, app, revision, "Interrupted", "stopped while rendering", { timings });
    return finish(deps, entry, app, revision, "BuildFailed", messageOf(err), { timings });
  }
  for (const s of rendered.skipped)
    deps.log.log("info", "skipped a file", { app: app.name, path: s.path, why: s.message });
  // Every skip is said in the entry (and so in `berth sync` and the API), not only in the log.
  // A remote chart's version and digest come first: replay and the API read them back (chartOfMessage).
  const notes = [rendered.origin, skippedNote(rendered.skipped)].filter((n): n is string => n !== undefined);
  const note = notes.length > 0 ? notes.join("; ") : undefined;
  if (rendered.errors.length > 0) {
    const message = joinMessages(
      rendered.errors.map((e) => ({ subject: e.path, message: e.message })),
      { noun: "files" },
    );
    return finish(deps, entry, app, revision, "BuildFailed", message, {
      timings,
      digest: rendered.digest,
      ...(note ? { note } : {}),
    });
  }
  if (rendered.origin)
    deps.log.log("info", "rendered a remote chart", { app: app.name, chart: rendered.origin });

  // 3–7. Plan, apply, prune, wait for health and record: shared with replay (agent/engine/replay.ts).
  return converge(deps, {
    app,
    revision,
    entry,
    desired: rendered.objects,
    digest: rendered.digest,
    timings,
    commit: snapshot.commit,
    fileExists: async (path) => (await snapshot.stat(path)) !== undefined,
    ...(req.signal ? { signal: req.signal } : {}),
    ...(note ? { note } : {}),
  });
}

/** The digest of an empty desired set (sha256 of nothing). */
const EMPTY_DIGEST = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** "skipped N document(s) that are not Kubernetes objects: path (why), …", or undefined when none was. */
export function skippedNote(skipped: ReadonlyArray<{ path: string; message: string }>): string | undefined {
  if (skipped.length === 0) return undefined;
  const shown = skipped.slice(0, 20).map((s) => `${s.path} (${s.message})`);
  const more = skipped.length > 20 ? `, and ${skipped.length - 20} more` : "";
  return `skipped ${skipped.length} document(s) that are not Kubernetes objects: ${shown.join(", ")}${more}`;
}

/** One attempt's desired objects, its begun ledger entry and where its stage timings go. */
export interface ConvergeRequest {
  app: AppSpec;
  revision: string;
  entry: number;
  desired: ReadonlyArray<{ object: KubeObject; source: string }>;
  /** Digest of the desired set as rendered (recorded with the entry). */
  digest: string;
  timings: Record<string, number>;
  /** The commit being synced, for sync rules (replay has none). */
  commit?: CommitInfo;
  /** Whether a file exists at the revision synced, to say why an object is pruned (replay has none). */
  fileExists?: (path: string) => Promise<boolean>;
  signal?: AbortSignal;
  /** Said at the end of the entry's message whatever the outcome (the render's skipped documents). */
  note?: string;
}

/** Plans, applies, prunes, waits for health and records one attempt's desired objects (sync and replay). */
export async function converge(engine: EngineDeps, req: ConvergeRequest): Promise<ReconcileResult> {
  // Every cluster request of this attempt goes out as the app's identity (its ServiceAccount), if it has one.
  const deps: EngineDeps = { ...engine, cluster: clusterOf(engine, req.app) };
  const { app, revision, entry, timings } = req;
  const rendered = { objects: req.desired, digest: req.digest };
  const note = req.note ? { note: req.note } : {};
  const timed = stageTimer(deps, app.name, timings);

  // 3. Plan: desired vs. inventory vs. live, decided by server-side dry-run; any plan error applies nothing.
  const previous = deps.ledger.inventory(app.name);
  // Objects in other apps' inventories: rendering one here is an ownership conflict, not a takeover.
  const owners = deps.ledger.inventoryOwners?.(app.name);
  const base = {
    app,
    revision,
    desired: rendered.objects,
    inventory: previous,
    ...(owners ? { ownerOf: (ref: ObjectRef) => owners.get(objectId(ref)) } : {}),
    ...(req.fileExists ? { fileExists: req.fileExists } : {}),
  };
  let thePlan: Plan;
  try {
    thePlan = await timed("plan", async () => {
      await deps.cluster.discover();
      const live = deps.live;
      if (!live) return plan(base, deps.cluster);
      // The watch view stands in for one GET (and, when untouched, one dry-run) per object.
      await live.track(app.name, [
        ...previous.map((p) => p.ref),
        ...rendered.objects.map((d) => refOf(d.object)),
      ]);
      const lookup = (ref: ObjectRef) => live.lookup(app.name, ref);
      return plan({ ...base, live: lookup }, deps.cluster);
    });
  } catch (err) {
    return finish(deps, entry, app, revision, "PlanRejected", messageOf(err), {
      timings,
      digest: rendered.digest,
      ...note,
    });
  }
  if (thePlan.errors.length > 0) {
    const message = joinMessages(
      thePlan.errors.map((e) => ({
        subject: `${e.subject}${e.source ? ` (${e.source})` : ""}`,
        message: e.message,
      })),
    );
    // The message is bounded; each object's own error stays in its record.
    const failed = new Map(thePlan.errors.map((e) => [e.subject, e.message]));
    const records = new Map<string, ObjectRecord>();
    for (const c of thePlan.changes) {
      const why = failed.get(c.subject);
      if (why !== undefined) records.set(c.id, { ref: c.ref, action: "skipped", message: why });
    }
    return finish(deps, entry, app, revision, "PlanRejected", message, {
      timings,
      digest: rendered.digest,
      plan: thePlan,
      records,
      ...note,
    });
  }
  // The prune guards' holds are lifted through the policy's approvals; without a policy nothing lifts them.
  if (!deps.policy && thePlan.holds && thePlan.holds.length > 0) {
    const message = thePlan.holds.map((h) => `held by the prune guard: ${h.message}`).join("; ");
    return finish(deps, entry, app, revision, "PlanRejected", message, {
      timings,
      digest: rendered.digest,
      plan: thePlan,
    });
  }
  // 3b. Rules: sync rules judge the plan before anything is written; deny/hold/defer stop here, skip/protect edit it.
  let verdicts: VerdictRecord[] = [];
  if (deps.policy) {
    const commit = req.commit ?? { sha: "", author: "", message: "", time: "" };
    const judged = deps.policy.judge({ app, plan: thePlan, commit });
    thePlan = judged.plan;
    verdicts = [...judged.verdicts];
    if (judged.blocked) {
      const kind = judged.blocked.verdict;
      return finish(deps, entry, app, revision, "PlanRejected", judged.blocked.message, {
        timings,
        digest: rendered.digest,
        plan: thePlan,
        verdicts,
        ...note,
        ...(kind === "hold" || kind === "defer" ? { held: kind } : {}),
      });
    }
  }
  const desiredObjects = thePlan.changes.flatMap((c) => (c.desired ? [c.desired] : []));
  const digests = await deps.ledger.putManifests(desiredObjects);
  const records = new Map<string, ObjectRecord>(
    thePlan.changes.map((c) => {
      const digest = digests.get(c.id);
      const rec: ObjectRecord = { ref: c.ref, action: c.action };
      if (digest) rec.digest = digest;
      if (c.note) rec.message = c.note;
      return [c.id, rec];
    }),
  );
  const ctx = { timings, digest: rendered.digest, plan: thePlan, records, verdicts, ...note };

  // What apply wrote, by object id: the health wait must not judge a watch view's older copy.
  const appliedVersions = new Map<string, string>();
  // 4. Apply in stages; only what the plan says changed is written.
  if (hasWrites(thePlan)) {
    // Nothing is applied that the ledger could not record: check it can still write right before applying.
    try {
      deps.ledger.preflight?.();
    } catch (err) {
      return finish(deps, entry, app, revision, "ApplyFailed", `nothing applied: ${messageOf(err)}`, ctx);
    }
    // Claim first: if the process dies mid-apply, what it wrote stays owned and a later sync can prune it.
    deps.ledger.claimInventory(
      app.name,
      thePlan.changes
        .filter((c) => c.action === "created" && c.desired)
        .map((c) => inventoryItem(c, digests)),
    );
    const applied = await timed("apply", () =>
      applyStaged(thePlan.changes, deps.cluster, {
        force: app.force,
        health: deps.health,
        ...(req.signal ? { signal: req.signal } : {}),
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
    for (const o of applied.outcomes) {
      const version = o.result?.metadata.resourceVersion;
      if (version) appliedVersions.set(objectId(o.ref), version);
    }
    noteWrites(records, applied.outcomes);
    for (const p of applied.problems) {
      const rec = records.get(objectId(p.ref));
      if (rec) rec.message = p.message;
    }
    if (applied.failed || applied.interrupted) {
      // Nothing is pruned after a failed or stopped apply.
      const deletions: WriteOutcome[] = thePlan.changes
        .filter((c) => c.action === "deleted")
        .map((c) => ({ subject: c.subject, ref: c.ref, status: "not-attempted" }));
      noteWrites(records, deletions);
      // The inventory keeps what was owned plus what the server acknowledged (or may have stored without
      // answering): claims of writes never sent are dropped, and nothing that may exist is orphaned.
      const mayExist = new Set(
        applied.outcomes.filter((o) => o.status === "applied" || o.uncertain).map((o) => objectId(o.ref)),
      );
      const inventory = mergeInventory(previous, thePlan, digests, (id) => mayExist.has(id));
      const message = writesMessage([...applied.outcomes, ...deletions], applied.problems);
      return applied.failed
        ? finish(deps, entry, app, revision, "ApplyFailed", message, { ...ctx, inventory })
        : finish(deps, entry, app, revision, "Interrupted", `stopped by the agent; ${message}`, {
            ...ctx,
            inventory,
          });
    }

    // 5. Prune what left Git and is still ours, in reverse order.
    const pruned = await timed("prune", () =>
      pruneStaged(thePlan.changes, deps.cluster, req.signal ? { signal: req.signal } : {}),
    );
    noteWrites(records, pruned.outcomes);
    if (pruned.failed || pruned.interrupted) {
      // Whatever was not acknowledged as deleted stays owned, so a later sync prunes it.
      const stillThere = new Set(
        pruned.outcomes.filter((o) => o.status !== "applied").map((o) => objectId(o.ref)),
      );
      const inventory = desiredInventory(thePlan, digests).concat(
        previous.filter((p) => stillThere.has(objectId(p.ref))),
      );
      const message = writesMessage([...applied.outcomes, ...pruned.outcomes], []);
      return pruned.failed
        ? finish(deps, entry, app, revision, "PruneFailed", message, { ...ctx, inventory })
        : finish(deps, entry, app, revision, "Interrupted", `stopped by the agent; ${message}`, {
            ...ctx,
            inventory,
          });
    }
  }
  // Objects skipped by prune (opt-out, prune: false) are no longer tracked: they are not ours any more.
  const inventory = desiredInventory(thePlan, digests);

  // 6. Wait until every desired object is healthy, or the app's timeout passes.
  const targets = thePlan.changes
    .filter((c) => c.desired)
    .map((c) => {
      const appliedVersion = appliedVersions.get(c.id);
      return { ref: c.ref, subject: c.subject, ...(appliedVersion ? { appliedVersion } : {}) };
    });
  const live = deps.live;
  const waited = await timed("health", () =>
    waitHealthy(targets, deps.cluster, deps.health, {
      timeoutMs: app.timeout,
      ...(live ? { view: (ref: ObjectRef) => live.lookup(app.name, ref) } : {}),
      ...(req.signal ? { signal: req.signal } : {}),
      onProgress: (pending) =>
        deps.emit?.({
          type: "waiting",
          app: app.name,
          pending: pending.map((p) => ({ subject: p.subject, status: p.status, message: p.message })),
        }),
    }),
  );
  for (const h of waited.objects) {
    const rec = records.get(objectId(h.ref));
    if (rec) {
      rec.health = h.status;
      if (h.status !== "Current") rec.message = h.message;
    }
  }
  if (!waited.healthy && req.signal?.aborted) {
    return finish(deps, entry, app, revision, "Interrupted", "stopped while waiting for health", {
      ...ctx,
      inventory,
      health: waited.objects,
    });
  }
  if (!waited.healthy) {
    const bad = waited.objects.filter((o) => o.status !== "Current");
    const why = waited.timedOut ? `not healthy after ${Math.round(app.timeout / 1000)}s` : "failed";
    const message = joinMessages(
      bad.map((o) => ({ subject: `${o.subject} is ${o.status}`, message: o.message })),
      { prefix: `${why}: ` },
    );
    return finish(deps, entry, app, revision, "HealthCheckFailed", message, {
      ...ctx,
      inventory,
      health: waited.objects,
    });
  }

  // 7. Record success.
  const s = thePlan.summary;
  const message = `${s.created} created, ${s.configured} configured, ${s.unchanged} unchanged, ${s.deleted} deleted${s.skipped ? `, ${s.skipped} skipped` : ""}`;
  return finish(deps, entry, app, revision, "Succeeded", message, {
    ...ctx,
    inventory,
    health: waited.objects,
  });
}

/** Runs a stage, announcing it and recording its duration (ms) in `timings`. */
function stageTimer(deps: EngineDeps, app: string, timings: Record<string, number>) {
  return async <T>(stage: string, fn: () => Promise<T>): Promise<T> => {
    deps.emit?.({ type: "stage", app, stage });
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      timings[stage] = Math.round(performance.now() - t0);
    }
  };
}

interface FinishContext {
  timings: Record<string, number>;
  digest?: string;
  plan?: Plan;
  records?: Map<string, ObjectRecord>;
  inventory?: Array<{ ref: ObjectRef; digest: string }>;
  health?: ObjectHealth[];
  /** Every sync rule verdict on this attempt, recorded with the entry. */
  verdicts?: VerdictRecord[];
  /** Appended to the message (skipped documents). */
  note?: string;
  /** A hold or defer verdict stopped the sync: logged as a warning, not an error. */
  held?: "hold" | "defer";
}

function finish(
  deps: EngineDeps,
  entry: number,
  app: AppSpec,
  revision: string,
  reason: Reason,
  fullMessage: string,
  ctx: FinishContext,
): ReconcileResult {
  // Stored, logged, emitted and served: bounded (the per-object records keep the detail); a note keeps 1 KB.
  const message = ctx.note
    ? capMessage(`${capMessage(fullMessage, MESSAGE_LIMIT - 1024)}; ${ctx.note}`)
    : capMessage(fullMessage);
  const outcome = reason === "Succeeded" ? "Succeeded" : "Failed";
  const health = ctx.health ?? [];
  let recorded = entry;
  try {
    const folded = deps.ledger.finish(entry, {
      outcome,
      reason,
      message,
      ...(ctx.digest ? { renderedDigest: ctx.digest } : {}),
      objects: [...(ctx.records?.values() ?? [])],
      ...(health.length > 0 ? { health: worst(health.map((h) => h.status)) } : {}),
      timings: ctx.timings,
      ...(ctx.inventory ? { inventory: ctx.inventory } : {}),
      ...(ctx.verdicts && ctx.verdicts.length > 0 ? { verdicts: ctx.verdicts } : {}),
    });
    if (typeof folded === "number") recorded = folded;
  } catch (err) {
    deps.log.log("error", "could not record the sync in the ledger", {
      app: app.name,
      entry,
      error: messageOf(err),
    });
  }
  // A resync that changed nothing is routine; say it only at debug level.
  const noop = outcome === "Succeeded" && ctx.plan !== undefined && !hasWrites(ctx.plan);
  const level = outcome === "Succeeded" ? (noop ? "debug" : "info") : ctx.held ? "warn" : "error";
  const said =
    ctx.held === "hold"
      ? "sync held for approval"
      : ctx.held === "defer"
        ? "sync deferred by a window"
        : `sync ${outcome.toLowerCase()}`;
  deps.log.log(level, said, {
    app: app.name,
    revision,
    reason,
    message,
    entry: recorded,
  });
  deps.emit?.({ type: "finished", app: app.name, entry: recorded, outcome, reason, message });
  return {
    entry: recorded,
    app: app.name,
    revision,
    outcome,
    reason,
    message,
    ...(ctx.plan ? { plan: ctx.plan } : {}),
    ...(ctx.verdicts && ctx.verdicts.length > 0 ? { verdicts: ctx.verdicts } : {}),
    ...(ctx.held ? { held: ctx.held } : {}),
    health,
    timings: ctx.timings,
  };
}

/** Records on each object whether its write was acknowledged, failed (and why) or never sent. */
function noteWrites(records: Map<string, ObjectRecord>, outcomes: readonly WriteOutcome[]): void {
  for (const o of outcomes) {
    const rec = records.get(objectId(o.ref));
    if (!rec) continue;
    rec.status = o.status;
    if (o.error) rec.message = o.error;
  }
}

/**
 * "partially applied: 40 of 600 (8 failed, 552 not attempted): <errors>" over every planned write, within the
 * message limit (each object's error is on its own record).
 */
function writesMessage(
  outcomes: readonly WriteOutcome[],
  problems: ReadonlyArray<{ subject: string; message: string }>,
): string {
  const done = outcomes.filter((o) => o.status === "applied").length;
  const failed = outcomes.filter((o) => o.status === "failed");
  const unsent = outcomes.filter((o) => o.status === "not-attempted").length;
  const total = outcomes.length;
  const head =
    done === total
      ? `applied ${done} of ${total}`
      : done === 0
        ? `nothing applied: 0 of ${total}`
        : `partially applied: ${done} of ${total}`;
  const counts = [
    ...(failed.length > 0 ? [`${failed.length} failed`] : []),
    ...(unsent > 0 ? [`${unsent} not attempted`] : []),
  ].join(", ");
  const errors = [...failed.map((o) => ({ subject: o.subject, message: o.error ?? "failed" })), ...problems];
  const prefix = `${head}${counts ? ` (${counts})` : ""}`;
  return errors.length === 0 ? prefix : joinMessages(errors, { prefix: `${prefix}: ` });
}

/** The inventory after a full apply: every desired object with its manifest digest. */
function desiredInventory(p: Plan, digests: Map<string, string>): Array<{ ref: ObjectRef; digest: string }> {
  return p.changes.filter((c) => c.desired).map((c) => inventoryItem(c, digests));
}

/** One desired object as the inventory records it: ref, manifest digest and where it was rendered from. */
function inventoryItem(c: PlannedChange, digests: Map<string, string>): InventoryItem {
  return { ref: c.ref, digest: digests.get(c.id) ?? "", ...(c.source ? { source: c.source } : {}) };
}

/** The inventory after a partial apply: what was owned before plus what this attempt wrote. */
function mergeInventory(
  previous: Array<{ ref: ObjectRef; digest: string }>,
  p: Plan,
  digests: Map<string, string>,
  wrote: (id: string) => boolean,
): Array<{ ref: ObjectRef; digest: string }> {
  const out = new Map(previous.map((i) => [objectId(i.ref), i]));
  for (const c of p.changes) {
    if (c.desired && wrote(c.id)) out.set(c.id, inventoryItem(c, digests));
  }
  return [...out.values()];
}

const SEVERITY: HealthStatus[] = ["Current", "InProgress", "Terminating", "Unknown", "NotFound", "Failed"];

/** The worst health of a set, for the entry's summary. */
function worst(statuses: HealthStatus[]): HealthStatus {
  return statuses.reduce<HealthStatus>(
    (w, s) => (SEVERITY.indexOf(s) > SEVERITY.indexOf(w) ? s : w),
    "Current",
  );
}
