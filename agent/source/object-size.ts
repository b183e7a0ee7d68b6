/**
 * The size of a Git object from the headers that precede it, without inflating it: a pack index (version 2)
 * gives where it starts in the pack, the pack entry's header its size, and a delta's own first bytes the size
 * of the object it makes. Render asks before reading a file, so a file over its limit is never inflated.
 */
import { constants, inflateSync } from "node:zlib";

const OFS_DELTA = 6;
const REF_DELTA = 7;
// Enough deflated input for any block header and the two sizes a delta starts with; it inflates to at most ~1 MiB.
const DELTA_HEAD_INPUT = 1024;
/** Bytes from an entry's start that packedSize may read: its header, a delta's base, then DELTA_HEAD_INPUT. */
export const ENTRY_HEADER_BYTES = 16 + 20 + DELTA_HEAD_INPUT;

/** Where `oid` starts in the pack of this index, or undefined when the index does not list it (or is not v2). */
export function offsetInIndex(idx: Uint8Array, oid: string): number | undefined {
  if (idx.byteLength < 8 + 256 * 4 || oid.length !== 40) return undefined;
  const view = new DataView(idx.buffer, idx.byteOffset, idx.byteLength);
  if (view.getUint32(0) !== 0xff744f63 || view.getUint32(4) !== 2) return undefined;
  const first = Number.parseInt(oid.slice(0, 2), 16);
  const fanout = 8;
  let low = first === 0 ? 0 : view.getUint32(fanout + (first - 1) * 4);
  let high = view.getUint32(fanout + first * 4);
  const count = view.getUint32(fanout + 255 * 4);
  const names = fanout + 256 * 4;
  if (idx.byteLength < names + count * (20 + 4 + 4)) return undefined;
  const want = hexBytes(oid);
  while (low < high) {
    const mid = (low + high) >>> 1;
    const order = compare(idx, names + mid * 20, want);
    if (order === 0) {
      const offsets = names + count * 24;
      const small = view.getUint32(offsets + mid * 4);
      if (!(small & 0x80000000)) return small;
      const large = offsets + count * 4 + (small & 0x7fffffff) * 8;
      if (large + 8 > idx.byteLength) return undefined;
      return view.getUint32(large) * 2 ** 32 + view.getUint32(large + 4);
    }
    if (order < 0) low = mid + 1;
    else high = mid;
  }
  return undefined;
}

/** A pack entry's header: its type (1–4 an object, 6 and 7 a delta), declared size, where its deflated data starts. */
export interface EntryHeader {
  type: number;
  size: number;
  dataAt: number;
}

/**
 * The header of the pack entry at `at` (type and size, 4 bits then 7 bits a byte; a delta's base after them), or
 * undefined when it runs past `end` or its size past 2^53.
 */
export function entryHeader(pack: Uint8Array, at: number, end = pack.byteLength): EntryHeader | undefined {
  if (at >= end) return undefined;
  let byte = pack[at++] as number;
  const type = (byte >> 4) & 7;
  let size = byte & 15;
  let shift = 4;
  while (byte & 0x80) {
    if (at >= end || shift > 49) return undefined;
    byte = pack[at++] as number;
    size += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  }
  if (type === OFS_DELTA) {
    do {
      if (at >= end) return undefined;
    } while ((pack[at++] as number) & 0x80);
  } else if (type === REF_DELTA) {
    at += 20;
    if (at > end) return undefined;
  }
  return { type, size, dataAt: at };
}

/** Whether an entry of this type is a delta (its size is the delta's, not the object's it makes). */
export function isDelta(type: number): boolean {
  return type === OFS_DELTA || type === REF_DELTA;
}

/** A delta starts with two sizes (7 bits a byte, low first): its base's, then the object's it makes. */
export function deltaResultSize(delta: Uint8Array): number | undefined {
  let at = 0;
  const varint = (): number | undefined => {
    let value = 0;
    for (let shift = 0; shift <= 49; shift += 7) {
      const byte = delta[at++];
      if (byte === undefined) return undefined;
      value += (byte & 0x7f) * 2 ** shift;
      if (!(byte & 0x80)) return value;
    }
    return undefined;
  };
  return varint() === undefined ? undefined : varint();
}

/** The inflated size of the object at `offset` of `pack` (a delta: of the object it makes), if readable. */
export function packedSize(pack: Uint8Array, offset: number): number | undefined {
  const header = entryHeader(pack, offset);
  if (!header || !isDelta(header.type)) return header?.size;
  const head = inflateHead(pack.subarray(header.dataAt, header.dataAt + DELTA_HEAD_INPUT));
  return head && deltaResultSize(head);
}

/** A loose object's size, from the "<type> <size>\0" its file inflates to first. */
export function looseSize(file: Uint8Array): number | undefined {
  const head = inflateHead(file.subarray(0, DELTA_HEAD_INPUT));
  if (!head) return undefined;
  const text = new TextDecoder().decode(head.subarray(0, Math.min(head.byteLength, 64)));
  const match = /^[a-z]+ (\d+)\0/.exec(text);
  return match ? Number(match[1]) : undefined;
}

/** What the first bytes of a zlib stream inflate to (a stream cut short is fine: what came out so far). */
function inflateHead(deflated: Uint8Array): Buffer | undefined {
  try {
    return inflateSync(deflated, { finishFlush: constants.Z_SYNC_FLUSH });
  } catch {
    return undefined;
  }
}

function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(20);
  for (let i = 0; i < 20; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function compare(bytes: Uint8Array, at: number, want: Uint8Array): number {
  for (let i = 0; i < 20; i++) {
    const d = (bytes[at + i] as number) - (want[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}
