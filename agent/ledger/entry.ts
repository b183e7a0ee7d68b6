/** The ledger's record types and how they map to and from table rows. */
import type { Action, CommitInfo, HealthStatus, ObjectRef, Reason, VerdictRecord } from "../object/object.ts";
import type { DriftRecord, ObjectRecord, WriteStatus } from "../object/records.ts";

/** Where a sync attempt stands; "Running" until `finish` (or `markInterrupted`). */
export type Outcome = "Running" | "Succeeded" | "Failed";

export type { VerdictRecord } from "../object/object.ts";
export type {
  BeginInput,
  DriftRecord,
  FinishInput,
  InventoryItem,
  ObjectRecord,
  RenderMemo,
} from "../object/records.ts";

/** One recorded drift event: a DriftRecord with its id and time. */
export interface DriftEvent extends DriftRecord {
  id: number;
  /** ISO 8601 */
  detectedAt: string;
}

/** One entry as `list` returns it. */
export interface EntrySummary {
  id: number;
  app: string;
  revision: string;
  commitSha?: string;
  /** The configured source the revision is of (`default` for the top-level `source:`). */
  source?: string;
  trigger: string;
  outcome: Outcome;
  reason?: Reason;
  message?: string;
  health?: HealthStatus;
  /** ISO 8601 */
  startedAt: string;
  /** ISO 8601; absent while Running. */
  finishedAt?: string;
  /** No-op resyncs folded into this entry since it was written (the compact "verified" record). */
  verified?: VerifiedRun;
}

/** The compact record of the no-op resyncs after an entry: nothing written, health unchanged. */
export interface VerifiedRun {
  count: number;
  /** ISO 8601: first and last folded resync. */
  firstAt: string;
  lastAt: string;
  health?: HealthStatus;
}

/** One entry with everything recorded about it. */
export interface LedgerEntry extends EntrySummary {
  commit?: CommitInfo;
  renderedDigest?: string;
  timings: Record<string, number>;
  objects: ObjectRecord[];
  /** The sync rules' verdicts; absent when no rule matched. */
  verdicts?: VerdictRecord[];
  /** Hash of the entry finished before this one (64 zeros for the first); absent while Running. */
  prevHash?: string;
  /** sha256 over prevHash and this entry's content hash; absent while Running. */
  hash?: string;
  /** Digest of the inventory snapshot the unchanged objects were rebuilt from (hash-chained). */
  inventoryRoot?: string;
}

/** A row of `entries`, exactly as stored: the chain hashes these values. */
export interface EntryRow {
  id: number;
  app: string;
  revision: string;
  commit_json: string | null;
  trigger: string;
  outcome: string;
  reason: string | null;
  message: string | null;
  rendered_digest: string | null;
  health: string | null;
  timings_json: string | null;
  started_at: string;
  finished_at: string | null;
  chain_seq: number | null;
  prev_hash: string | null;
  content_hash: string | null;
  hash: string | null;
  /** Schema 5: the inventory snapshot root; NULL for entries whose rows list every object. */
  inventory_root?: string | null;
  /** Schema 5: the previous entry's verified record as it stood when this entry superseded it. */
  sealed_json?: string | null;
}

/** A row of `verifications`, exactly as stored. */
export interface VerificationRow {
  entry_id: number;
  count: number;
  first_at: string;
  last_at: string;
  health: string | null;
  hash: string;
}

/** The run of a stored verification row. */
export function verifiedRunOf(row: VerificationRow): VerifiedRun {
  const out: VerifiedRun = { count: Number(row.count), firstAt: row.first_at, lastAt: row.last_at };
  if (row.health !== null) out.health = row.health as HealthStatus;
  return out;
}

/** A row of `entry_objects`, exactly as stored. */
export interface ObjectRow {
  entry_id: number;
  seq: number;
  object_id: string;
  ref_json: string;
  action: string;
  health: string | null;
  message: string | null;
  digest: string | null;
  /** Added by schema version 6: NULL on older rows and on objects the sync did not write. */
  status?: string | null;
}

/** A row of `entry_verdicts`, exactly as stored. */
export interface VerdictRow {
  entry_id: number;
  seq: number;
  rule: string;
  rule_at: string;
  verdict: string;
  subject: string | null;
  message: string;
  approved_by: string | null;
}

/** The record of a stored verdict row. */
export function verdictRecordOf(row: VerdictRow): VerdictRecord {
  const out: VerdictRecord = { rule: row.rule, at: row.rule_at, verdict: row.verdict, message: row.message };
  if (row.subject !== null) out.subject = row.subject;
  if (row.approved_by !== null) out.approvedBy = row.approved_by;
  return out;
}

/** The summary of a stored entry. */
export function summaryOf(row: EntryRow): EntrySummary {
  const out: EntrySummary = {
    id: row.id,
    app: row.app,
    revision: row.revision,
    trigger: row.trigger,
    outcome: row.outcome as Outcome,
    startedAt: row.started_at,
  };
  if (row.commit_json !== null) {
    const commit = JSON.parse(row.commit_json) as CommitInfo;
    out.commitSha = commit.sha;
    if (commit.source !== undefined) out.source = commit.source;
  }
  if (row.reason !== null) out.reason = row.reason as Reason;
  if (row.message !== null) out.message = row.message;
  if (row.health !== null) out.health = row.health as HealthStatus;
  if (row.finished_at !== null) out.finishedAt = row.finished_at;
  return out;
}

/** The full entry of a stored row and its object records (rebuilt from its snapshot when it has one). */
export function entryOf(row: EntryRow, objects: ObjectRecord[], verdicts: VerdictRow[] = []): LedgerEntry {
  const out: LedgerEntry = {
    ...summaryOf(row),
    timings: row.timings_json === null ? {} : (JSON.parse(row.timings_json) as Record<string, number>),
    objects,
  };
  if (row.inventory_root) out.inventoryRoot = row.inventory_root;
  if (verdicts.length > 0) out.verdicts = verdicts.map(verdictRecordOf);
  if (row.commit_json !== null) out.commit = JSON.parse(row.commit_json) as CommitInfo;
  if (row.rendered_digest !== null) out.renderedDigest = row.rendered_digest;
  if (row.prev_hash !== null) out.prevHash = row.prev_hash;
  if (row.hash !== null) out.hash = row.hash;
  return out;
}

/** The record of a stored object row. */
export function objectRecordOf(row: ObjectRow): ObjectRecord {
  const out: ObjectRecord = { ref: JSON.parse(row.ref_json) as ObjectRef, action: row.action as Action };
  if (row.health !== null) out.health = row.health as HealthStatus;
  if (row.message !== null) out.message = row.message;
  if (row.digest !== null) out.digest = row.digest;
  if (row.status !== null && row.status !== undefined) out.status = row.status as WriteStatus;
  return out;
}
