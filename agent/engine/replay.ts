/**
 * replay(): re-applies exactly the manifests a ledger entry recorded, without contacting Git, through the
 * same plan → apply → prune → wait → record stages as a sync (converge), and records the replay as a new
 * entry (trigger "replay" or "pin"). Secrets the ledger cannot decrypt are neither applied nor pruned, and
 * each is named. An entry whose chain position or blobs fail verification is refused.
 */
import { digestOf } from "../object/canonical.ts";
import { BerthError, messageOf } from "../object/errors.ts";
import { capMessage } from "../object/message.ts";
import type { CommitInfo, KubeObject, ObjectRef, Reason } from "../object/object.ts";
import { objectId, subject } from "../object/object.ts";
import { chartOfMessage, type ObjectRecord } from "../object/records.ts";
import { type Plan, plan } from "../plan/plan.ts";
import { startAttempt } from "./attempt.ts";
import { type AppSpec, clusterOf, type EngineDeps, type LedgerPort, type PinState } from "./ports.ts";
import { converge, type ReconcileResult } from "./reconcile.ts";

/** A recorded entry as replay reads it (the ledger's LedgerEntry satisfies it). */
export interface ReplayEntry {
  id: number;
  app: string;
  revision: string;
  outcome: string;
  commit?: CommitInfo;
  commitSha?: string;
  renderedDigest?: string;
  objects: ObjectRecord[];
  message?: string;
}

/** What replay reads from the ledger beyond a sync's needs (the Ledger class satisfies it). */
export interface ReplayLedger extends LedgerPort {
  get(id: number): ReplayEntry | undefined;
  list(query: { app?: string; limit?: number; before?: number }): Array<{
    id: number;
    outcome: string;
    commitSha?: string;
    revision: string;
  }>;
  getManifest(digest: string): Promise<KubeObject | undefined>;
  blobInfo(digest: string): { encoding: string; keyId?: string } | undefined;
  verify(): { ok: boolean; firstBad?: number; blob?: string; message?: string };
  readonly secretKeyId: string | undefined;
  notePinPending?(app: string, revision: string): void;
}

/** Everything replay needs: the engine's dependencies with a ledger that can read entries back. */
export type ReplayDeps = Omit<EngineDeps, "ledger"> & { ledger: ReplayLedger };

/** A Secret the replay could not restore, and why. */
export interface Unrestored {
  subject: string;
  ref: ObjectRef;
  why: string;
}

/** How a replay ended: a sync result plus the entry it replayed and what it could not restore. */
export interface ReplayResult extends ReconcileResult {
  source: number;
  unrestored: Unrestored[];
}

/** The manifests of an entry, loaded and checked: what to apply and what cannot be. */
export interface LoadedEntry {
  entry: ReplayEntry;
  desired: Array<{ object: KubeObject; source: string }>;
  unrestored: Unrestored[];
  /** Records of the unrestored objects, carried into the replay's entry so a later replay still sees them. */
  carried: ObjectRecord[];
}

/** The newest entry of an app matching `to`: an entry id, a commit sha prefix, or `last-healthy`. */
export function resolveEntry(ledger: ReplayLedger, app: string, to: string): ReplayEntry {
  const subjectOf = `--to ${to}`;
  if (/^[0-9]+$/.test(to)) {
    const entry = ledger.get(Number(to));
    if (!entry) throw new BerthError(`ledger entry ${to} does not exist`, { subject: subjectOf });
    if (entry.app !== app)
      throw new BerthError(`ledger entry ${to} belongs to app ${entry.app}, not ${app}`, {
        subject: subjectOf,
      });
    return entry;
  }
  const healthy = to === "last-healthy";
  if (!healthy && !/^[0-9a-f]{4,40}$/.test(to)) {
    throw new BerthError("expected an entry id, a commit sha (at least 4 hex digits) or last-healthy", {
      subject: subjectOf,
    });
  }
  // Newest first, page by page: the ledger caps one page.
  let before: number | undefined;
  for (;;) {
    const page = ledger.list({ app, limit: 1000, ...(before !== undefined ? { before } : {}) });
    for (const e of page) {
      if (e.outcome !== "Succeeded") continue;
      if (!healthy && !(e.commitSha ?? "").startsWith(to)) continue;
      const entry = ledger.get(e.id);
      if (entry && hasManifests(entry)) return entry;
    }
    if (page.length < 1000) break;
    before = page.at(-1)?.id;
  }
  throw new BerthError(
    healthy
      ? `app ${app} has no healthy entry with recorded manifests`
      : `app ${app} has no healthy entry at a commit starting with ${to}`,
    { subject: subjectOf },
  );
}

/** Whether an entry recorded manifests to replay. */
function hasManifests(entry: ReplayEntry): boolean {
  return entry.objects.some((o) => o.digest && o.action !== "deleted");
}

/**
 * Checks an entry against the chain and loads every manifest it recorded; throws a BerthError naming the
 * entry if anything fails verification. Secrets the ledger cannot decrypt come back as unrestored.
 */
export async function loadEntry(ledger: ReplayLedger, entry: ReplayEntry): Promise<LoadedEntry> {
  const name = `ledger entry ${entry.id}`;
  if (entry.outcome === "Running") throw new BerthError("is still Running", { subject: name });
  if (!hasManifests(entry))
    throw new BerthError("recorded no manifests (it failed before planning)", { subject: name });
  const verified = ledger.verify();
  // A problem after this entry in the chain does not make this entry untrustworthy; one at or before it does.
  if (!verified.ok && verified.firstBad !== undefined && verified.firstBad <= entry.id)
    throw new BerthError(`refusing to replay: ${verified.message}`, { subject: name });
  if (!verified.ok && verified.blob && entry.objects.some((o) => o.digest === verified.blob))
    throw new BerthError(`refusing to replay: ${verified.message}`, { subject: name });

  const desired: LoadedEntry["desired"] = [];
  const unrestored: Unrestored[] = [];
  const carried: ObjectRecord[] = [];
  for (const record of entry.objects) {
    const digest = record.digest;
    if (!digest || record.action === "deleted") continue;
    const what = `${name}: ${subject(record.ref)} (manifest ${digest})`;
    const info = ledger.blobInfo(digest);
    if (!info)
      throw new BerthError("refusing to replay: the manifest is missing from the ledger", { subject: what });
    const cannot = (why: string) => {
      unrestored.push({ subject: subject(record.ref), ref: record.ref, why });
      carried.push({ ref: record.ref, action: "skipped", digest, message: `not restored: ${why}` });
    };
    if (info.encoding === "redacted") {
      cannot("stored redacted: the ledger had no secret key when it was recorded");
      continue;
    }
    if (info.encoding === "aes-256-gcm" && info.keyId !== ledger.secretKeyId) {
      cannot(
        ledger.secretKeyId
          ? `encrypted with key ${info.keyId}, but berth has key ${ledger.secretKeyId}`
          : `encrypted with key ${info.keyId}, and no secret key is configured`,
      );
      continue;
    }
    let object: KubeObject | undefined;
    try {
      object = await ledger.getManifest(digest);
    } catch (cause) {
      throw new BerthError(`refusing to replay: ${messageOf(cause)}`, { subject: what, cause });
    }
    if (!object) throw new BerthError("refusing to replay: the manifest is missing", { subject: what });
    // Plain blobs are addressed by their content: a changed byte changes the digest (sealed ones GCM checked).
    if (info.encoding === "plain" && digestOf(object) !== digest)
      throw new BerthError("refusing to replay: the stored manifest does not match its digest", {
        subject: what,
      });
    desired.push({ object, source: name });
  }
  return { entry, desired, unrestored, carried };
}

/** What a replay runs with. */
export interface ReplayRequest {
  app: AppSpec;
  entry: ReplayEntry;
  /** "replay" (the CLI) or "pin" (the loop holding a pinned app). */
  trigger: string;
  signal?: AbortSignal;
}

/** Replays an entry and records the attempt; like reconcile, it never throws past here. */
export async function replay(deps: ReplayDeps, req: ReplayRequest): Promise<ReplayResult> {
  const { app, entry: source } = req;
  const base = deps.ledger;
  const entry = base.begin({
    app: app.name,
    revision: source.revision,
    ...(source.commit ? { commit: source.commit } : {}),
    trigger: req.trigger,
  });
  deps.emit?.({ type: "started", app: app.name, entry, revision: source.revision, trigger: req.trigger });
  const label = `replay of entry ${source.id}`;
  const timings: Record<string, number> = {};
  const t0 = performance.now();
  let loaded: LoadedEntry;
  try {
    loaded = await loadEntry(base, source);
  } catch (err) {
    timings.load = Math.round(performance.now() - t0);
    return refused(deps, app, entry, source, `${label}: ${messageOf(err)}`, timings);
  }
  timings.load = Math.round(performance.now() - t0);

  const unrestoredIds = new Set(loaded.unrestored.map((u) => objectId(u.ref)));
  const retained = base.inventory(app.name).filter((i) => unrestoredIds.has(objectId(i.ref)));
  const note =
    loaded.unrestored.length > 0
      ? `; not restored: ${loaded.unrestored.map((u) => `${u.subject} (${u.why})`).join(", ")}`
      : "";
  // The same stages as a sync, over a ledger view that keeps unrestorable Secrets out of the prune and in
  // the inventory, and names the source entry in the record.
  const ledger: LedgerPort = {
    begin: (s) => base.begin(s),
    putManifests: (objects) => base.putManifests(objects),
    ...(base.secretDigest ? { secretDigest: base.secretDigest.bind(base) } : {}),
    claimInventory: (a, items) => base.claimInventory(a, items),
    inventory: (a) => base.inventory(a).filter((i) => !unrestoredIds.has(objectId(i.ref))),
    ...(base.inventoryOwners
      ? { inventoryOwners: (a: string) => base.inventoryOwners?.(a) ?? new Map() }
      : {}),
    finish: (id, r) =>
      base.finish(id, {
        ...r,
        message: capMessage(`${label}: ${r.message}${note}`),
        objects: [...r.objects, ...loaded.carried],
        ...(r.inventory ? { inventory: [...r.inventory, ...retained] } : {}),
      }),
  };
  const result = await converge(
    { ...deps, ledger },
    startAttempt({
      app,
      revision: source.revision,
      entry,
      desired: loaded.desired,
      digest: source.renderedDigest ?? digestOf(loaded.desired.map((d) => d.object)),
      timings,
      ...(req.signal ? { signal: req.signal } : {}),
      // The remote chart the source entry applied: its manifests are what is re-applied, never a new pull.
      ...(chartOfMessage(source.message) ? { note: chartOfMessage(source.message) as string } : {}),
    }),
  );
  return {
    ...result,
    message: capMessage(`${label}: ${result.message}${note}`),
    source: source.id,
    unrestored: loaded.unrestored,
  };
}

/** The plan a replay would carry out, writing nothing (server-side dry-run only, no ledger entry). */
export async function planReplay(
  deps: ReplayDeps,
  app: AppSpec,
  source: ReplayEntry,
): Promise<{ plan: Plan; unrestored: Unrestored[] }> {
  const loaded = await loadEntry(deps.ledger, source);
  const unrestoredIds = new Set(loaded.unrestored.map((u) => objectId(u.ref)));
  const cluster = clusterOf(deps, app);
  await cluster.discover();
  const p = await plan(
    {
      app,
      revision: source.revision,
      desired: loaded.desired,
      inventory: deps.ledger.inventory(app.name).filter((i) => !unrestoredIds.has(objectId(i.ref))),
      ...(deps.ledger.secretDigest ? { secretDigest: deps.ledger.secretDigest.bind(deps.ledger) } : {}),
    },
    cluster,
  );
  return { plan: p, unrestored: loaded.unrestored };
}

/**
 * The loop's attempt for a pinned app: notes the Git revision it is not applying, then replays the pinned
 * entry. Undefined when the ledger cannot replay (a fake without entries), so the caller syncs as usual.
 */
export async function replayPinned(
  deps: EngineDeps,
  app: AppSpec,
  pin: PinState,
  seenRevision: string,
  signal?: AbortSignal,
): Promise<ReplayResult | undefined> {
  const ledger = deps.ledger as Partial<ReplayLedger>;
  if (!ledger.get || !ledger.getManifest || !ledger.verify || !ledger.blobInfo || !ledger.list)
    return undefined;
  const rdeps = deps as ReplayDeps;
  const source = rdeps.ledger.get(pin.entry);
  if (!source) return undefined;
  if (seenRevision !== source.revision) rdeps.ledger.notePinPending?.(app.name, seenRevision);
  return replay(rdeps, { app, entry: source, trigger: "pin", ...(signal ? { signal } : {}) });
}

/** Records a refused replay (verification failed) as a failed entry; nothing was applied. */
function refused(
  deps: ReplayDeps,
  app: AppSpec,
  begun: number,
  source: ReplayEntry,
  fullMessage: string,
  timings: Record<string, number>,
): ReplayResult {
  const message = capMessage(fullMessage);
  // BuildFailed: like a render error, the desired state could not be produced, so nothing was applied.
  const reason: Reason = "BuildFailed";
  let entry = begun;
  try {
    // A repeat of the same refusal (a pinned app, every interval) folds into the entry before it.
    const folded = deps.ledger.finish(begun, { outcome: "Failed", reason, message, objects: [], timings });
    if (typeof folded === "number") entry = folded;
  } catch (err) {
    deps.log.log("error", "could not record the replay in the ledger", {
      app: app.name,
      entry,
      error: messageOf(err),
    });
  }
  deps.log.log("error", "replay refused", { app: app.name, source: source.id, message, entry });
  deps.emit?.({ type: "finished", app: app.name, entry, outcome: "Failed", reason, message });
  return {
    entry,
    app: app.name,
    revision: source.revision,
    outcome: "Failed",
    reason,
    message,
    health: [],
    timings,
    source: source.id,
    unrestored: [],
  };
}
