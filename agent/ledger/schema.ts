/** Connection settings and versioned schema migrations of the ledger database. */
import type { Driver } from "./driver.ts";

/**
 * Migrations in order; migration i brings the schema to version i + 1 (kept in PRAGMA user_version).
 * Never edit one that has shipped: append a new one.
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app TEXT NOT NULL,
    revision TEXT NOT NULL,
    commit_json TEXT,
    trigger TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('Running', 'Succeeded', 'Failed')),
    reason TEXT,
    message TEXT,
    rendered_digest TEXT,
    health TEXT,
    timings_json TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    chain_seq INTEGER UNIQUE,
    prev_hash TEXT,
    content_hash TEXT,
    hash TEXT
  );
  CREATE INDEX entries_app_id ON entries (app, id);
  CREATE INDEX entries_running ON entries (outcome) WHERE outcome = 'Running';
  CREATE TABLE entry_objects (
    entry_id INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    object_id TEXT NOT NULL,
    ref_json TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('created', 'configured', 'unchanged', 'deleted', 'skipped')),
    health TEXT,
    message TEXT,
    digest TEXT,
    PRIMARY KEY (entry_id, seq)
  );
  CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    encoding TEXT NOT NULL CHECK (encoding IN ('plain', 'redacted', 'aes-256-gcm')),
    content BLOB NOT NULL,
    content_hash TEXT NOT NULL,
    key_id TEXT,
    iv BLOB,
    created_at TEXT NOT NULL
  );
  CREATE TABLE inventory (
    app TEXT NOT NULL,
    object_id TEXT NOT NULL,
    ref_json TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (app, object_id)
  );
  `,
  // Pins: an app held at an entry (replayed instead of Git) until unpinned; state, not history, so unchained.
  `
  CREATE TABLE pins (
    app TEXT PRIMARY KEY,
    entry_id INTEGER NOT NULL REFERENCES entries (id),
    pinned_at TEXT NOT NULL,
    pending_revision TEXT
  );
  `,
  // Rule verdicts of each entry (hash-chained with it) and approvals of held syncs (state, unchained;
  // an approval that lets a sync through is recorded in that entry's verdicts, so the chain keeps it).
  `
  CREATE TABLE entry_verdicts (
    entry_id INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    rule TEXT NOT NULL,
    rule_at TEXT NOT NULL,
    verdict TEXT NOT NULL,
    subject TEXT,
    message TEXT NOT NULL,
    approved_by TEXT,
    PRIMARY KEY (entry_id, seq)
  );
  CREATE TABLE approvals (
    app TEXT NOT NULL,
    revision TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    approved_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    override_window INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (app, revision)
  );
  `,
  // Drift events: out-of-band changes of fields berth owns, who made them and what berth did (not chained).
  `
  CREATE TABLE drift_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    app TEXT NOT NULL,
    object_id TEXT NOT NULL,
    ref_json TEXT NOT NULL,
    manager TEXT NOT NULL,
    fields_json TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('healed', 'alerted', 'heal-failed')),
    message TEXT,
    detected_at TEXT NOT NULL
  );
  CREATE INDEX drift_events_app_id ON drift_events (app, id);
  `,
  // Where each inventory object was rendered from, so a prune can say why it left Git (state, not chained).
  `
  ALTER TABLE inventory ADD COLUMN source TEXT;
  `,
  // Bounded growth (one step, so a ledger migrates atomically): entries keep rows only for objects that
  // changed and point at a content-addressed inventory snapshot (inventory_root, chained); a no-op resync
  // updates the verified record of the app's last entry; sealed_json chains the final verified record of the
  // entry before; gc leaves one checkpoint of the chain it dropped; meta holds small state (last gc).
  `
  ALTER TABLE entries ADD COLUMN inventory_root TEXT;
  ALTER TABLE entries ADD COLUMN sealed_json TEXT;
  CREATE INDEX entries_app_seq ON entries (app, chain_seq);
  CREATE INDEX entry_objects_digest ON entry_objects (digest);
  CREATE TABLE snapshots (
    digest TEXT PRIMARY KEY,
    content TEXT NOT NULL,
    created_at TEXT NOT NULL
  );
  CREATE TABLE verifications (
    entry_id INTEGER PRIMARY KEY REFERENCES entries (id) ON DELETE CASCADE,
    count INTEGER NOT NULL,
    first_at TEXT NOT NULL,
    last_at TEXT NOT NULL,
    health TEXT,
    hash TEXT NOT NULL
  );
  CREATE TABLE checkpoints (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    chain_seq INTEGER NOT NULL,
    head_hash TEXT NOT NULL,
    kept_json TEXT NOT NULL,
    dropped INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    previous TEXT,
    hash TEXT NOT NULL
  );
  CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  // Whether each planned write reached the cluster; NULL on rows written before (and on objects not written).
  `
  ALTER TABLE entry_objects ADD COLUMN status TEXT CHECK (status IN ('applied', 'failed', 'not-attempted'));
  `,
  // Render memos: each app's newest successful render under a durable render key, by the digests of the
  // manifests stored of it, so a later process can skip rendering an unchanged app (a cache: unchained, and
  // gone with its entry).
  `
  CREATE TABLE render_memos (
    app TEXT PRIMARY KEY,
    entry_id INTEGER NOT NULL REFERENCES entries (id) ON DELETE CASCADE,
    render_key TEXT NOT NULL,
    memo_json TEXT NOT NULL
  );
  CREATE INDEX render_memos_entry ON render_memos (entry_id);
  `,
  // Approvals in the order they were written (seq, from a counter in meta that never goes back, even when
  // retention deletes the newest): the notifier's cursor. approved_at could not be one: two approvals in the same
  // millisecond, the second written after the notifier read the first, left the second untold. Rows already
  // there are numbered by approved_at.
  `
  ALTER TABLE approvals ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
  UPDATE approvals SET seq = (
    SELECT count(*) FROM approvals b
    WHERE b.approved_at < approvals.approved_at OR (b.approved_at = approvals.approved_at AND b.rowid <= approvals.rowid)
  );
  INSERT OR REPLACE INTO meta (key, value) VALUES ('approval_seq', (SELECT count(*) FROM approvals));
  CREATE INDEX approvals_seq ON approvals (seq);
  `,
];

/** The schema version this code writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Sets WAL, foreign keys and a busy timeout; these are per connection, so they run on every open. */
export function configure(db: Driver): void {
  // busy_timeout first: switching to WAL needs a lock another process may hold.
  db.exec("PRAGMA busy_timeout = 5000");
  // Takes effect only on a new, empty file (an older ledger switches at its first gc, which VACUUMs once):
  // lets gc hand freed pages back to the file system with an incremental vacuum.
  db.exec("PRAGMA auto_vacuum = INCREMENTAL");
  const mode = db.get<{ journal_mode: string }>("PRAGMA journal_mode = WAL")?.journal_mode;
  if (mode !== "wal" && mode !== "memory") throw new Error(`cannot switch to WAL (journal_mode is ${mode})`);
  db.exec("PRAGMA foreign_keys = ON");
  // NORMAL is durable across application crashes in WAL mode and avoids an fsync per commit.
  db.exec("PRAGMA synchronous = NORMAL");
  // 512 KiB of page cache, not SQLite's 2 MiB: an agent's ledger work is a few rows per pass, and pages read
  // again come from the kernel's cache (scripts/bench/README.md, footprint).
  db.exec("PRAGMA cache_size = -512");
}

/** The schema version stored in the file. */
export function schemaVersion(db: Driver): number {
  return Number(db.get<{ user_version: number }>("PRAGMA user_version")?.user_version ?? 0);
}

/** Applies the missing migrations, each in its own transaction; returns the versions before and after. */
export function migrate(db: Driver): { from: number; to: number } {
  const from = schemaVersion(db);
  if (from > SCHEMA_VERSION) {
    throw new Error(`schema version ${from} is newer than this berth understands (${SCHEMA_VERSION})`);
  }
  for (let version = from; version < SCHEMA_VERSION; version++) {
    db.transaction(() => {
      // Re-read under the write lock: another process may have migrated meanwhile.
      if (schemaVersion(db) !== version) return;
      db.exec(MIGRATIONS[version] ?? "");
      db.exec(`PRAGMA user_version = ${version + 1}`);
    });
  }
  return { from, to: schemaVersion(db) };
}
