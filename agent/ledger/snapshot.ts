/**
 * Inventory snapshots: the full object records of an entry (minus each object's action), stored
 * content-addressed in hash buckets so that entries share every bucket that did not change. An entry keeps
 * the root digest (hash-chained with it) and rows only for the objects whose action or state changed; the
 * rest of its records are rebuilt from the snapshot. One changed object costs one bucket and a new root.
 */
import { canonicalJson, sha256Hex } from "../object/canonical.ts";
import { type ObjectRef, objectId } from "../object/object.ts";
import { compareApplyOrder } from "../object/order.ts";
import type { Driver } from "./driver.ts";
import type { ObjectRecord } from "./entry.ts";

/**
 * One object of a snapshot: [object id, canonical ref JSON, digest, health, message, other fields of the
 * record as canonical JSON (or null)] — everything but the action, so a record comes back whole.
 */
export type SnapshotItem = [string, string, string | null, string | null, string | null, (string | null)?];

/** A root or bucket ready to insert. */
export interface SnapshotBlob {
  digest: string;
  content: string;
}

/** A built snapshot: its root digest, the root and buckets by bucket number. */
export interface BuiltSnapshot {
  root: string;
  /** How many buckets. */
  n: number;
  /** The bucket of an object id. */
  bucketOf(id: string): number;
  blobs: SnapshotBlob[];
  /** bucket number → bucket digest */
  buckets: Map<number, string>;
  /** bucket number → its items, for comparing with the previous snapshot. */
  items: Map<number, SnapshotItem[]>;
}

interface RootContent {
  v: 1;
  /** How many buckets object ids hash into (a power of two). */
  n: number;
  /** [bucket, digest] for each non-empty bucket, by bucket number. */
  b: Array<[number, string]>;
}

/** ~16 objects a bucket, at most 256 buckets: a 1,000-object app rewrites ~2 KB of bucket and a ~5 KB root. */
function bucketCount(objects: number): number {
  let n = 1;
  while (n < 256 && n * 16 < objects) n *= 2;
  return n;
}

/** FNV-1a of the id: stable, cheap, spread well enough for ~16-object buckets (not a security boundary). */
function bucketOf(id: string, n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % n;
}

function blobOf(value: unknown): SnapshotBlob {
  const content = canonicalJson(value);
  return { digest: `sha256:${sha256Hex(content)}`, content };
}

/** canonicalJson of a reference, without the generic key sort for the usual five-field one. */
export function refJson(ref: ObjectRef): string {
  if (Object.keys(ref).length !== 5) return canonicalJson(ref);
  const { group, kind, name, namespace, version } = ref;
  return JSON.stringify({ group, kind, name, namespace, version });
}

/** Fields of a record with a place of their own in a snapshot item; any other goes into its last element. */
// `status` says how one attempt's write went: it lives in that entry's own rows (a written object always has
// one), not in the inventory snapshot, so the next no-op resync finds the same snapshot and folds.
const ITEM_FIELDS = new Set(["ref", "action", "health", "message", "digest", "status"]);

// Both below run for every object of every resync (a warm no-op of 1,000 objects): plain loops over the keys,
// without the arrays Object.entries and Object.fromEntries make (a third of the time without the JIT).

/** Whether the snapshot item of a record gives the record back (as "unchanged"): JSON values only. */
export function fitsSnapshot(record: ObjectRecord): boolean {
  for (const key in record) if (typeof record[key as keyof ObjectRecord] === "function") return false;
  return true;
}

function extraOf(record: ObjectRecord): string | null {
  let extra: Record<string, unknown> | undefined;
  for (const key in record) {
    const value = record[key as keyof ObjectRecord];
    if (ITEM_FIELDS.has(key) || value === undefined) continue;
    extra ??= {};
    extra[key] = value;
  }
  return extra ? canonicalJson(extra) : null;
}

/** The snapshot item of a record (everything but its action). */
export function itemOf(record: ObjectRecord): SnapshotItem {
  return [
    objectId(record.ref),
    refJson(record.ref),
    record.digest ?? null,
    record.health ?? null,
    record.message ?? null,
    extraOf(record),
  ];
}

/** Builds the snapshot of an entry's records; deleted objects are not part of what the app holds. */
export function buildSnapshot(records: readonly ObjectRecord[]): BuiltSnapshot {
  const kept = records.filter((r) => r.action !== "deleted").map(itemOf);
  const n = bucketCount(kept.length);
  const items = new Map<number, SnapshotItem[]>();
  for (const item of kept) {
    const b = bucketOf(item[0], n);
    const list = items.get(b) ?? [];
    list.push(item);
    items.set(b, list);
  }
  const blobs: SnapshotBlob[] = [];
  const buckets = new Map<number, string>();
  for (const [b, list] of [...items].sort(([a], [c]) => a - c)) {
    list.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    const blob = blobOf(list);
    blobs.push(blob);
    buckets.set(b, blob.digest);
  }
  const root: RootContent = { v: 1, n, b: [...buckets] };
  const rootBlob = blobOf(root);
  blobs.push(rootBlob);
  return { root: rootBlob.digest, n, bucketOf: (id) => bucketOf(id, n), blobs, buckets, items };
}

/** Stores the root and buckets (content-addressed, idempotent). */
export function storeSnapshot(db: Driver, built: BuiltSnapshot, createdAt: string): void {
  for (const b of built.blobs) {
    db.run("INSERT OR IGNORE INTO snapshots (digest, content, created_at) VALUES (?, ?, ?)", [
      b.digest,
      b.content,
      createdAt,
    ]);
  }
}

function readBlob<T>(db: Driver, digest: string): T {
  const row = db.get<{ content: string }>("SELECT content FROM snapshots WHERE digest = ?", [digest]);
  if (!row) throw new Error(`inventory snapshot ${digest} is missing`);
  if (`sha256:${sha256Hex(row.content)}` !== digest)
    throw new Error(`inventory snapshot ${digest} does not match its digest`);
  return JSON.parse(row.content) as T;
}

/** The bucket count and bucket digests of a stored root. */
export function readRoot(db: Driver, root: string): { n: number; buckets: Map<number, string> } {
  const content = readBlob<RootContent>(db, root);
  return { n: content.n, buckets: new Map(content.b) };
}

/** The bucket digests of a stored root. */
export function rootBuckets(db: Driver, root: string): Map<number, string> {
  return readRoot(db, root).buckets;
}

/** The items of one stored bucket. */
export function bucketItems(db: Driver, digest: string): SnapshotItem[] {
  return readBlob<SnapshotItem[]>(db, digest);
}

/** Every item of a stored snapshot. */
export function loadSnapshot(db: Driver, root: string): SnapshotItem[] {
  return [...rootBuckets(db, root).values()].flatMap((d) => bucketItems(db, d));
}

/**
 * The records of an entry: its own rows win, every other object of the snapshot was "unchanged"; in apply
 * order (the order a plan records them), rows keeping their recorded order among equals.
 */
export function mergeRecords(rows: readonly ObjectRecord[], items: readonly SnapshotItem[]): ObjectRecord[] {
  const explicit = new Set(rows.map((r) => objectId(r.ref)));
  const out: ObjectRecord[] = [...rows];
  for (const [id, refJson, digest, health, message, extra] of items) {
    if (explicit.has(id)) continue;
    const rec: ObjectRecord = {
      ...(extra ? (JSON.parse(extra) as object) : {}),
      ref: JSON.parse(refJson) as ObjectRef,
      action: "unchanged",
    };
    if (health !== null) rec.health = health as NonNullable<ObjectRecord["health"]>;
    if (message !== null) rec.message = message;
    if (digest !== null) rec.digest = digest;
    out.push(rec);
  }
  return out
    .map((r, i) => ({ r, i }))
    .sort((a, b) => compareApplyOrder(a.r.ref, b.r.ref) || a.i - b.i)
    .map((x) => x.r);
}

/** Digests of every snapshot blob reachable from a root (the root included). */
export function snapshotDigests(db: Driver, root: string): string[] {
  return [root, ...rootBuckets(db, root).values()];
}
