/** Hand-made Git packs for tests: entries with any header, deltas with any sizes (what a hostile server sends). */
import { createHash } from "node:crypto";
import { deflateSync } from "node:zlib";

export const BLOB = 3;
export const OFS_DELTA = 6;
export const REF_DELTA = 7;

/** A pack entry's header: type and size, 4 bits then 7 bits a byte. */
export function entryHeader(type: number, size: number): number[] {
  const out = [(type << 4) | (size & 15)];
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    out[out.length - 1] = (out[out.length - 1] as number) | 0x80;
    out.push(rest & 0x7f);
    rest = Math.floor(rest / 128);
  }
  return out;
}

/** A delta's size field: 7 bits a byte, least significant first. */
export function varint(value: number): number[] {
  const out: number[] = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value > 0) byte |= 0x80;
    out.push(byte);
  } while (value > 0);
  return out;
}

/** An OFS_DELTA's distance back to its base, in git's offset encoding (most significant first, each +1). */
export function ofsDistance(distance: number): number[] {
  const out = [distance & 0x7f];
  for (let n = Math.floor(distance / 128); n > 0; n = Math.floor(n / 128)) {
    n -= 1;
    out.unshift(0x80 | (n & 0x7f));
  }
  return out;
}

export interface PackEntry {
  type: number;
  /** The size the header declares; the data's length unless a test lies. */
  declared?: number;
  data: Uint8Array;
  /** Bytes between header and data: a delta's base. */
  base?: number[];
}

/** The bytes of one entry as a pack holds it. */
export function packEntry(e: PackEntry): Buffer {
  return Buffer.concat([
    Uint8Array.from(entryHeader(e.type, e.declared ?? e.data.byteLength)),
    Uint8Array.from(e.base ?? []),
    deflateSync(e.data),
  ]);
}

/** A version 2 pack of `entries`, with its checksum. */
export function pack(entries: PackEntry[]): Uint8Array {
  const head = Buffer.alloc(12);
  head.write("PACK");
  head.writeUInt32BE(2, 4);
  head.writeUInt32BE(entries.length, 8);
  const body = Buffer.concat([head, ...entries.map(packEntry)]);
  return Buffer.concat([body, createHash("sha1").update(body).digest()]);
}
