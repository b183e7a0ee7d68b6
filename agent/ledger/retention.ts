/**
 * Retention: drops entries older than maxAge beyond each app's newest keepLast, never an app's last healthy
 * entry, a pinned entry or an entry an unexpired approval names (app and revision). The dropped part of the
 * chain is replaced by one checkpoint (the hash at its last position and the positions kept below it), so
 * `verify` still checks every remaining link. Snapshots and blobs no entry, inventory or kept snapshot
 * references are then collected.
 */
import { canonicalJson } from "../object/canonical.ts";
import { type CheckpointRow, checkpointHashOf } from "./chain.ts";
import type { Driver } from "./driver.ts";
import { bucketItems, rootBuckets } from "./snapshot.ts";

/** What gc keeps and whether it only reports. */
export interface GcOptions {
  /** Entries younger than this (ms) are kept. */
  maxAgeMs: number;
  /** Each app's newest this-many entries are kept. */
  keepLast: number;
  /** Report what would be dropped, change nothing. */
  dryRun?: boolean;
}

/** What gc dropped (or would drop). */
export interface GcReport {
  dryRun: boolean;
  entriesDropped: number;
  entriesKept: number;
  /** Old entries kept because they are an app's last healthy one, pinned or approved. */
  protectedKept: number;
  snapshotsDropped: number;
  blobsDropped: number;
  driftEventsDropped: number;
  /** Blob collection waits while a sync is Running (its manifests are stored before it is finished). */
  blobsSkipped: boolean;
  /** Chain position the checkpoint covers (0: none). */
  checkpoint: number;
}

class Rollback extends Error {
  constructor(readonly report: GcReport) {
    super("dry run");
  }
}

/** Runs gc in one transaction (rolled back for a dry run). */
export function collectGarbage(db: Driver, options: GcOptions, now: Date): GcReport {
  const keepLast = Math.max(1, Math.trunc(options.keepLast));
  const cutoff = new Date(now.getTime() - options.maxAgeMs).toISOString();
  try {
    return db.transaction(() => {
      const report = run(db, keepLast, cutoff, now.toISOString());
      report.dryRun = options.dryRun === true;
      if (options.dryRun) throw new Rollback(report);
      return report;
    });
  } catch (err) {
    if (err instanceof Rollback) return err.report;
    throw err;
  }
}

function run(db: Driver, keepLast: number, cutoff: string, at: string): GcReport {
  const ids = (sql: string, params: Array<string | number> = []) =>
    new Set(db.all<{ id: number }>(sql, params).map((r) => Number(r.id)));
  const recent = ids(
    `SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY app ORDER BY chain_seq DESC) AS rn
       FROM entries WHERE chain_seq IS NOT NULL) WHERE rn <= ?`,
    [keepLast],
  );
  const guarded = new Set([
    // An app's newest Succeeded entry with manifests: what `replay --to last-healthy` restores.
    ...ids(
      `SELECT (SELECT e.id FROM entries e WHERE e.app = a.app AND e.outcome = 'Succeeded' AND (e.inventory_root IS NOT NULL
          OR EXISTS (SELECT 1 FROM entry_objects o WHERE o.entry_id = e.id AND o.digest IS NOT NULL AND o.action <> 'deleted'))
        ORDER BY e.chain_seq DESC LIMIT 1) AS id FROM (SELECT DISTINCT app FROM entries) a`,
    ),
    ...ids("SELECT entry_id AS id FROM pins"),
    ...ids(
      "SELECT e.id AS id FROM entries e JOIN approvals a ON a.app = e.app AND a.revision = e.revision WHERE a.expires_at > ?",
      [at],
    ),
  ]);
  const old = db.all<{ id: number; chain_seq: number; hash: string }>(
    `SELECT e.id, e.chain_seq, e.hash FROM entries e LEFT JOIN verifications v ON v.entry_id = e.id
     WHERE e.chain_seq IS NOT NULL AND e.finished_at < ? AND (v.last_at IS NULL OR v.last_at < ?) ORDER BY e.chain_seq`,
    [cutoff, cutoff],
  );
  const drop = old.filter((e) => !recent.has(Number(e.id)) && !guarded.has(Number(e.id)));
  const protectedKept = old.filter((e) => !recent.has(Number(e.id)) && guarded.has(Number(e.id))).length;

  const previous = db.get<CheckpointRow>("SELECT * FROM checkpoints WHERE id = 1");
  let checkpoint = Number(previous?.chain_seq ?? 0);
  if (drop.length > 0) {
    const lastDropped = drop.at(-1) as { chain_seq: number; hash: string };
    let head = previous?.head_hash ?? "";
    if (Number(lastDropped.chain_seq) > checkpoint) {
      checkpoint = Number(lastDropped.chain_seq);
      head = lastDropped.hash;
    }
    const dropIds = drop.map((e) => Number(e.id));
    for (let i = 0; i < dropIds.length; i += 500) {
      const part = dropIds.slice(i, i + 500);
      db.run(`DELETE FROM entries WHERE id IN (${part.map(() => "?").join(",")})`, part);
    }
    const kept = db
      .all<{ chain_seq: number; hash: string }>(
        "SELECT chain_seq, hash FROM entries WHERE chain_seq IS NOT NULL AND chain_seq <= ? ORDER BY chain_seq",
        [checkpoint],
      )
      .map((r) => [Number(r.chain_seq), r.hash]);
    const row = {
      chain_seq: checkpoint,
      head_hash: head,
      kept_json: canonicalJson(kept),
      dropped: Number(previous?.dropped ?? 0) + drop.length,
      created_at: at,
      previous: previous?.hash ?? null,
    };
    db.run(
      "INSERT INTO checkpoints (id, chain_seq, head_hash, kept_json, dropped, created_at, previous, hash) VALUES (1, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET chain_seq = excluded.chain_seq, head_hash = excluded.head_hash, kept_json = excluded.kept_json, dropped = excluded.dropped, created_at = excluded.created_at, previous = excluded.previous, hash = excluded.hash",
      [
        row.chain_seq,
        row.head_hash,
        row.kept_json,
        row.dropped,
        row.created_at,
        row.previous,
        checkpointHashOf(row),
      ],
    );
  }
  const driftEventsDropped = db.run("DELETE FROM drift_events WHERE detected_at < ?", [cutoff]).changes;
  db.run("DELETE FROM approvals WHERE expires_at <= ?", [at]);

  const report: GcReport = {
    dryRun: false,
    entriesDropped: drop.length,
    entriesKept: Number(db.get<{ n: number }>("SELECT COUNT(*) AS n FROM entries")?.n ?? 0),
    protectedKept,
    snapshotsDropped: 0,
    blobsDropped: 0,
    driftEventsDropped,
    blobsSkipped: false,
    checkpoint,
  };
  // A Running sync has stored manifests no finished entry references yet: collect another time.
  if (db.get("SELECT 1 AS x FROM entries WHERE outcome = 'Running' LIMIT 1")) {
    report.blobsSkipped = true;
    return report;
  }
  const liveSnapshots = new Set<string>();
  const liveBlobs = new Set<string>();
  for (const { inventory_root: root } of db.all<{ inventory_root: string }>(
    "SELECT DISTINCT inventory_root FROM entries WHERE inventory_root IS NOT NULL",
  )) {
    liveSnapshots.add(root);
    for (const bucket of rootBuckets(db, root).values()) {
      if (liveSnapshots.has(bucket)) continue;
      liveSnapshots.add(bucket);
      for (const item of bucketItems(db, bucket)) if (item[2] !== null) liveBlobs.add(item[2]);
    }
  }
  for (const r of db.all<{ digest: string }>(
    "SELECT DISTINCT digest FROM entry_objects WHERE digest IS NOT NULL UNION SELECT DISTINCT digest FROM inventory",
  ))
    liveBlobs.add(r.digest);
  for (const { digest } of db.all<{ digest: string }>("SELECT digest FROM snapshots")) {
    if (!liveSnapshots.has(digest)) {
      db.run("DELETE FROM snapshots WHERE digest = ?", [digest]);
      report.snapshotsDropped++;
    }
  }
  for (const { digest } of db.all<{ digest: string }>("SELECT digest FROM blobs")) {
    if (!liveBlobs.has(digest)) {
      db.run("DELETE FROM blobs WHERE digest = ?", [digest]);
      report.blobsDropped++;
    }
  }
  return report;
}
