/**
 * The entries table and what hangs off each entry (entry_objects, entry_verdicts, verifications, the
 * inventory snapshot): begin, finish (folding no-op repeats), list, get and markInterrupted.
 */
import { canonicalJson, sha256Hex } from "../../object/canonical.ts";
import { BerthError } from "../../object/errors.ts";
import { objectId } from "../../object/object.ts";
import { compareApplyOrder } from "../../object/order.ts";
import { chainHashOf, contentHashOf, GENESIS_HASH, verificationHashOf } from "../chain.ts";
import type { SqlValue } from "../driver.ts";
import {
  type BeginInput,
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
} from "../entry.ts";
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
} from "../snapshot.ts";
import { clampLimit, type LedgerAccess } from "./access.ts";
import type { InventoryTable } from "./inventory.ts";
import type { RenderMemosTable } from "./render-memos.ts";

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

/**
 * What this ledger instance last recorded of an app, so that a no-op repeat folds without rebuilding its
 * snapshot, re-reading the app's inventory or storing its manifests again (the engine asks lastRender()).
 */
interface Recorded {
  /** The entry the app's last finish was recorded under (new or folded into). */
  entry: number;
  /** Fingerprint of that finish's object records when every one was "unchanged" (else no fast fold). */
  records: string | undefined;
  /** The inventory snapshot root those records make. */
  root: string | null;
  /** Fingerprint of the app's inventory as this instance last wrote it. */
  inventory: string | undefined;
  /** Render digest of a success that wrote the whole inventory: its digests are the render's manifests'. */
  render: string | undefined;
}

/** sha256 of an attempt's records when all are "unchanged" (a no-op's), or undefined. */
function recordsKeyOf(records: readonly ObjectRecord[]): string | undefined {
  if (!records.every((r) => r.action === "unchanged" && r.status === undefined && fitsSnapshot(r)))
    return undefined;
  return sha256Hex(JSON.stringify(records.map(itemOf)));
}

function inventoryKeyOf(items: readonly InventoryItem[]): string {
  // The reference's fields as they are (the id and the canonical JSON of a reference are made from the same five):
  // a third of the time without the JIT, for every object of every resync.
  return sha256Hex(
    JSON.stringify(
      items.map((i) => {
        const { ref } = i;
        return Object.keys(ref).length === 5
          ? [ref.group, ref.version, ref.kind, ref.namespace, ref.name, i.digest, i.source ?? null]
          : [refJson(ref), i.digest, i.source ?? null];
      }),
    ),
  );
}

/** Sync attempts: one entry each, hash-chained when finished. */
export class EntriesTable {
  /** Running entries someone asked for (BeginInput.requested): never folded. In memory: a crash ends them anyway. */
  private readonly requested = new Set<number>();
  /** Per app, what this instance last recorded (see Recorded); dropped whenever the app's inventory is claimed. */
  private readonly recorded = new Map<string, Recorded>();

  constructor(
    private readonly access: LedgerAccess,
    /** finish() replaces the app's inventory in the entry's transaction. */
    private readonly inventory: InventoryTable,
    /** finish() keeps a success's render memo in the entry's transaction. */
    private readonly memos?: RenderMemosTable,
  ) {}

  private get db() {
    return this.access.db;
  }

  /** Records the start of a sync attempt as "Running" and returns its entry id. */
  begin(start: BeginInput): number {
    return this.access.write("cannot begin an entry", () => {
      const result = this.db.run(
        "INSERT INTO entries (app, revision, commit_json, trigger, outcome, started_at) VALUES (?, ?, ?, ?, 'Running', ?)",
        [
          start.app,
          start.revision,
          start.commit ? canonicalJson(start.commit) : null,
          start.trigger,
          this.access.now().toISOString(),
        ],
      );
      if (start.requested) this.requested.add(result.lastInsertRowid);
      return result.lastInsertRowid;
    });
  }

  /**
   * Finishes a Running entry: entry, changed object rows, inventory snapshot and (if given) the app's
   * inventory, in one transaction. A no-op repeat of the app's last entry (same outcome, revision and
   * health, nothing written, no object changed) is folded into that entry's verified record instead and the
   * Running row removed. Returns the id the attempt is recorded under.
   */
  finish(id: number, result: FinishInput): number {
    const records = recordsKeyOf(result.objects);
    const inventory = result.inventory ? inventoryKeyOf(result.inventory) : undefined;
    let app = "";
    let recorded: Pick<Recorded, "entry" | "root"> = { entry: id, root: null };
    const before = (name: string) => this.recorded.get(name);
    const entry = this.access.write(`cannot finish entry ${id}`, () =>
      this.db.transaction(() => {
        const row = this.db.get<EntryRow>("SELECT * FROM entries WHERE id = ?", [id]);
        if (!row) throw new BerthError(`entry ${id} does not exist`, this.access.err());
        if (row.outcome !== "Running")
          throw new BerthError(`entry ${id} is already ${row.outcome}`, this.access.err());
        app = row.app;
        recorded = this.writeFinished(row, result, records);
        // The same inventory this instance wrote last: nothing to read or rewrite.
        if (result.inventory && before(app)?.inventory !== inventory)
          this.inventory.replace(row.app, result.inventory);
        if (result.renderMemo && result.outcome === "Succeeded")
          this.memos?.record(app, recorded.entry, result.renderMemo);
        return recorded.entry;
      }),
    );
    // Remembered only once the transaction is committed.
    this.recorded.set(app, {
      ...recorded,
      records,
      inventory: inventory ?? before(app)?.inventory,
      render:
        result.outcome === "Succeeded" && result.inventory && result.renderedDigest
          ? result.renderedDigest
          : undefined,
    });
    return entry;
  }

  /**
   * The render digest of the app's last entry, when this instance recorded it as a success that wrote the
   * whole inventory: the inventory's digests are then what storing the same render's manifests returns.
   */
  lastRender(app: string): string | undefined {
    const mine = this.recorded.get(app);
    // A fresh process (the CLI) has recorded nothing yet: the app's render memo, checked against the inventory.
    return mine ? mine.render : this.memos?.lastRender(app);
  }

  /** Forgets what this instance recorded of an app (its inventory is being changed outside a finish). */
  forget(app: string): void {
    this.recorded.delete(app);
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
    return this.access.guard("cannot list entries", () =>
      this.db.all<JoinedRow>(sql, params).map(joinedSummaryOf),
    );
  }

  /** One entry with every object record (rebuilt from its inventory snapshot), or undefined. */
  get(id: number): LedgerEntry | undefined {
    return this.access.guard(`cannot read entry ${id}`, () => {
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
    return this.access.guard("cannot mark interrupted entries", () =>
      this.db.transaction(() => {
        const running = this.db.all<EntryRow>("SELECT * FROM entries WHERE outcome = 'Running' ORDER BY id");
        for (const row of running) {
          // A crash is worth an entry of its own, never a fold into the one before.
          this.requested.add(row.id);
          this.recorded.delete(row.app);
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

  /**
   * Finishes a Running entry (caller holds the transaction): folds a no-op repeat into the app's last entry,
   * or appends the entry to the chain with its changed object rows and inventory snapshot. Returns the id
   * the attempt is recorded under.
   */
  private writeFinished(
    row: EntryRow,
    result: Omit<FinishInput, "inventory">,
    recordsKey?: string,
  ): Pick<Recorded, "entry" | "root"> {
    const at = this.access.now().toISOString();
    const previous = this.db.get<EntryRow>(
      "SELECT * FROM entries WHERE app = ? AND chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1",
      [row.app],
    );
    // The same unchanged records this instance last recorded as the app's last entry: compacting them
    // against that entry's snapshot gives no rows and its root again, so skip the rebuild.
    const mine = this.recorded.get(row.app);
    const same =
      recordsKey !== undefined &&
      mine?.records === recordsKey &&
      previous?.id === mine.entry &&
      (previous.inventory_root ?? null) === mine.root;
    const { rows: explicit, snapshot } = same
      ? { rows: [], snapshot: undefined }
      : this.compact(row.app, result.objects);
    const root = same ? (mine?.root ?? null) : (snapshot?.root ?? null);
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
      return { entry: previous.id, root };
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
    const objects: Required<ObjectRow>[] = explicit.map((o, seq) => ({
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
    if (changed !== 1)
      throw new BerthError(`entry ${row.id} changed while being finished`, this.access.err());
    for (const o of objects) {
      this.db.run(
        "INSERT INTO entry_objects (entry_id, seq, object_id, ref_json, action, health, message, digest, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [o.entry_id, o.seq, o.object_id, o.ref_json, o.action, o.health, o.message, o.digest, o.status],
      );
    }
    for (const v of verdicts) {
      this.db.run(
        "INSERT INTO entry_verdicts (entry_id, seq, rule, rule_at, verdict, subject, message, approved_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [v.entry_id, v.seq, v.rule, v.rule_at, v.verdict, v.subject, v.message, v.approved_by],
      );
    }
    return { entry: row.id, root };
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
}
