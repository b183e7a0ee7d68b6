/**
 * The ledger's off-box replica: every committed change of the ledger database, shipped to S3-compatible object
 * storage within seconds, so the history (and a restore without Git) survives the loss of the agent's disk.
 *
 * Row shipping, not file copies: triggers on every ledger table note which row changed in `replica_log`; the
 * shipper reads the current image of those rows and puts them as one immutable, append-only segment
 * (`gen/<generation>/seg/<seq>.json`), after a base snapshot of the whole file (`gen/<generation>/base/<seq>.db`,
 * SQLite's online backup). A restore downloads the newest base and applies the later segments in order: the
 * result holds the same rows, bytes and hashes, so `ledger verify` accepts it. A no-op resync ships a few hundred
 * bytes, not the file. It knows no table of the ledger by name, so schema migrations need no change here.
 * A generation starts whenever the log table is new (first start, or after a restore on a new host); older
 * generations are removed once the new base is stored. The store being down never stops a sync: the log waits
 * in the database, the lag is reported (`berth_ledger_replica_lag_seconds`) and shipping retries with backoff.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { messageOf } from "../object/errors.ts";
import { type Driver, openDriver, type Row, type SqlValue } from "./driver.ts";
import type { S3Store } from "./s3-store.ts";

const LOG = "replica_log";
const STATE = "replica_state";
const TRIGGER_PREFIX = "berth_replica_";
/** Rows per segment: a 1,000-object entry fits in one. */
const SEGMENT_ROWS = 5000;
/** Segments after which a new base is stored and the older segments removed. */
const SEGMENTS_PER_BASE = 500;
const NOW_S = "((julianday('now') - 2440587.5) * 86400.0)";

/** A row image in a segment: table, rowid and column values (absent `v`: the row was deleted). */
interface SegmentRow {
  t: string;
  r: number;
  v?: Record<string, unknown>;
}

interface Segment {
  generation: string;
  from: number;
  to: number;
  rows: SegmentRow[];
}

export interface ReplicaOptions {
  /** How often to ship, ms (default 2 s). */
  intervalMs?: number;
  log?: (level: "info" | "warn", message: string, fields?: Record<string, unknown>) => void;
}

/**
 * One pass at a time against the store, repeated on a timer until stopped: the shipper's and the follower's
 * schedule. `next` says, after each timed pass, how long to wait before the following one.
 */
class PassLoop {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private current: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly pass: () => Promise<void>,
    private readonly next: { ok(): number; failed(err: unknown): number },
  ) {}

  /** Runs a pass in `ms` (no-op once stopped). */
  schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.current = this.pass().then(
        () => this.schedule(this.next.ok()),
        (err) => this.schedule(this.next.failed(err)),
      );
    }, ms);
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** Runs a pass now, after the one in progress; throws what the pass throws. */
  async now(): Promise<void> {
    await this.current;
    const run = this.pass();
    this.current = run.catch(() => {});
    await run;
  }

  /** Stops the timer after a last pass bounded by `graceMs`; false if already stopped. */
  async stop(graceMs: number): Promise<boolean> {
    if (this.stopped) return false;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await Promise.race([this.now().catch(() => {}), new Promise((r) => setTimeout(r, graceMs))]);
    await this.current;
    return true;
  }
}

/** A running replica of one ledger file. */
export class LedgerReplica {
  private readonly loop: PassLoop;
  private failures = 0;
  private segmentsSinceBase = 0;
  /** The last error talking to the store, cleared by the next success. */
  lastError: string | undefined;
  /** When a shipment last reached the store (ISO time). */
  lastShippedAt: string | undefined;

  private constructor(
    private readonly db: Driver,
    private readonly store: S3Store,
    private readonly generation: string,
    private baseSeq: number | undefined,
    private readonly options: ReplicaOptions,
  ) {
    this.loop = new PassLoop(() => this.shipAll(), {
      ok: () => {
        if (this.failures > 0)
          this.options.log?.("info", "ledger replica reachable again", { replica: this.store.where });
        this.failures = 0;
        this.lastError = undefined;
        return this.options.intervalMs ?? 2000;
      },
      failed: (err) => {
        this.lastError = messageOf(err);
        if (this.failures === 0)
          this.options.log?.(
            "warn",
            "ledger replica unreachable; syncing goes on, changes wait in the ledger",
            {
              replica: this.store.where,
              error: this.lastError,
            },
          );
        this.failures++;
        // Backoff doubling from the interval to one minute, with jitter.
        const base = Math.min(60_000, (this.options.intervalMs ?? 2000) * 2 ** Math.min(this.failures, 5));
        return Math.round(base * (0.8 + Math.random() * 0.4));
      },
    });
  }

  /** Opens a second connection to the ledger file, installs the change log and starts shipping. */
  static async start(path: string, store: S3Store, options: ReplicaOptions = {}): Promise<LedgerReplica> {
    const db = await openDriver(path);
    db.exec("PRAGMA busy_timeout = 5000");
    const generation = install(db);
    const base = db.get<{ base_seq: number | null }>(`SELECT base_seq FROM ${STATE}`)?.base_seq ?? undefined;
    const replica = new LedgerReplica(db, store, generation, base, options);
    replica.loop.schedule(0);
    return replica;
  }

  /** Seconds the oldest change not yet in the store has waited (0 when caught up). */
  lagSeconds(): number {
    const row = this.db.get<{ lag: number | null }>(`SELECT ${NOW_S} - MIN(at) AS lag FROM ${LOG}`);
    const base = this.baseSeq === undefined ? this.sinceStart() : 0;
    return Math.max(0, row?.lag ?? 0, base);
  }

  /** Ships everything logged so far (waits for a shipment in progress first); throws if the store refuses. */
  flush(): Promise<void> {
    return this.loop.now();
  }

  /** Stops shipping (after a last attempt bounded by `graceMs`) and closes the connection. */
  async close(graceMs = 5000): Promise<void> {
    if (await this.loop.stop(graceMs)) this.db.close();
  }

  private sinceStart(): number {
    const at = this.db.get<{ started: number | null }>(`SELECT ${NOW_S} - started AS started FROM ${STATE}`);
    return at?.started ?? 0;
  }

  private async shipAll(): Promise<void> {
    if (this.baseSeq === undefined || this.segmentsSinceBase >= SEGMENTS_PER_BASE) await this.putBase();
    for (;;) {
      const shipped = await this.shipSegment();
      if (!shipped) break;
    }
    this.lastShippedAt = new Date().toISOString();
  }

  /** Stores a full copy of the ledger, then removes what it supersedes (older bases, segments, generations). */
  private async putBase(): Promise<void> {
    const seq = this.db.get<{ seq: number | null }>(`SELECT MAX(seq) AS seq FROM ${LOG}`)?.seq ?? 0;
    const shipped =
      this.db.get<{ shipped: number | null }>(`SELECT shipped_seq AS shipped FROM ${STATE}`)?.shipped ?? 0;
    // Every change up to `upTo` is in the copy: what the log holds now (and any later write, replayed again later).
    const upTo = Math.max(seq, shipped);
    const dir = mkdtempSync(join(tmpdir(), "berth-replica-"));
    try {
      const file = join(dir, "base.db");
      await this.db.backup(file);
      await this.store.put(`gen/${this.generation}/base/${pad(upTo)}.db`, readFileSync(file));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    this.db.transaction(() => {
      this.db.run(`DELETE FROM ${LOG} WHERE seq <= ?`, [upTo]);
      this.db.run(`UPDATE ${STATE} SET base_seq = ?, shipped_seq = MAX(shipped_seq, ?)`, [upTo, upTo]);
    });
    this.baseSeq = upTo;
    this.segmentsSinceBase = 0;
    // The new base stands alone: this generation's older bases and segments are no longer needed to restore.
    // Other generations (another host's, or this host's before a restore) are left alone.
    for (const key of await this.store.list(`gen/${this.generation}/`)) {
      const [, , kind, name] = key.split("/");
      const n = Number.parseInt(name ?? "", 10);
      if ((kind === "base" && n < upTo) || (kind === "seg" && n <= upTo)) await this.store.delete(key);
    }
  }

  /** Ships the next batch of logged changes as one segment; false when there was nothing to ship. */
  private async shipSegment(): Promise<boolean> {
    const log = this.db.all<{ seq: number; tbl: string; row: number }>(
      `SELECT seq, tbl, row FROM ${LOG} ORDER BY seq LIMIT ${SEGMENT_ROWS}`,
    );
    if (log.length === 0) return false;
    const from = (log[0] as { seq: number }).seq;
    const to = (log.at(-1) as { seq: number }).seq;
    // The newest image of each changed row; a row gone since is shipped as deleted (its delete is logged too).
    const byTable = new Map<string, Set<number>>();
    for (const l of log) {
      const set = byTable.get(l.tbl) ?? new Set<number>();
      set.add(Number(l.row));
      byTable.set(l.tbl, set);
    }
    const rows: SegmentRow[] = [];
    for (const [table, ids] of byTable) {
      const found = new Map<number, Row>();
      const list = [...ids];
      for (let i = 0; i < list.length; i += 500) {
        const chunk = list.slice(i, i + 500);
        const images = this.db.all(
          `SELECT rowid AS "__rowid", * FROM ${quote(table)} WHERE rowid IN (${chunk.map(() => "?").join(",")})`,
          chunk,
        );
        for (const image of images) found.set(Number(image.__rowid), image);
      }
      for (const id of list) {
        const image = found.get(id);
        if (!image) rows.push({ t: table, r: id });
        else {
          const { __rowid: _r, ...values } = image;
          rows.push({ t: table, r: id, v: encodeRow(values) });
        }
      }
    }
    const segment: Segment = { generation: this.generation, from, to, rows };
    await this.store.put(`gen/${this.generation}/seg/${pad(to)}.json`, JSON.stringify(segment));
    this.db.transaction(() => {
      this.db.run(`DELETE FROM ${LOG} WHERE seq <= ?`, [to]);
      this.db.run(`UPDATE ${STATE} SET shipped_seq = MAX(shipped_seq, ?)`, [to]);
    });
    this.segmentsSinceBase++;
    return true;
  }
}

/**
 * Creates the change log, its state row and a trigger set per ledger table (idempotent); returns the
 * generation, new when the log table had to be created.
 */
function install(db: Driver): string {
  return db.transaction(() => {
    const exists = db.get(`SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = ?`, [LOG]);
    db.exec(
      `CREATE TABLE IF NOT EXISTS ${LOG} (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, row INTEGER NOT NULL, at REAL NOT NULL);
       CREATE TABLE IF NOT EXISTS ${STATE} (generation TEXT NOT NULL, base_seq INTEGER, shipped_seq INTEGER NOT NULL DEFAULT 0, started REAL NOT NULL);`,
    );
    if (!exists || !db.get(`SELECT 1 AS x FROM ${STATE}`)) {
      db.run(`DELETE FROM ${STATE}`);
      const generation = `${new Date().toISOString().replace(/[-:.]/g, "")}-${randomBytes(4).toString("hex")}`;
      db.run(
        `INSERT INTO ${STATE} (generation, base_seq, shipped_seq, started) VALUES (?, NULL, 0, ${NOW_S})`,
        [generation],
      );
    }
    const tables = db
      .all<{ name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT IN (?, ?)",
        [LOG, STATE],
      )
      .map((t) => t.name);
    for (const t of tables) {
      for (const [when, ref] of [
        ["INSERT", "NEW"],
        ["UPDATE", "NEW"],
        ["DELETE", "OLD"],
      ] as const) {
        db.exec(
          `CREATE TRIGGER IF NOT EXISTS ${quote(`${TRIGGER_PREFIX}${t}_${when.toLowerCase()}`)} AFTER ${when} ON ${quote(t)} BEGIN INSERT INTO ${LOG} (tbl, row, at) VALUES (${literal(t)}, ${ref}.rowid, ${NOW_S}); END;`,
        );
      }
    }
    return (db.get<{ generation: string }>(`SELECT generation FROM ${STATE}`) as { generation: string })
      .generation;
  });
}

const FOLLOW = "replica_follow";

/**
 * An HA standby's view of the leader's replica: it applies the newest generation's base, then each new segment,
 * to its own ledger file (read-only to the standby's engine), so that on takeover it continues the same chain
 * and inventory — and prunes what the old leader applied. The standby never ships.
 */
export class LedgerFollower {
  private readonly loop: PassLoop;
  lastError: string | undefined;
  /** The generation and segment applied last. */
  position: { generation: string; seq: number } | undefined;

  private constructor(
    private readonly db: Driver,
    private readonly store: S3Store,
    private readonly options: ReplicaOptions,
  ) {
    this.loop = new PassLoop(() => this.pass(), {
      ok: () => {
        this.lastError = undefined;
        return this.options.intervalMs ?? 2000;
      },
      failed: (err) => {
        if (this.lastError === undefined)
          this.options.log?.("warn", "cannot follow the ledger replica", { error: messageOf(err) });
        this.lastError = messageOf(err);
        return Math.min(30_000, (this.options.intervalMs ?? 2000) * 4);
      },
    });
  }

  static async start(path: string, store: S3Store, options: ReplicaOptions = {}): Promise<LedgerFollower> {
    const db = await openDriver(path);
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec(`CREATE TABLE IF NOT EXISTS ${FOLLOW} (generation TEXT NOT NULL, seq INTEGER NOT NULL)`);
    const f = new LedgerFollower(db, store, options);
    f.position = db.get<{ generation: string; seq: number }>(`SELECT generation, seq FROM ${FOLLOW}`);
    f.loop.schedule(0);
    return f;
  }

  /** Applies whatever the store holds now (waits for a pass in progress first). */
  catchUp(): Promise<void> {
    return this.loop.now();
  }

  /** Stops following after a last pass bounded by `graceMs` (the caller is taking over). */
  async close(graceMs = 5000): Promise<void> {
    if (!(await this.loop.stop(graceMs))) return;
    this.db.exec(`DROP TABLE IF EXISTS ${FOLLOW}`);
    this.db.close();
  }

  private async pass(): Promise<void> {
    const keys = await this.store.list("gen/");
    const base = newestBase(keys);
    if (!base) return; // nothing shipped yet
    const { generation } = base;
    let seq = this.position?.generation === generation ? this.position.seq : undefined;
    if (seq === undefined) {
      await this.copyBase(base.key);
      seq = base.seq;
      this.remember(generation, seq);
    }
    const segments = segmentsAfter(keys, generation, seq);
    for (const { key: k, seq: n } of segments) {
      const raw = await this.store.get(k);
      if (!raw) break; // superseded by a newer base meanwhile: the next pass starts from it
      this.db.exec("PRAGMA foreign_keys = OFF");
      try {
        applySegment(this.db, JSON.parse(new TextDecoder().decode(raw)) as Segment, k);
      } finally {
        this.db.exec("PRAGMA foreign_keys = ON");
      }
      this.remember(generation, n);
    }
  }

  /** Replaces every ledger table's rows with the base copy's (a second connection reads the downloaded file). */
  private async copyBase(key: string): Promise<void> {
    const bytes = await this.store.get(key);
    if (!bytes) return;
    const dir = mkdtempSync(join(tmpdir(), "berth-follow-"));
    try {
      const file = join(dir, "base.db");
      writeFileSync(file, bytes, { mode: 0o600 });
      const base = await openDriver(file);
      try {
        const tables = base
          .all<{ name: string }>(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'replica_%'",
          )
          .map((t) => t.name);
        this.db.exec("PRAGMA foreign_keys = OFF");
        try {
          this.db.transaction(() => {
            for (const t of tables) {
              this.db.run(`DELETE FROM ${quote(t)}`);
              for (const row of base.all(`SELECT rowid AS "__rowid", * FROM ${quote(t)}`)) {
                const { __rowid, ...values } = row;
                upsert(this.db, t, Number(__rowid), values);
              }
            }
          });
        } finally {
          this.db.exec("PRAGMA foreign_keys = ON");
        }
      } finally {
        base.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private remember(generation: string, seq: number): void {
    this.db.transaction(() => {
      this.db.run(`DELETE FROM ${FOLLOW}`);
      this.db.run(`INSERT INTO ${FOLLOW} (generation, seq) VALUES (?, ?)`, [generation, seq]);
    });
    this.position = { generation, seq };
  }
}

/**
 * Rebuilds a ledger file at `target` (which must not exist) from the replica: the newest generation's newest
 * base, then its later segments in order. Returns what was applied.
 */
export async function restoreFromReplica(
  store: S3Store,
  target: string,
): Promise<{ generation: string; base: number; segments: number }> {
  const keys = await store.list("gen/");
  const base = newestBase(keys);
  if (!base) throw new Error(`${store.where} holds no ledger replica (no base under gen/)`);
  const { generation, seq: baseSeq } = base;
  const bytes = await store.get(base.key);
  if (!bytes) throw new Error(`${store.where}${base.key} vanished while restoring`);
  writeFileSync(target, bytes, { flag: "wx", mode: 0o600 });
  const segments = segmentsAfter(keys, generation, baseSeq).map((x) => x.key);
  const db = await openDriver(target);
  try {
    // Rows are put back as they are: no cascade may delete an entry's objects when the entry's row is updated.
    db.exec("PRAGMA foreign_keys = OFF");
    for (const key of segments) {
      const raw = await store.get(key);
      if (!raw) throw new Error(`${store.where}${key} vanished while restoring`);
      applySegment(db, JSON.parse(new TextDecoder().decode(raw)) as Segment, key);
    }
    // The restored file is a ledger like any other: no change log until a replica starts on it (a new generation).
    for (const t of db.all<{ name: string }>(
      `SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '${TRIGGER_PREFIX}%'`,
    ))
      db.exec(`DROP TRIGGER ${quote(t.name)}`);
    db.exec(`DROP TABLE IF EXISTS ${LOG}; DROP TABLE IF EXISTS ${STATE};`);
  } finally {
    db.close();
  }
  return { generation, base: baseSeq, segments: segments.length };
}

/**
 * The newest generation's newest base: its key, generation and the log sequence it covers. Generations and
 * sequence numbers are written so that key order is time order.
 */
function newestBase(keys: readonly string[]): { key: string; generation: string; seq: number } | undefined {
  const key = keys
    .filter((k) => /^gen\/[^/]+\/base\/\d+\.db$/.test(k))
    .sort()
    .at(-1);
  if (!key) return undefined;
  const [, generation = "", , name = ""] = key.split("/");
  return { key, generation, seq: Number.parseInt(name, 10) };
}

/** A generation's segments after log sequence `seq`, oldest first. */
function segmentsAfter(
  keys: readonly string[],
  generation: string,
  seq: number,
): Array<{ key: string; seq: number }> {
  return keys
    .filter((k) => k.startsWith(`gen/${generation}/seg/`))
    .map((key) => ({ key, seq: Number.parseInt(key.split("/").at(-1) ?? "", 10) }))
    .filter((x) => x.seq > seq)
    .sort((a, b) => a.seq - b.seq);
}

/** Deletes first, then each row's newest image (update, else insert); a row blocked by another's old key goes last. */
function applySegment(db: Driver, segment: Segment, key: string): void {
  db.transaction(() => {
    for (const row of segment.rows)
      if (!row.v) db.run(`DELETE FROM ${quote(row.t)} WHERE rowid = ?`, [row.r]);
    let pending = segment.rows.filter((r) => r.v);
    for (let pass = 0; pending.length > 0; pass++) {
      const failed: SegmentRow[] = [];
      let lastError: unknown;
      for (const row of pending) {
        try {
          upsert(db, row.t, row.r, decodeRow(row.v ?? {}));
        } catch (err) {
          failed.push(row);
          lastError = err;
        }
      }
      if (failed.length === pending.length || pass > 3)
        throw new Error(
          `${key}: cannot apply ${failed.length} row(s) of ${failed[0]?.t}: ${messageOf(lastError)}`,
        );
      pending = failed;
    }
  });
}

/** Puts one row's values back under its rowid: an update, else an insert. */
function upsert(db: Driver, table: string, rowid: number, values: Record<string, SqlValue>): void {
  const cols = Object.keys(values);
  const params = cols.map((c) => values[c] as SqlValue);
  const updated = db.run(
    `UPDATE ${quote(table)} SET ${cols.map((c) => `${quote(c)} = ?`).join(", ")} WHERE rowid = ?`,
    [...params, rowid],
  );
  if (updated.changes === 0)
    db.run(
      `INSERT INTO ${quote(table)} (rowid, ${cols.map(quote).join(", ")}) VALUES (?, ${cols.map(() => "?").join(", ")})`,
      [rowid, ...params],
    );
}

function encodeRow(values: Row): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) {
    if (v instanceof Uint8Array) out[k] = { $b64: Buffer.from(v).toString("base64") };
    else if (typeof v === "bigint") out[k] = { $int: v.toString() };
    else out[k] = v;
  }
  return out;
}

function decodeRow(values: Record<string, unknown>): Record<string, SqlValue> {
  const out: Record<string, SqlValue> = {};
  for (const [k, v] of Object.entries(values)) {
    if (v && typeof v === "object" && "$b64" in v)
      out[k] = new Uint8Array(Buffer.from(String(v.$b64), "base64"));
    else if (v && typeof v === "object" && "$int" in v) out[k] = BigInt(String(v.$int));
    else out[k] = v as SqlValue;
  }
  return out;
}

const pad = (n: number) => String(n).padStart(16, "0");
const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;
