/** 1. Fetch: the snapshot of the commit to apply, and the ledger entry the attempt is recorded under. */
import { messageOf } from "../../object/errors.ts";
import type { Snapshot } from "../../object/snapshot.ts";
import { type Attempt, type Stop, startAttempt, timed } from "../attempt.ts";
import { DEFAULT_SOURCE_NAME, type EngineDeps, sourceOf } from "../ports.ts";
import type { ReconcileRequest } from "../reconcile.ts";

/** Fetches the snapshot (unless the caller already did) and begins the entry: with its revision, or the last one. */
export async function fetchSnapshot(
  deps: EngineDeps,
  req: ReconcileRequest,
): Promise<{ attempt: Attempt; snapshot: Snapshot } | { attempt: Attempt; stop: Stop }> {
  const { app, trigger } = req;
  const timings: Record<string, number> = {};
  const requested = req.requested ? { requested: true } : {};
  let snapshot: Snapshot;
  try {
    const source = sourceOf(deps, app);
    snapshot =
      req.snapshot ??
      (await timed(deps, { app, timings }, "fetch", async () => source.snapshot(await source.resolve())));
  } catch (err) {
    const revision = req.lastRevision ?? "unknown";
    const entry = deps.ledger.begin({ app: app.name, revision, trigger, ...requested });
    return {
      attempt: startAttempt({ app, revision, entry, timings }),
      stop: { reason: "FetchFailed", message: messageOf(err) },
    };
  }
  const { revision } = snapshot;
  // Which source the revision is of goes with the commit (hash-chained with the entry).
  const commit = { ...snapshot.commit, source: app.source ?? DEFAULT_SOURCE_NAME };
  const entry = deps.ledger.begin({ app: app.name, revision, commit, trigger, ...requested });
  deps.emit?.({ type: "started", app: app.name, entry, revision, trigger });
  const attempt = startAttempt({
    app,
    revision,
    entry,
    timings,
    commit: snapshot.commit,
    fileExists: async (path) => (await snapshot.stat(path)) !== undefined,
    ...(req.signal ? { signal: req.signal } : {}),
  });
  return { attempt, snapshot };
}
