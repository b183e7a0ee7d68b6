/**
 * The ledger: a local SQLite database recording every sync attempt, the manifests it applied
 * (content-addressed, Secrets never in plaintext), each app's inventory, and a hash chain over entries.
 */
import { canonicalJson, digestOf, sha256Hex } from "../object/canonical.ts";
import { BerthError, messageOf } from "../object/errors.ts";
import { type KubeObject, objectId, refOf } from "../object/object.ts";
import { compareApplyOrder } from "../object/order.ts";
import {
  chainHashOf,
  contentHashOf,
  GENESIS_HASH,
  type VerifyResult,
  verificationHashOf,
  verifyLedger,
} from "./chain.ts";
import { type Driver, openDriver, type SqlValue } from "./driver.ts";
import {
  type BeginInput,
  type DriftEvent,
  type EntryRow,
  type EntrySummary,
  entryOf,
  type FinishInput,
  type InventoryItem,
  type LedgerEntry,
  type ObjectRecord,
  type ObjectRow,
  objectRecordOf,
  summaryOf,
  type VerdictRow,
  type VerificationRow,
  verifiedRunOf,
} from "./entry.ts";
import { collectGarbage, type GcOptions, type GcReport } from "./retention.ts";
import { configure, migrate } from "./schema.ts";
import {
  DigestKeyFile,
  deriveKeys,
  digestKeyPathOf,
  isSecret,
  keyedDigestOf,
  redactSecret,
  type SecretKeys,
  seal,
  unseal,
} from "./secrets.ts";
import {
  type BuiltSnapshot,
  bucketItems,
  buildSnapshot,
  fitsSnapshot,
  itemOf,
  loadSnapshot,
  mergeRecords,
  readRoot,
  refJson,
  type SnapshotItem,
  storeSnapshot,
} from "./snapshot.ts";
import { ledgerFault } from "./storage.ts";

export type { VerifyResult } from "./chain.ts";
export type {
  BeginInput,
  DriftEvent,
  EntrySummary,
  FinishInput,
  InventoryItem,
  LedgerEntry,
  ObjectRecord,
  Outcome,
  VerdictRecord,
  VerifiedRun,
} from "./entry.ts";
export type { GcOptions, GcReport } from "./retention.ts";

/** Options of `Ledger.open`. */
export interface LedgerOptions {
  /** 32-byte key: Secret manifests are stored encrypted with it; without it they are stored redacted. */
  secretKey?: Uint8Array;
  /** Clock for started/finished times; tests pin it. */
  now?: () => Date;
}

/** An app held at a ledger entry; `pendingRevision` is the Git revision it is not applying. */
export interface Pin {
  app: string;
  entry: number;
  pinnedAt: string;
  pendingRevision?: string;
}

/** An operator's approval of one app at one revision: lifts hold verdicts (and, with overrideWindow, defer ones). */
export interface Approval {
  app: string;
  revision: string;
  by: string;
  approvedAt: string;
  expiresAt: string;
  overrideWindow: boolean;
}

/** How a stored manifest is kept. */
export type BlobEncoding = "plain" | "redacted" | "aes-256-gcm";

/** The longest page `list` returns. */
export const MAX_LIST_LIMIT = 1000;
const DEFAULT_LIST_LIMIT = 50;

/** The one clamp of every list query's limit: 1 to MAX_LIST_LIMIT, default 50 (also for a non-number). */
export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_LIST_LIMIT;
  return Math.min(Math.max(Math.trunc(limit), 1), MAX_LIST_LIMIT);
}

const INTERRUPTED_MESSAGE = "the agent stopped before this sync attempt finished";
/** Triggers whose no-op repeats fold into the entry before them (an operator's own sync or replay never does). */
const FOLDABLE_TRIGGERS = new Set(["loop", "pin"]);

/** An entry row with its verified record joined in. */
type JoinedRow = EntryRow & {
  v_count: number | null;
  v_first: string | null;
  v_last: string | null;
  v_health: string | null;
};
const JOINED =
  "SELECT e.*, v.count AS v_count, v.first_at AS v_first, v.last_at AS v_last, v.health AS v_health FROM entries e LEFT JOIN verifications v ON v.entry_id = e.id";

function joinedSummaryOf(row: JoinedRow): EntrySummary {
  const out = summaryOf(row);
  if (row.v_count !== null && row.v_first !== null && row.v_last !== null) {
    out.verified = verifiedRunOf({
      entry_id: row.id,
      count: row.v_count,
      first_at: row.v_first,
      last_at: row.v_last,
      health: row.v_health,
      hash: "",
    });
  }
  return out;
}

interface BlobRow {
  digest: string;
  encoding: BlobEncoding;
  content: Uint8Array;
  key_id: string | null;
  iv: Uint8Array | null;
}

/** A blob ready to insert. */
interface NewBlob {
  digest: string;
  encoding: BlobEncoding;
  content: Uint8Array;
  /** sha256 hex of content, when already known. */
  contentHash?: string;
  keyId: string | null;
  iv: Uint8Array | null;
}

/** The sync ledger of one agent. Methods are synchronous except where crypto (WebCrypto) is involved. */
export class Ledger {
  /** The database file. */
  readonly path: string;
  private readonly db: Driver;
  private readonly keys: SecretKeys | undefined;
  /** Without a secret key: the key redacted Secret values are digested with (a file beside the ledger). */
  private readonly digestKey: DigestKeyFile;
  private readonly now: () => Date;
  private readonly subject: string;
  /** Set by a failed write of a full disk or an I/O error; cleared by the next write that succeeds. */
  private fault: string | undefined;
  /** Running entries someone asked for (BeginInput.requested): never folded. In memory: a crash ends them anyway. */
  private readonly requested = new Set<number>();

  private constructor(path: string, db: Driver, keys: SecretKeys | undefined, now: () => Date) {
    this.path = path;
    this.db = db;
    this.keys = keys;
    this.now = now;
    this.subject = `ledger ${path}`;
    this.digestKey = new DigestKeyFile(path === ":memory:" ? undefined : digestKeyPathOf(path));
  }

  /** Opens (creating if missing) a ledger file, migrating its schema; errors name the path. */
  static async open(path: string, options: LedgerOptions = {}): Promise<Ledger> {
    const subject = `ledger ${path}`;
    let keys: SecretKeys | undefined;
    if (options.secretKey) {
      try {
        keys = await deriveKeys(options.secretKey);
      } catch (cause) {
        throw new BerthError(messageOf(cause), { subject, cause });
      }
    }
    let db: Driver;
    try {
      db = await openDriver(path);
    } catch (cause) {
      throw new BerthError(`cannot open the database: ${messageOf(cause)}`, { subject, cause });
    }
    try {
      configure(db);
      migrate(db);
    } catch (cause) {
      db.close();
      throw new BerthError(
        `not a usable ledger database (corrupt, foreign or read-only?): ${messageOf(cause)}`,
        {
          subject,
          cause,
        },
      );
    }
    return new Ledger(path, db, keys, options.now ?? (() => new Date()));
  }

  /** Which SQLite driver backs this ledger. */
  get driver(): string {
    return this.db.name;
  }

  /** Closes the database; the ledger is unusable afterwards. */
  close(): void {
    this.db.close();
  }

  /** Records the start of a sync attempt as "Running" and returns its entry id. */
  begin(start: BeginInput): number {
    return this.write("cannot begin an entry", () => {
      const result = this.db.run(
        "INSERT INTO entries (app, revision, commit_json, trigger, outcome, started_at) VALUES (?, ?, ?, ?, 'Running', ?)",
        [
          start.app,
          start.revision,
          start.commit ? canonicalJson(start.commit) : null,
          start.trigger,
          this.now().toISOString(),
        ],
      );
      if (start.requested) this.requested.add(result.lastInsertRowid);
      return result.lastInsertRowid;
    });
  }

  /** Stores manifests content-addressed (idempotent) and returns object id → digest. Secrets are sealed or redacted. */
  async putManifests(objects: KubeObject[]): Promise<Map<string, string>> {
    const digests = new Map<string, string>();
    const blobs: NewBlob[] = [];
    // Crypto is async, SQLite transactions here are sync: prepare every blob first, then write them at once.
    for (const obj of objects) {
      const blob = await this.blobOf(obj);
      digests.set(objectId(refOf(obj)), blob.digest);
      blobs.push(blob);
    }
    const createdAt = this.now().toISOString();
    this.write("cannot store manifests", () =>
      this.db.transaction(() => {
        for (const b of blobs) {
          this.db.run(
            "INSERT OR IGNORE INTO blobs (digest, encoding, content, content_hash, key_id, iv, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
              b.digest,
              b.encoding,
              b.content,
              b.contentHash ?? sha256Hex(b.content),
              b.keyId,
              b.iv,
              createdAt,
            ],
          );
        }
      }),
    );
    return digests;
  }

  /** A stored manifest by digest, decrypted when sealed; undefined if unknown. Redacted Secrets come back redacted. */
  async getManifest(digest: string): Promise<KubeObject | undefined> {
    const row = this.guard("cannot read a manifest", () =>
      this.db.get<BlobRow>("SELECT digest, encoding, content, key_id, iv FROM blobs WHERE digest = ?", [
        digest,
      ]),
    );
    if (!row) return undefined;
    if (row.encoding !== "aes-256-gcm")
      return JSON.parse(new TextDecoder().decode(row.content)) as KubeObject;
    const what = `manifest ${digest} is encrypted with key ${row.key_id}`;
    if (!this.keys)
      throw new BerthError(`${what}, but the ledger was opened without a secret key`, this.err());
    if (this.keys.id !== row.key_id) {
      throw new BerthError(`${what}, but the ledger was opened with key ${this.keys.id}`, this.err());
    }
    try {
      return await unseal(this.keys, { iv: row.iv ?? new Uint8Array(0), ciphertext: row.content }, digest);
    } catch (cause) {
      throw new BerthError(
        `${what} and cannot be decrypted: wrong key or altered ciphertext`,
        this.err(cause),
      );
    }
  }

  /** How a stored manifest is kept (and by which key), without decoding it; undefined if unknown. */
  blobInfo(digest: string): { encoding: BlobEncoding; keyId?: string } | undefined {
    const row = this.guard("cannot read a manifest", () =>
      this.db.get<{ encoding: BlobEncoding; key_id: string | null }>(
        "SELECT encoding, key_id FROM blobs WHERE digest = ?",
        [digest],
      ),
    );
    if (!row) return undefined;
    return row.key_id === null ? { encoding: row.encoding } : { encoding: row.encoding, keyId: row.key_id };
  }

  /**
   * Finishes a Running entry: entry, changed object rows, inventory snapshot and (if given) the app's
   * inventory, in one transaction. A no-op repeat of the app's last entry (same outcome, revision and
   * health, nothing written, no object changed) is folded into that entry's verified record instead and the
   * Running row removed. Returns the id the attempt is recorded under.
   */
  finish(id: number, result: FinishInput): number {
    return this.write(`cannot finish entry ${id}`, () =>
      this.db.transaction(() => {
        const row = this.db.get<EntryRow>("SELECT * FROM entries WHERE id = ?", [id]);
        if (!row) throw new BerthError(`entry ${id} does not exist`, this.err());
        if (row.outcome !== "Running")
          throw new BerthError(`entry ${id} is already ${row.outcome}`, this.err());
        const recorded = this.writeFinished(row, result);
        if (result.inventory) this.replaceInventory(row.app, result.inventory);
        return recorded;
      }),
    );
  }

  /** Drops old entries (keeping protected ones behind a chain checkpoint), collects unreferenced blobs and returns space. */
  gc(options: GcOptions): GcReport {
    const report = this.guard("cannot collect garbage", () => collectGarbage(this.db, options, this.now()));
    if (!options.dryRun) {
      this.guard("cannot return space to the file system", () => {
        // An older file has no incremental vacuum yet: one full VACUUM switches it over — unless a replica
        // ships rows by rowid (agent/ledger/replica.ts): VACUUM may renumber rowids, so such a file keeps
        // its freed pages for reuse instead.
        const mode = Number(this.db.get<{ auto_vacuum: number }>("PRAGMA auto_vacuum")?.auto_vacuum ?? 0);
        const replicated = this.db.get(
          "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'replica_log'",
        );
        if (mode === 2) this.db.exec("PRAGMA incremental_vacuum");
        else if (!replicated) this.db.exec("PRAGMA auto_vacuum = INCREMENTAL; VACUUM");
        this.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
        // A gc that could not collect blobs (a sync was running) is not the day's gc: `run` tries again.
        if (!report.blobsSkipped)
          this.db.run(
            "INSERT INTO meta (key, value) VALUES ('last_gc_at', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [this.now().toISOString()],
          );
      });
    }
    return report;
  }

  /** When gc last ran (ISO 8601), or undefined. */
  lastGcAt(): string | undefined {
    return this.guard(
      "cannot read ledger state",
      () => this.db.get<{ value: string }>("SELECT value FROM meta WHERE key = 'last_gc_at'")?.value,
    );
  }

  /** A small piece of the agent's own state kept across restarts (JSON text), or undefined. */
  state(key: string): string | undefined {
    return this.guard(
      "cannot read ledger state",
      () => this.db.get<{ value: string }>("SELECT value FROM meta WHERE key = ?", [`state:${key}`])?.value,
    );
  }

  /** Keeps (or, with undefined, drops) a piece of the agent's own state across restarts. */
  setState(key: string, value: string | undefined): void {
    this.write("cannot write agent state", () => {
      if (value === undefined) this.db.run("DELETE FROM meta WHERE key = ?", [`state:${key}`]);
      else
        this.db.run(
          "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
          [`state:${key}`, value],
        );
    });
  }

  /** Why the ledger cannot record right now (disk full, I/O error), or undefined. */
  writeProblem(): string | undefined {
    return this.fault;
  }

  /**
   * Checks that the ledger can record a sync before one starts: enough free space beside the file and a
   * write that succeeds. Throws "ledger: disk full at <path>" (or the I/O error) otherwise, so nothing is
   * applied that could not be recorded. `minFree` is in bytes.
   */
  preflight(minFree = 4 * 1024 * 1024): void {
    const fault = ledgerFault(this.path, undefined, minFree);
    if (fault) {
      this.fault = fault;
      throw new BerthError(fault);
    }
    this.write("cannot write", () =>
      this.db.run(
        "INSERT INTO meta (key, value) VALUES ('last_write_check', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [this.now().toISOString()],
      ),
    );
  }

  /**
   * Adds objects to the app's inventory before they are written, so a crash mid-apply leaves them owned
   * (and prunable) rather than orphaned; the next finish replaces the inventory as usual.
   */
  claimInventory(app: string, items: readonly InventoryItem[]): void {
    this.write(`cannot claim inventory for app ${app}`, () =>
      this.db.transaction(() => this.insertInventory(app, items)),
    );
  }

  /** Makes the app's inventory equal `items`, writing only the rows that differ (a resync rewrites nothing). */
  private replaceInventory(app: string, items: readonly InventoryItem[]): void {
    const current = new Map(
      this.db
        .all<{ object_id: string; ref_json: string; digest: string; source: string | null }>(
          "SELECT object_id, ref_json, digest, source FROM inventory WHERE app = ?",
          [app],
        )
        .map((r) => [r.object_id, `${r.ref_json}\n${r.digest}\n${r.source ?? ""}`]),
    );
    const changed: InventoryItem[] = [];
    for (const item of items) {
      const id = objectId(item.ref);
      if (current.get(id) !== `${refJson(item.ref)}\n${item.digest}\n${item.source ?? ""}`)
        changed.push(item);
      current.delete(id);
    }
    for (const id of current.keys())
      this.db.run("DELETE FROM inventory WHERE app = ? AND object_id = ?", [app, id]);
    this.insertInventory(app, changed);
  }

  // Upserts, never INSERT OR REPLACE, here and below: REPLACE deletes the row without a delete trigger and
  // inserts it under a new rowid, which the replica (agent/ledger/replica.ts, rows by rowid) cannot follow.
  private insertInventory(app: string, items: readonly InventoryItem[]): void {
    for (const item of items) {
      this.db.run(
        "INSERT INTO inventory (app, object_id, ref_json, digest, source) VALUES (?, ?, ?, ?, ?) ON CONFLICT (app, object_id) DO UPDATE SET ref_json = excluded.ref_json, digest = excluded.digest, source = excluded.source",
        [app, objectId(item.ref), refJson(item.ref), item.digest, item.source ?? null],
      );
    }
  }

  /** The app's inventory as of its last finish that carried one, ordered by object id. */
  inventory(app: string): InventoryItem[] {
    return this.guard("cannot read the inventory", () =>
      this.db
        .all<{ ref_json: string; digest: string; source: string | null }>(
          "SELECT ref_json, digest, source FROM inventory WHERE app = ? ORDER BY object_id",
          [app],
        )
        .map((r) => ({
          ref: JSON.parse(r.ref_json),
          digest: r.digest,
          ...(r.source !== null ? { source: r.source } : {}),
        })),
    );
  }

  /** Object id → app for every object in another app's inventory (one app per object, the first by name). */
  inventoryOwners(app: string): Map<string, string> {
    return this.guard("cannot read the inventory", () => {
      const rows = this.db.all<{ app: string; object_id: string }>(
        "SELECT app, object_id FROM inventory WHERE app != ? ORDER BY app DESC",
        [app],
      );
      return new Map(rows.map((r) => [r.object_id, r.app]));
    });
  }

  /** Entries newest first; `before` is an entry id (exclusive) to page from, `limit` defaults to 50. */
  list(query: { app?: string; limit?: number; before?: number } = {}): EntrySummary[] {
    const where: string[] = [];
    const params: SqlValue[] = [];
    if (query.app !== undefined) {
      where.push("app = ?");
      params.push(query.app);
    }
    if (query.before !== undefined) {
      where.push("id < ?");
      params.push(query.before);
    }
    const limit = clampLimit(query.limit);
    params.push(limit);
    const sql = `${JOINED} ${where.length ? `WHERE ${where.map((w) => `e.${w}`).join(" AND ")}` : ""} ORDER BY e.id DESC LIMIT ?`;
    return this.guard("cannot list entries", () => this.db.all<JoinedRow>(sql, params).map(joinedSummaryOf));
  }

  /** One entry with every object record (rebuilt from its inventory snapshot), or undefined. */
  get(id: number): LedgerEntry | undefined {
    return this.guard(`cannot read entry ${id}`, () => {
      const row = this.db.get<JoinedRow>(`${JOINED} WHERE e.id = ?`, [id]);
      if (!row) return undefined;
      const rows = this.objectRows(id).map(objectRecordOf);
      const objects = row.inventory_root
        ? mergeRecords(rows, loadSnapshot(this.db, row.inventory_root))
        : rows;
      const entry = entryOf(row, objects, this.verdictRows(id));
      const verified = joinedSummaryOf(row).verified;
      if (verified) entry.verified = verified;
      return entry;
    });
  }

  /** Marks every still-Running entry Failed/Interrupted (call at start-up, after a crash); returns how many. */
  markInterrupted(): number {
    return this.guard("cannot mark interrupted entries", () =>
      this.db.transaction(() => {
        const running = this.db.all<EntryRow>("SELECT * FROM entries WHERE outcome = 'Running' ORDER BY id");
        for (const row of running) {
          // A crash is worth an entry of its own, never a fold into the one before.
          this.requested.add(row.id);
          this.writeFinished(row, {
            outcome: "Failed",
            reason: "Interrupted",
            message: INTERRUPTED_MESSAGE,
            objects: [],
            timings: {},
          });
        }
        return running.length;
      }),
    );
  }

  /** Holds an app at a finished entry of its own: the run loop replays that entry instead of Git until unpin. */
  pin(app: string, entryId: number): Pin {
    return this.guard(`cannot pin app ${app}`, () =>
      this.db.transaction(() => {
        const row = this.db.get<{ app: string; outcome: string }>(
          "SELECT app, outcome FROM entries WHERE id = ?",
          [entryId],
        );
        if (!row) throw new BerthError(`entry ${entryId} does not exist`, this.err());
        if (row.app !== app)
          throw new BerthError(`entry ${entryId} belongs to app ${row.app}, not ${app}`, this.err());
        if (row.outcome === "Running") throw new BerthError(`entry ${entryId} is still Running`, this.err());
        const pinnedAt = this.now().toISOString();
        this.db.run(
          "INSERT INTO pins (app, entry_id, pinned_at, pending_revision) VALUES (?, ?, ?, NULL) ON CONFLICT (app) DO UPDATE SET entry_id = excluded.entry_id, pinned_at = excluded.pinned_at, pending_revision = NULL",
          [app, entryId, pinnedAt],
        );
        return { app, entry: entryId, pinnedAt };
      }),
    );
  }

  /** Releases an app's pin; returns whether it was pinned. */
  unpin(app: string): boolean {
    return this.guard(
      `cannot unpin app ${app}`,
      () => this.db.run("DELETE FROM pins WHERE app = ?", [app]).changes > 0,
    );
  }

  /** The app's pin, or undefined. */
  pinOf(app: string): Pin | undefined {
    const row = this.guard("cannot read pins", () =>
      this.db.get<{ app: string; entry_id: number; pinned_at: string; pending_revision: string | null }>(
        "SELECT * FROM pins WHERE app = ?",
        [app],
      ),
    );
    if (!row) return undefined;
    const pin: Pin = { app: row.app, entry: row.entry_id, pinnedAt: row.pinned_at };
    if (row.pending_revision !== null) pin.pendingRevision = row.pending_revision;
    return pin;
  }

  /** Records the Git revision a pinned app is not applying (shown as pending). */
  notePinPending(app: string, revision: string): void {
    this.guard(`cannot update the pin of app ${app}`, () =>
      this.db.run("UPDATE pins SET pending_revision = ? WHERE app = ?", [revision, app]),
    );
  }

  /** Approves an app at a revision until `expiresAt` (replacing an earlier approval of the same pair). */
  approve(
    app: string,
    revision: string,
    by: string,
    expiresAt: Date,
    options: { overrideWindow?: boolean } = {},
  ): Approval {
    if (revision.trim() === "")
      throw new BerthError(`cannot approve app ${app}: no revision given`, this.err());
    if (!(expiresAt.getTime() > this.now().getTime()))
      throw new BerthError(
        `cannot approve app ${app}: expiry ${expiresAt.toISOString()} is not in the future`,
        this.err(),
      );
    const approval: Approval = {
      app,
      revision,
      by,
      approvedAt: this.now().toISOString(),
      expiresAt: expiresAt.toISOString(),
      overrideWindow: options.overrideWindow === true,
    };
    this.guard(`cannot approve app ${app}`, () =>
      this.db.run(
        "INSERT INTO approvals (app, revision, approved_by, approved_at, expires_at, override_window) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (app, revision) DO UPDATE SET approved_by = excluded.approved_by, approved_at = excluded.approved_at, expires_at = excluded.expires_at, override_window = excluded.override_window",
        [app, revision, by, approval.approvedAt, approval.expiresAt, approval.overrideWindow ? 1 : 0],
      ),
    );
    return approval;
  }

  /** The unexpired approval of an app at a revision, or undefined. */
  approvalFor(app: string, revision: string): Approval | undefined {
    const row = this.guard("cannot read approvals", () =>
      this.db.get<{
        approved_by: string;
        approved_at: string;
        expires_at: string;
        override_window: number;
      }>("SELECT * FROM approvals WHERE app = ? AND revision = ?", [app, revision]),
    );
    if (!row || Date.parse(row.expires_at) <= this.now().getTime()) return undefined;
    return {
      app,
      revision,
      by: row.approved_by,
      approvedAt: row.approved_at,
      expiresAt: row.expires_at,
      overrideWindow: Number(row.override_window) === 1,
    };
  }

  /** Records one drift event; returns its id. */
  recordDrift(event: Omit<DriftEvent, "id" | "detectedAt"> & { detectedAt?: string }): number {
    return this.guard(`cannot record drift of app ${event.app}`, () =>
      Number(
        this.db.run(
          "INSERT INTO drift_events (app, object_id, ref_json, manager, fields_json, action, message, detected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
          [
            event.app,
            objectId(event.ref),
            canonicalJson(event.ref),
            event.manager,
            JSON.stringify(event.fields),
            event.action,
            event.message ?? null,
            event.detectedAt ?? this.now().toISOString(),
          ],
        ).lastInsertRowid,
      ),
    );
  }

  /** Drift events newest first, optionally of one app. */
  driftEvents(query: { app?: string; limit?: number } = {}): DriftEvent[] {
    const limit = clampLimit(query.limit);
    const rows = this.guard("cannot list drift events", () =>
      this.db.all<{
        id: number;
        app: string;
        ref_json: string;
        manager: string;
        fields_json: string;
        action: DriftEvent["action"];
        message: string | null;
        detected_at: string;
      }>(
        `SELECT * FROM drift_events ${query.app !== undefined ? "WHERE app = ?" : ""} ORDER BY id DESC LIMIT ?`,
        query.app !== undefined ? [query.app, limit] : [limit],
      ),
    );
    return rows.map((r) => ({
      id: r.id,
      app: r.app,
      ref: JSON.parse(r.ref_json),
      manager: r.manager,
      fields: JSON.parse(r.fields_json),
      action: r.action,
      ...(r.message !== null ? { message: r.message } : {}),
      detectedAt: r.detected_at,
    }));
  }

  /** Ids of the entries whose objects reference a blob, oldest first (to name who a bad blob affects). */
  entriesWithBlob(digest: string): number[] {
    return this.guard("cannot read entry objects", () => {
      const ids = new Set(
        this.db
          .all<{ entry_id: number }>("SELECT DISTINCT entry_id FROM entry_objects WHERE digest = ?", [digest])
          .map((r) => r.entry_id),
      );
      // Unchanged objects live in snapshots: buckets naming the digest, roots naming those buckets.
      const like = (s: string) => `%"${s.replace(/[%_]/g, "")}"%`;
      for (const bucket of this.db.all<{ digest: string }>(
        "SELECT digest FROM snapshots WHERE content LIKE ?",
        [like(digest)],
      )) {
        for (const root of this.db.all<{ digest: string }>(
          "SELECT digest FROM snapshots WHERE content LIKE ?",
          [like(bucket.digest)],
        )) {
          for (const e of this.db.all<{ id: number }>("SELECT id FROM entries WHERE inventory_root = ?", [
            root.digest,
          ]))
            ids.add(e.id);
        }
      }
      return [...ids].sort((a, b) => a - b);
    });
  }

  /** Id of the secret key this ledger was opened with (never the key), or undefined. */
  get secretKeyId(): string | undefined {
    return this.keys?.id;
  }

  /** Recomputes the hash chain and checks every blob's digest; reports the first problem. */
  verify(): VerifyResult {
    return this.guard("cannot verify", () => verifyLedger(this.db));
  }

  /** Writes a consistent copy of the ledger to a new file while it stays in use. */
  async backup(toPath: string): Promise<void> {
    try {
      await this.db.backup(toPath);
    } catch (cause) {
      throw new BerthError(`cannot back up to ${toPath}: ${messageOf(cause)}`, this.err(cause));
    }
  }

  /**
   * Finishes a Running entry (caller holds the transaction): folds a no-op repeat into the app's last entry,
   * or appends the entry to the chain with its changed object rows and inventory snapshot. Returns the id
   * the attempt is recorded under.
   */
  private writeFinished(row: EntryRow, result: Omit<FinishInput, "inventory">): number {
    const at = this.now().toISOString();
    const previous = this.db.get<EntryRow>(
      "SELECT * FROM entries WHERE app = ? AND chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1",
      [row.app],
    );
    const { rows: explicit, snapshot } = this.compact(row.app, result.objects);
    const root = snapshot?.root ?? null;
    const requested = this.requested.delete(row.id);
    if (previous && !requested && this.isRepeat(row, result, previous, explicit, root)) {
      this.db.run("DELETE FROM entries WHERE id = ? AND outcome = 'Running'", [row.id]);
      const v = this.db.get<VerificationRow>("SELECT * FROM verifications WHERE entry_id = ?", [previous.id]);
      const next = {
        count: Number(v?.count ?? 0) + 1,
        first_at: v?.first_at ?? at,
        last_at: at,
        health: result.health ?? null,
      };
      this.db.run(
        "INSERT INTO verifications (entry_id, count, first_at, last_at, health, hash) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (entry_id) DO UPDATE SET count = excluded.count, first_at = excluded.first_at, last_at = excluded.last_at, health = excluded.health, hash = excluded.hash",
        [
          previous.id,
          next.count,
          next.first_at,
          next.last_at,
          next.health,
          verificationHashOf(previous.hash ?? "", next),
        ],
      );
      return previous.id;
    }
    const last = this.db.get<{ chain_seq: number; hash: string }>(
      "SELECT chain_seq, hash FROM entries WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1",
    );
    // The verified record of the entry this one supersedes is final now: seal it into the chain.
    const sealedRow = previous
      ? this.db.get<VerificationRow>("SELECT * FROM verifications WHERE entry_id = ?", [previous.id])
      : undefined;
    const sealed = sealedRow
      ? canonicalJson({
          entry: sealedRow.entry_id,
          count: Number(sealedRow.count),
          firstAt: sealedRow.first_at,
          lastAt: sealedRow.last_at,
          health: sealedRow.health,
          hash: sealedRow.hash,
        })
      : null;
    const finished: EntryRow = {
      ...row,
      outcome: result.outcome,
      reason: result.reason,
      message: result.message,
      rendered_digest: result.renderedDigest ?? null,
      health: result.health ?? null,
      timings_json: canonicalJson(result.timings),
      finished_at: at,
      chain_seq: (last?.chain_seq ?? 0) + 1,
      prev_hash: last?.hash ?? GENESIS_HASH,
      inventory_root: root,
      sealed_json: sealed,
    };
    const objects: ObjectRow[] = explicit.map((o, seq) => ({
      entry_id: row.id,
      seq,
      object_id: objectId(o.ref),
      ref_json: canonicalJson(o.ref),
      action: o.action,
      health: o.health ?? null,
      message: o.message ?? null,
      digest: o.digest ?? null,
      status: o.status ?? null,
    }));
    const verdicts: VerdictRow[] = (result.verdicts ?? []).map((v, seq) => ({
      entry_id: row.id,
      seq,
      rule: v.rule,
      rule_at: v.at,
      verdict: v.verdict,
      subject: v.subject ?? null,
      message: v.message,
      approved_by: v.approvedBy ?? null,
    }));
    if (snapshot) storeSnapshot(this.db, snapshot, at);
    const contentHash = contentHashOf(finished, objects, verdicts);
    const prevHash = finished.prev_hash ?? GENESIS_HASH;
    const changed = this.db.run(
      `UPDATE entries SET outcome = ?, reason = ?, message = ?, rendered_digest = ?, health = ?, timings_json = ?,
         finished_at = ?, chain_seq = ?, prev_hash = ?, content_hash = ?, hash = ?, inventory_root = ?, sealed_json = ?
         WHERE id = ? AND outcome = 'Running'`,
      [
        finished.outcome,
        finished.reason,
        finished.message,
        finished.rendered_digest,
        finished.health,
        finished.timings_json,
        finished.finished_at,
        finished.chain_seq,
        prevHash,
        contentHash,
        chainHashOf(prevHash, contentHash),
        root,
        sealed,
        row.id,
      ],
    ).changes;
    if (changed !== 1) throw new BerthError(`entry ${row.id} changed while being finished`, this.err());
    for (const o of objects) {
      this.db.run(
        "INSERT INTO entry_objects (entry_id, seq, object_id, ref_json, action, health, message, digest, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
          o.entry_id,
          o.seq,
          o.object_id,
          o.ref_json,
          o.action,
          o.health,
          o.message,
          o.digest,
          o.status ?? null,
        ],
      );
    }
    for (const v of verdicts) {
      this.db.run(
        "INSERT INTO entry_verdicts (entry_id, seq, rule, rule_at, verdict, subject, message, approved_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [v.entry_id, v.seq, v.rule, v.rule_at, v.verdict, v.subject, v.message, v.approved_by],
      );
    }
    return row.id;
  }

  /**
   * Splits an attempt's records into the rows to store (objects whose action is not "unchanged" or whose
   * digest, health or message differ from the app's previous snapshot) and the snapshot the rest are
   * rebuilt from. If the rebuild would not give back exactly these records (say, not in apply order), every
   * record is stored as a row and there is no snapshot, as before schema 5.
   */
  private compact(
    app: string,
    records: readonly ObjectRecord[],
  ): { rows: ObjectRecord[]; snapshot: BuiltSnapshot | undefined } {
    if (records.length === 0) return { rows: [], snapshot: undefined };
    const snapshot = buildSnapshot(records);
    const prevRoot = this.db.get<{ inventory_root: string }>(
      "SELECT inventory_root FROM entries WHERE app = ? AND inventory_root IS NOT NULL ORDER BY chain_seq DESC LIMIT 1",
      [app],
    )?.inventory_root;
    const prev = prevRoot ? readRoot(this.db, prevRoot) : undefined;
    let prevAll: Map<string, SnapshotItem> | undefined;
    const prevBuckets = new Map<number, Map<string, SnapshotItem>>();
    const prevItem = (id: string, bucket: number): SnapshotItem | undefined => {
      if (!prev) return undefined;
      if (prev.n !== snapshot.n) {
        prevAll ??= new Map(
          [...prev.buckets.values()].flatMap((d) => bucketItems(this.db, d)).map((i) => [i[0], i]),
        );
        return prevAll.get(id);
      }
      let items = prevBuckets.get(bucket);
      if (!items) {
        const digest = prev.buckets.get(bucket);
        items = new Map(digest ? bucketItems(this.db, digest).map((i) => [i[0], i]) : []);
        prevBuckets.set(bucket, items);
      }
      return items.get(id);
    };
    // The rebuild sorts into apply order: records in strictly that order (as a plan makes them) come back
    // exactly; any other order is kept by storing every row.
    for (let i = 1; i < records.length; i++) {
      if (compareApplyOrder((records[i - 1] as ObjectRecord).ref, (records[i] as ObjectRecord).ref) >= 0)
        return { rows: [...records], snapshot: undefined };
    }
    const rows = records.filter((r) => {
      if (r.action !== "unchanged" || !fitsSnapshot(r)) return true;
      const item = itemOf(r);
      const bucket = snapshot.bucketOf(item[0]);
      if (prev && prev.n === snapshot.n && prev.buckets.get(bucket) === snapshot.buckets.get(bucket))
        return false;
      const before = prevItem(item[0], bucket);
      return !before || JSON.stringify(before) !== JSON.stringify(item);
    });
    return { rows, snapshot };
  }

  /** Whether a finished attempt repeats the app's last entry exactly, having written and changed nothing. */
  private isRepeat(
    row: EntryRow,
    result: Omit<FinishInput, "inventory">,
    previous: EntryRow,
    rows: readonly ObjectRecord[],
    root: string | null,
  ): boolean {
    if ((result.verdicts?.length ?? 0) > 0) return false;
    // Rows mean something changed, except "skipped" ones (not written) repeating the previous entry's exactly:
    // a pinned replay that leaves the same undecryptable Secret alone each time.
    if (rows.length > 0) {
      if (!rows.every((r) => r.action === "skipped")) return false;
      const key = (r: ObjectRecord) =>
        JSON.stringify([objectId(r.ref), r.action, r.health, r.message, r.digest]);
      // Its other rows are covered by the equal snapshot root checked below.
      const before = this.db
        .all<ObjectRow>(
          "SELECT * FROM entry_objects WHERE entry_id = ? AND action = 'skipped' ORDER BY seq",
          [previous.id],
        )
        .map((o) => key(objectRecordOf(o)));
      if (JSON.stringify(before) !== JSON.stringify(rows.map(key))) return false;
    }
    if (!FOLDABLE_TRIGGERS.has(row.trigger) || row.trigger !== previous.trigger) return false;
    const same =
      previous.outcome === result.outcome &&
      previous.reason === result.reason &&
      // A success's message counts what it wrote ("1 configured"): a no-op differs from it by nature.
      (result.outcome === "Succeeded" || previous.message === result.message) &&
      previous.revision === row.revision &&
      previous.commit_json === row.commit_json &&
      previous.rendered_digest === (result.renderedDigest ?? null) &&
      previous.health === (result.health ?? null) &&
      (previous.inventory_root ?? null) === root;
    if (!same) return false;
    if (this.db.get("SELECT 1 AS x FROM entry_verdicts WHERE entry_id = ? LIMIT 1", [previous.id]))
      return false;
    // Without a snapshot both recorded no objects at all (a legacy entry lists every object as a row).
    if (root !== null) return true;
    return !this.db.get("SELECT 1 AS x FROM entry_objects WHERE entry_id = ? LIMIT 1", [previous.id]);
  }

  private verdictRows(id: number): VerdictRow[] {
    return this.db.all<VerdictRow>("SELECT * FROM entry_verdicts WHERE entry_id = ? ORDER BY seq", [id]);
  }

  private objectRows(id: number): ObjectRow[] {
    return this.db.all<ObjectRow>("SELECT * FROM entry_objects WHERE entry_id = ? ORDER BY seq", [id]);
  }

  /** The stored form and digest of one manifest. */
  private async blobOf(obj: KubeObject): Promise<NewBlob> {
    const utf8 = new TextEncoder();
    if (!isSecret(obj)) {
      // digestOf(obj) is the sha256 of this canonical JSON: hash it once for both digest and content hash.
      const json = canonicalJson(obj);
      const hex = sha256Hex(json);
      return {
        digest: `sha256:${hex}`,
        encoding: "plain",
        content: utf8.encode(json),
        contentHash: hex,
        keyId: null,
        iv: null,
      };
    }
    if (!this.keys) {
      const redacted = await redactSecret(obj, await this.digestKey.get());
      return {
        digest: digestOf(redacted),
        encoding: "redacted",
        content: utf8.encode(canonicalJson(redacted)),
        keyId: null,
        iv: null,
      };
    }
    const digest = await keyedDigestOf(this.keys, obj);
    const sealed = await seal(this.keys, obj, digest);
    return {
      digest,
      encoding: "aes-256-gcm",
      content: sealed.ciphertext,
      keyId: this.keys.id,
      iv: sealed.iv,
    };
  }

  /** guard() for a write: one that succeeds shows the ledger can record again. */
  private write<T>(what: string, fn: () => T): T {
    const out = this.guard(what, fn);
    this.fault = undefined;
    return out;
  }

  /** Options for a BerthError about this ledger. */
  private err(cause?: unknown): { subject: string; cause?: unknown } {
    return cause === undefined ? { subject: this.subject } : { subject: this.subject, cause };
  }

  /**
   * Runs fn, turning a driver error into a BerthError that names the ledger file and what was being done;
   * a full disk or an I/O error is named as such ("ledger: disk full at <path>") and remembered until a
   * later call succeeds, so readiness can report it.
   */
  private guard<T>(what: string, fn: () => T): T {
    try {
      const out = fn();
      return out;
    } catch (cause) {
      if (cause instanceof BerthError) throw cause;
      const fault = ledgerFault(this.path, cause);
      if (fault) {
        this.fault = fault;
        throw new BerthError(`${fault} (${what}: ${messageOf(cause)})`, { cause });
      }
      throw new BerthError(`${what}: ${messageOf(cause)}`, this.err(cause));
    }
  }
}
