/** The hash chain over finished entries, and `verify`, which recomputes it and checks every blob. */
import { canonicalJson, sha256Hex } from "../object/canonical.ts";
import type { Driver } from "./driver.ts";
import type { EntryRow, ObjectRow, VerdictRow, VerificationRow } from "./entry.ts";

/** prev_hash of the first finished entry. */
export const GENESIS_HASH = "0".repeat(64);

/** What `verify` found. `firstBad` is the id of the first bad entry in chain order; `blob` a bad blob's digest. */
export interface VerifyResult {
  ok: boolean;
  firstBad?: number;
  blob?: string;
  message?: string;
  /** How many finished entries and blobs were checked. */
  entries: number;
  blobs: number;
}

/** sha256 of an entry's stored columns and object rows; computed from rows so `finish` and `verify` agree. */
export function contentHashOf(
  row: EntryRow,
  objects: readonly ObjectRow[],
  verdicts: readonly VerdictRow[] = [],
): string {
  // Named columns, not the whole row: a column added by a later migration must not change old hashes.
  const entry = [
    row.id,
    row.app,
    row.revision,
    row.commit_json,
    row.trigger,
    row.outcome,
    row.reason,
    row.message,
    row.rendered_digest,
    row.health,
    row.timings_json,
    row.started_at,
    row.finished_at,
    row.chain_seq,
  ];
  // A write status joins a row's hash only when set, so rows written before the column existed still verify.
  const rows = objects.map((o) => {
    const row = [o.seq, o.object_id, o.ref_json, o.action, o.health, o.message, o.digest];
    return o.status === null || o.status === undefined ? row : [...row, o.status];
  });
  // Verdicts and the bounded-growth columns join the hash only when set, so older entries still verify.
  const hashed: Record<string, unknown> = { entry, objects: rows };
  if (verdicts.length > 0) {
    hashed.verdicts = verdicts.map((v) => [
      v.seq,
      v.rule,
      v.rule_at,
      v.verdict,
      v.subject,
      v.message,
      v.approved_by,
    ]);
  }
  if (row.inventory_root) hashed.inventory = row.inventory_root;
  if (row.sealed_json) hashed.sealed = row.sealed_json;
  return sha256Hex(canonicalJson(hashed));
}

/** The hash of an entry's verified record: bound to the entry's hash. */
export function verificationHashOf(
  entryHash: string,
  v: { count: number; first_at: string; last_at: string; health: string | null },
): string {
  return sha256Hex(`${entryHash}\n${canonicalJson([Number(v.count), v.first_at, v.last_at, v.health])}`);
}

/** The row gc's checkpoint is stored as (table `checkpoints`, one row). */
export interface CheckpointRow {
  chain_seq: number;
  head_hash: string;
  kept_json: string;
  dropped: number;
  created_at: string;
  previous: string | null;
  hash: string;
}

/** The hash of a gc checkpoint over the fields it stores. */
export function checkpointHashOf(c: Omit<CheckpointRow, "hash">): string {
  return sha256Hex(
    canonicalJson([
      Number(c.chain_seq),
      c.head_hash,
      c.kept_json,
      Number(c.dropped),
      c.created_at,
      c.previous,
    ]),
  );
}

/** The entry hash: links the content hash to the previous entry's hash. */
export function chainHashOf(prevHash: string, contentHash: string): string {
  return sha256Hex(`${prevHash}\n${contentHash}`);
}

interface BlobRow {
  digest: string;
  encoding: string;
  content: Uint8Array;
  content_hash: string;
}

/**
 * Recomputes the chain over all finished entries (from gc's checkpoint, when entries were dropped), checks
 * verified records and what entries sealed of them, every inventory snapshot and every blob's digest.
 */
export function verifyLedger(db: Driver): VerifyResult {
  // Finished entries without a chain position sort first (NULL) and fail below: someone set their outcome.
  const rows = db.all<EntryRow>(
    "SELECT * FROM entries WHERE chain_seq IS NOT NULL OR outcome <> 'Running' ORDER BY chain_seq, id",
  );
  let prev = GENESIS_HASH;
  let seq = 0;
  let checked = 0;
  // Entries gc kept below its checkpoint (pinned, approved, last healthy …): position → hash.
  let kept = new Map<number, string>();
  const checkpoint = db.get<CheckpointRow>("SELECT * FROM checkpoints WHERE id = 1");
  if (checkpoint) {
    if (checkpointHashOf(checkpoint) !== checkpoint.hash)
      return { ok: false, message: "gc checkpoint: does not match its hash (altered)", entries: 0, blobs: 0 };
    prev = checkpoint.head_hash;
    seq = Number(checkpoint.chain_seq);
    kept = new Map(JSON.parse(checkpoint.kept_json) as Array<[number, string]>);
  }
  const hashes = new Map<number, string>();
  let keptSeen = 0;
  for (const row of rows) {
    const bad = (message: string): VerifyResult => ({
      ok: false,
      firstBad: row.id,
      message: `entry ${row.id}: ${message}`,
      entries: checked,
      blobs: 0,
    });
    if (row.outcome === "Running") return bad("is Running but has a chain position");
    const objects = db.all<ObjectRow>("SELECT * FROM entry_objects WHERE entry_id = ? ORDER BY seq", [
      row.id,
    ]);
    const verdicts = db.all<VerdictRow>("SELECT * FROM entry_verdicts WHERE entry_id = ? ORDER BY seq", [
      row.id,
    ]);
    const content = contentHashOf(row, objects, verdicts);
    if (row.content_hash !== content)
      return bad("content does not match its hash (entry or object rows altered)");
    if (checkpoint && row.chain_seq !== null && row.chain_seq <= Number(checkpoint.chain_seq)) {
      // Below the checkpoint its neighbours are gone: the entry must be one gc listed as kept, unaltered.
      if (kept.get(row.chain_seq) !== row.hash)
        return bad(`chain position ${row.chain_seq} is below the gc checkpoint but not one it kept`);
      if (chainHashOf(row.prev_hash ?? "", content) !== row.hash) return bad("entry hash does not match");
      keptSeen++;
      checked++;
      hashes.set(row.id, row.hash);
      continue;
    }
    seq++;
    if (row.chain_seq !== seq) {
      return bad(
        `chain position ${row.chain_seq ?? "none"}, expected ${seq} (an entry was removed or altered)`,
      );
    }
    if (row.prev_hash !== prev) return bad("previous-hash link does not match the entry before it");
    const hash = chainHashOf(prev, content);
    if (row.hash !== hash) return bad("entry hash does not match");
    prev = hash;
    checked++;
    hashes.set(row.id, hash);
  }
  if (keptSeen !== kept.size) {
    return {
      ok: false,
      message: `gc checkpoint: ${kept.size - keptSeen} entries it kept are missing`,
      entries: checked,
      blobs: 0,
    };
  }
  // Object rows of entries that are not finished are outside the chain; there must be none.
  const stray = db.get<{ entry_id: number }>(
    "SELECT o.entry_id FROM entry_objects o JOIN entries e ON e.id = o.entry_id WHERE e.chain_seq IS NULL LIMIT 1",
  );
  if (stray) {
    return {
      ok: false,
      firstBad: stray.entry_id,
      message: `entry ${stray.entry_id}: object rows on an unfinished entry`,
      entries: checked,
      blobs: 0,
    };
  }
  const problem = verificationProblem(db, hashes) ?? snapshotProblem(db);
  if (problem) return { ...problem, ok: false, entries: checked, blobs: 0 };
  let blobs = 0;
  for (const blob of db.all<BlobRow>(
    "SELECT digest, encoding, content, content_hash FROM blobs ORDER BY digest",
  )) {
    const problem = blobProblem(blob);
    if (problem) {
      return {
        ok: false,
        blob: blob.digest,
        message: `blob ${blob.digest}: ${problem}`,
        entries: checked,
        blobs,
      };
    }
    blobs++;
  }
  return { ok: true, entries: checked, blobs };
}

/** Verified records must hash with their entry; what a later entry sealed of one must still be there as sealed. */
function verificationProblem(
  db: Driver,
  hashes: Map<number, string>,
): { firstBad?: number; message: string } | undefined {
  const verifications = new Map<number, VerificationRow>();
  for (const v of db.all<VerificationRow>("SELECT * FROM verifications ORDER BY entry_id")) {
    const entryHash = hashes.get(v.entry_id);
    if (entryHash === undefined)
      return { firstBad: v.entry_id, message: `entry ${v.entry_id}: verified record of an unchained entry` };
    if (verificationHashOf(entryHash, v) !== v.hash)
      return { firstBad: v.entry_id, message: `entry ${v.entry_id}: verified record altered` };
    verifications.set(v.entry_id, v);
  }
  for (const row of db.all<{ id: number; sealed_json: string }>(
    "SELECT id, sealed_json FROM entries WHERE sealed_json IS NOT NULL ORDER BY id",
  )) {
    const sealed = JSON.parse(row.sealed_json) as { entry: number; hash: string };
    const now = verifications.get(sealed.entry);
    // gc may have dropped the sealed entry (and its record with it); the seal stays in the chain.
    if (now && now.hash !== sealed.hash) {
      return {
        firstBad: sealed.entry,
        message: `entry ${sealed.entry}: verified record changed after entry ${row.id} sealed it`,
      };
    }
  }
  return undefined;
}

/** Every snapshot must match its digest; every root an entry names, and its buckets, must be there. */
function snapshotProblem(db: Driver): { firstBad?: number; message: string } | undefined {
  const present = new Map<string, string>();
  for (const s of db.all<{ digest: string; content: string }>("SELECT digest, content FROM snapshots")) {
    if (`sha256:${sha256Hex(s.content)}` !== s.digest)
      return { message: `inventory snapshot ${s.digest}: stored content does not match its digest` };
    present.set(s.digest, s.content);
  }
  for (const e of db.all<{ id: number; inventory_root: string }>(
    "SELECT id, inventory_root FROM entries WHERE inventory_root IS NOT NULL ORDER BY id",
  )) {
    const root = present.get(e.inventory_root);
    if (root === undefined)
      return { firstBad: e.id, message: `entry ${e.id}: inventory snapshot ${e.inventory_root} is missing` };
    for (const [, bucket] of (JSON.parse(root) as { b: Array<[number, string]> }).b) {
      if (!present.has(bucket))
        return { firstBad: e.id, message: `entry ${e.id}: inventory snapshot bucket ${bucket} is missing` };
    }
  }
  return undefined;
}

function blobProblem(blob: BlobRow): string | undefined {
  const actual = sha256Hex(blob.content);
  if (blob.content_hash !== actual) return "stored bytes do not match their hash";
  switch (blob.encoding) {
    case "plain":
    case "redacted":
      // Stored bytes are the canonical JSON the digest was taken over.
      return blob.digest === `sha256:${actual}` ? undefined : "stored manifest does not match its digest";
    case "aes-256-gcm":
      // The plaintext needs the key; the ciphertext hash is checked above and GCM authenticates on read.
      return blob.digest.startsWith("hmac-sha256:") ? undefined : "encrypted blob without a keyed digest";
    default:
      return `unknown encoding ${blob.encoding}`;
  }
}
