/**
 * The ledger: a local SQLite database recording every sync attempt, the manifests it applied
 * (content-addressed, Secrets never in plaintext), each app's inventory, and a hash chain over entries.
 * This is its façade: each table group lives in `tables/` over one shared `LedgerAccess`.
 */
import { BerthError, messageOf } from "../object/errors.ts";
import type { KubeObject, ObjectRef } from "../object/object.ts";
import { type VerifyResult, verifyLedger } from "./chain.ts";
import { type Driver, openDriver } from "./driver.ts";
import type * as entry from "./entry.ts";
import type { GcOptions, GcReport } from "./retention.ts";
import { configure, migrate } from "./schema.ts";
import {
  appliedSecretDigest,
  DigestKeyFile,
  deriveKeys,
  digestKeyPathOf,
  type SecretKeys,
} from "./secrets.ts";
import { LedgerAccess } from "./tables/access.ts";
import { type Approval, ApprovalsTable, type ApproveOptions } from "./tables/approvals.ts";
import { DriftEventsTable } from "./tables/drift-events.ts";
import { EntriesTable } from "./tables/entries.ts";
import { InventoryTable } from "./tables/inventory.ts";
import { type BlobEncoding, ManifestsTable } from "./tables/manifests.ts";
import { MetaTable } from "./tables/meta.ts";
import { type Pin, PinsTable } from "./tables/pins.ts";
import { RenderMemosTable } from "./tables/render-memos.ts";

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
  RenderMemo,
  VerdictRecord,
  VerifiedRun,
} from "./entry.ts";
export type { GcOptions, GcReport } from "./retention.ts";
export { clampLimit, MAX_LIST_LIMIT } from "./tables/access.ts";
export type { Approval, ApproveOptions } from "./tables/approvals.ts";
export type { BlobEncoding } from "./tables/manifests.ts";
export type { Pin } from "./tables/pins.ts";

/** Options of `Ledger.open`. */
export interface LedgerOptions {
  /** 32-byte key: Secret manifests are stored encrypted with it; without it they are stored redacted. */
  secretKey?: Uint8Array;
  /** Clock for started/finished times; tests pin it. */
  now?: () => Date;
}

/** The sync ledger of one agent. Methods are synchronous except where crypto (WebCrypto) is involved. */
export class Ledger {
  /** The database file. */
  readonly path: string;
  private readonly access: LedgerAccess;
  private readonly keys: SecretKeys | undefined;
  private readonly entries: EntriesTable;
  private readonly manifests: ManifestsTable;
  private readonly inventoryTable: InventoryTable;
  private readonly pins: PinsTable;
  private readonly approvals: ApprovalsTable;
  private readonly drift: DriftEventsTable;
  private readonly meta: MetaTable;
  private readonly memos: RenderMemosTable;
  private readonly digestKey: DigestKeyFile;

  private constructor(path: string, db: Driver, keys: SecretKeys | undefined, now: () => Date) {
    this.path = path;
    this.keys = keys;
    this.access = new LedgerAccess(path, db, now);
    const digestKey = new DigestKeyFile(path === ":memory:" ? undefined : digestKeyPathOf(path));
    this.digestKey = digestKey;
    this.inventoryTable = new InventoryTable(this.access);
    this.memos = new RenderMemosTable(this.access, keys?.id);
    this.entries = new EntriesTable(this.access, this.inventoryTable, this.memos);
    this.manifests = new ManifestsTable(this.access, keys, digestKey);
    this.pins = new PinsTable(this.access);
    this.approvals = new ApprovalsTable(this.access);
    this.drift = new DriftEventsTable(this.access);
    this.meta = new MetaTable(this.access);
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
    return this.access.db.name;
  }

  /** Closes the database; the ledger is unusable afterwards. */
  close(): void {
    this.access.db.close();
  }

  // Entries (tables/entries.ts).

  /** Records the start of a sync attempt as "Running" and returns its entry id. */
  begin(start: entry.BeginInput): number {
    return this.entries.begin(start);
  }

  /**
   * Finishes a Running entry: entry, changed object rows, inventory snapshot and (if given) the app's
   * inventory, in one transaction. A no-op repeat of the app's last entry is folded into that entry's
   * verified record instead. Returns the id the attempt is recorded under.
   */
  finish(id: number, result: entry.FinishInput): number {
    return this.entries.finish(id, result);
  }

  /**
   * The render digest of the app's last entry when this ledger instance recorded it as a success that wrote
   * the whole inventory — or, before this instance recorded anything of the app, when that entry succeeded with
   * a render memo whose manifest digests are exactly the inventory's. Then the inventory holds the manifest
   * digests of that render; else undefined.
   */
  lastRender(app: string): string | undefined {
    return this.entries.lastRender(app);
  }

  /**
   * The app's render recorded under the durable render `key` by a successful entry, its objects read back
   * from the stored manifests — or undefined when there is none, or any manifest is missing, redacted,
   * sealed with another key or does not match its digest (then the caller renders).
   */
  async renderMemo(
    app: string,
    key: string,
  ): Promise<{ entry: number; memo: entry.RenderMemo; objects: KubeObject[] } | undefined> {
    const found = this.memos.of(app, key);
    if (!found) return undefined;
    const objects = await this.manifests.exactly(found.memo.objects.map((o) => o.digest));
    return objects ? { ...found, objects } : undefined;
  }

  /** Entries newest first; `before` is an entry id (exclusive) to page from, `limit` defaults to 50. */
  list(query: { app?: string; limit?: number; before?: number } = {}): entry.EntrySummary[] {
    return this.entries.list(query);
  }

  /** One entry with every object record (rebuilt from its inventory snapshot), or undefined. */
  get(id: number): entry.LedgerEntry | undefined {
    return this.entries.get(id);
  }

  /** Marks every still-Running entry Failed/Interrupted (call at start-up, after a crash); returns how many. */
  markInterrupted(): number {
    return this.entries.markInterrupted();
  }

  // Manifests (tables/manifests.ts).

  /** A Secret's applied-digest annotation, keyed with this ledger's digest key (secrets.ts). */
  async secretDigest(obj: KubeObject): Promise<string> {
    return appliedSecretDigest(await this.digestKey.get(), obj);
  }

  /** Stores manifests content-addressed (idempotent) and returns object id → digest. Secrets are sealed or redacted. */
  putManifests(objects: KubeObject[]): Promise<Map<string, string>> {
    return this.manifests.put(objects);
  }

  /** A stored manifest by digest, decrypted when sealed; undefined if unknown. Redacted Secrets come back redacted. */
  getManifest(digest: string): Promise<KubeObject | undefined> {
    return this.manifests.get(digest);
  }

  /** How a stored manifest is kept (and by which key), without decoding it; undefined if unknown. */
  blobInfo(digest: string): { encoding: BlobEncoding; keyId?: string } | undefined {
    return this.manifests.info(digest);
  }

  /** Ids of the entries whose objects reference a blob, oldest first (to name who a bad blob affects). */
  entriesWithBlob(digest: string): number[] {
    return this.manifests.entriesWith(digest);
  }

  // Inventory (tables/inventory.ts).

  /**
   * Adds objects to the app's inventory before they are written, so a crash mid-apply leaves them owned
   * (and prunable) rather than orphaned; the next finish replaces the inventory as usual.
   */
  claimInventory(app: string, items: readonly entry.InventoryItem[]): void {
    this.entries.forget(app);
    this.inventoryTable.claim(app, items);
  }

  /** The app's inventory as of its last finish that carried one, ordered by object id. */
  inventory(app: string): entry.InventoryItem[] {
    return this.inventoryTable.of(app);
  }

  /** One object of the app's inventory, if it is there. */
  inventoryItem(app: string, ref: ObjectRef): entry.InventoryItem | undefined {
    return this.inventoryTable.item(app, ref);
  }

  /** Object id → app for every object in another app's inventory (one app per object, the first by name). */
  inventoryOwners(app: string): Map<string, string> {
    return this.inventoryTable.ownersBesides(app);
  }

  // Pins (tables/pins.ts).

  /** Holds an app at a finished entry of its own: the run loop replays that entry instead of Git until unpin. */
  pin(app: string, entryId: number): Pin {
    return this.pins.pin(app, entryId);
  }

  /** Releases an app's pin; returns whether it was pinned. */
  unpin(app: string): boolean {
    return this.pins.unpin(app);
  }

  /** The app's pin, or undefined. */
  pinOf(app: string): Pin | undefined {
    return this.pins.of(app);
  }

  /** Every pinned app's pin, by app. */
  pinsByApp(): Map<string, Pin> {
    return this.pins.all();
  }

  /** Records the Git revision a pinned app is not applying (shown as pending). */
  notePinPending(app: string, revision: string): void {
    this.pins.notePending(app, revision);
  }

  // Approvals (tables/approvals.ts).

  /** Approves an app at a revision until `expiresAt` (replacing an earlier approval of the same pair). */
  approve(app: string, revision: string, by: string, expiresAt: Date, options?: ApproveOptions): Approval {
    return this.approvals.approve(app, revision, by, expiresAt, options);
  }

  /** The unexpired approval of an app at a revision, or undefined. */
  approvalFor(app: string, revision: string): Approval | undefined {
    return this.approvals.of(app, revision);
  }

  // Drift events (tables/drift-events.ts).

  /** Records one drift event; returns its id. */
  recordDrift(event: Omit<entry.DriftEvent, "id" | "detectedAt"> & { detectedAt?: string }): number {
    return this.drift.record(event);
  }

  /** Drift events newest first, optionally of one app. */
  driftEvents(query: { app?: string; limit?: number } = {}): entry.DriftEvent[] {
    return this.drift.list(query);
  }

  // The whole file: upkeep (tables/meta.ts), write health, verification and backup.

  /** Drops old entries (keeping protected ones behind a chain checkpoint), collects unreferenced blobs and returns space. */
  gc(options: GcOptions): GcReport {
    return this.meta.gc(options);
  }

  /** When gc last ran (ISO 8601), or undefined. */
  lastGcAt(): string | undefined {
    return this.meta.lastGcAt();
  }

  /** A small piece of the agent's own state kept across restarts (JSON text), or undefined. */
  state(key: string): string | undefined {
    return this.meta.state(key);
  }

  /** Keeps (or, with undefined, drops) a piece of the agent's own state across restarts. */
  setState(key: string, value: string | undefined): void {
    this.meta.setState(key, value);
  }

  /**
   * Checks that the ledger can record a sync before one starts: enough free space beside the file and a
   * write that succeeds. Throws "ledger: disk full at <path>" (or the I/O error) otherwise, so nothing is
   * applied that could not be recorded. `minFree` is in bytes. `writeCheckAgeMs`: a write that succeeded that
   * recently stands for the test write (the loop's check before every pass; the apply step's always writes).
   */
  preflight(options: { writeCheckAgeMs?: number } = {}, minFree = 4 * 1024 * 1024): void {
    this.meta.preflight(minFree, options.writeCheckAgeMs);
  }

  /** Why the ledger cannot record right now (disk full, I/O error), or undefined. */
  writeProblem(): string | undefined {
    return this.access.fault;
  }

  /** Id of the secret key this ledger was opened with (never the key), or undefined. */
  get secretKeyId(): string | undefined {
    return this.keys?.id;
  }

  /** Recomputes the hash chain and checks every blob's digest; reports the first problem. */
  verify(): VerifyResult {
    return this.access.guard("cannot verify", () => verifyLedger(this.access.db));
  }

  /** Writes a consistent copy of the ledger to a new file while it stays in use. */
  async backup(toPath: string): Promise<void> {
    try {
      await this.access.db.backup(toPath);
    } catch (cause) {
      throw new BerthError(`cannot back up to ${toPath}: ${messageOf(cause)}`, this.access.err(cause));
    }
  }
}
