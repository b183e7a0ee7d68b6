/** The hash chain over finished entries, and `verify`, which recomputes it and checks every blob. */
import { canonicalJson, sha256Hex } from "../object/canonical.ts";
import type { Driver } from "./driver.ts";
import type { EntryRow, ObjectRow, VerdictRow } from "./entry.ts";

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
  // Verdicts join the hash only when there are some, so entries written before they existed still verify.
  if (verdicts.length === 0) return sha256Hex(canonicalJson({ entry, objects: rows }));
  const judged = verdicts.map((v) => [
    v.seq,
    v.rule,
    v.rule_at,
    v.verdict,
    v.subject,
    v.message,
    v.approved_by,
  ]);
  return sha256Hex(canonicalJson({ entry, objects: rows, verdicts: judged }));
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

/** Recomputes the chain over all finished entries and checks each blob's digest. */
export function verifyLedger(db: Driver): VerifyResult {
  // Finished entries without a chain position sort first (NULL) and fail below: someone set their outcome.
  const rows = db.all<EntryRow>(
    "SELECT * FROM entries WHERE chain_seq IS NOT NULL OR outcome <> 'Running' ORDER BY chain_seq, id",
  );
  let prev = GENESIS_HASH;
  let seq = 0;
  for (const row of rows) {
    seq++;
    const bad = (message: string): VerifyResult => ({
      ok: false,
      firstBad: row.id,
      message: `entry ${row.id}: ${message}`,
      entries: seq - 1,
      blobs: 0,
    });
    if (row.outcome === "Running") return bad("is Running but has a chain position");
    if (row.chain_seq !== seq) {
      return bad(
        `chain position ${row.chain_seq ?? "none"}, expected ${seq} (an entry was removed or altered)`,
      );
    }
    if (row.prev_hash !== prev) return bad("previous-hash link does not match the entry before it");
    const objects = db.all<ObjectRow>("SELECT * FROM entry_objects WHERE entry_id = ? ORDER BY seq", [
      row.id,
    ]);
    const verdicts = db.all<VerdictRow>("SELECT * FROM entry_verdicts WHERE entry_id = ? ORDER BY seq", [
      row.id,
    ]);
    const content = contentHashOf(row, objects, verdicts);
    if (row.content_hash !== content)
      return bad("content does not match its hash (entry or object rows altered)");
    const hash = chainHashOf(prev, content);
    if (row.hash !== hash) return bad("entry hash does not match");
    prev = hash;
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
      entries: seq,
      blobs: 0,
    };
  }
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
        entries: seq,
        blobs,
      };
    }
    blobs++;
  }
  return { ok: true, entries: seq, blobs };
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
