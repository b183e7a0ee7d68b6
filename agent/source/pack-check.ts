/**
 * Bounds on what one Git fetch may bring. isomorphic-git holds the downloaded pack in memory and inflates every
 * object in it, whole, to index it: a few kilobytes of deflated zeros declared as a gigabyte blob would fill the
 * agent's memory before render's file-size limit ever saw the file. So the pack is walked first, entry by entry,
 * and refused (nothing written to the cache) when an object, the sum of them or their count is over a limit.
 */
import { inflateSync } from "node:zlib";
import { BerthError } from "../object/errors.ts";
import { deltaResultSize, entryHeader, isDelta } from "./object-size.ts";

export interface PackLimits {
  /** Bytes of the server's list of refs (each branch and tag a line; checked while it arrives). */
  maxRefsBytes: number;
  /** Bytes of the pack as downloaded (checked while it arrives). */
  maxPackBytes: number;
  /** Bytes of one object once inflated (a delta: of the object it makes). */
  maxObjectBytes: number;
  /** Bytes of all the pack's objects once inflated. */
  maxUnpackedBytes: number;
  /** Objects in one pack. */
  maxObjects: number;
}

/**
 * Far above a repository of manifests and charts (a depth-1 fetch carries only the tip's tree), far below what
 * would hurt a small machine. A repository holding a bigger file elsewhere is refused, naming the size.
 */
export const DEFAULT_PACK_LIMITS: PackLimits = {
  maxRefsBytes: 32 * 1024 * 1024,
  maxPackBytes: 256 * 1024 * 1024,
  maxObjectBytes: 64 * 1024 * 1024,
  maxUnpackedBytes: 1024 * 1024 * 1024,
  maxObjects: 200_000,
};

const TYPES: Record<number, string> = { 1: "commit", 2: "tree", 3: "blob", 4: "tag", 6: "delta", 7: "delta" };

/**
 * Walks `pack` (format version 2 or 3) and throws a BerthError naming `subject` when it breaks a limit. Each
 * object is inflated once, to find where the next begins, with its output capped at its declared size (a
 * stream that inflates to more than its header says is refused, not followed). A delta's declared size is the
 * delta's; the size of the object it makes is read from the delta's own header and counted instead.
 */
export function checkPack(pack: Uint8Array, limits: PackLimits, subject: string): void {
  const refuse = (message: string) =>
    new BerthError(`${message}; nothing was fetched`, { subject, reason: "FetchFailed" });
  const corrupt = (what: string) => refuse(`the server sent a damaged pack (${what})`);
  if (pack.byteLength > limits.maxPackBytes)
    throw refuse(
      `the pack is ${pack.byteLength} bytes, over the limit of ${limits.maxPackBytes} (the source's limits.maxFetchBytes)`,
    );
  if (pack.byteLength < 32 || text(pack, 0, 4) !== "PACK") throw corrupt("no pack header");
  const view = new DataView(pack.buffer, pack.byteOffset, pack.byteLength);
  const version = view.getUint32(4);
  if (version !== 2 && version !== 3) throw corrupt(`version ${version}`);
  const count = view.getUint32(8);
  if (count > limits.maxObjects)
    throw refuse(
      `the pack holds ${count} objects, over the limit of ${limits.maxObjects} (the source's limits.maxObjects)`,
    );
  const end = pack.byteLength - 20; // the trailing checksum
  let at = 12;
  let unpacked = 0;
  for (let i = 0; i < count; i++) {
    if (at >= end) throw corrupt(`it ends after ${i} of ${count} objects`);
    const header = entryHeader(pack, at, end);
    if (!header) throw corrupt(`object ${i + 1}: a header cut short or out of range`);
    const { type, size } = header;
    at = header.dataAt;
    const kind = TYPES[type];
    if (!kind) throw corrupt(`object ${i + 1}: unknown type ${type}`);
    // Checked before inflating anything: the declared size is what the inflater is held to below.
    if (size > limits.maxObjectBytes) throw tooBig(kind, size, limits, refuse);
    let inflated: Buffer;
    let consumed: number;
    try {
      const out = inflateSync(pack.subarray(at, end), {
        info: true,
        maxOutputLength: Math.max(size, 1),
      }) as unknown as {
        buffer: Buffer;
        engine: { bytesWritten: number };
      };
      inflated = out.buffer;
      consumed = out.engine.bytesWritten;
    } catch (err) {
      if ((err as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE")
        throw corrupt(`object ${i + 1}: a ${kind} that inflates to more than the ${size} bytes it declares`);
      throw corrupt(`object ${i + 1}: ${(err as Error).message}`);
    }
    if (inflated.byteLength !== size)
      throw corrupt(`object ${i + 1}: ${inflated.byteLength} bytes where ${size} were declared`);
    at += consumed;
    const made = isDelta(type) ? deltaResultSize(inflated) : size;
    if (made === undefined) throw corrupt(`object ${i + 1}: a delta without its header`);
    if (made > limits.maxObjectBytes) throw tooBig("delta-made object", made, limits, refuse);
    unpacked += made;
    if (unpacked > limits.maxUnpackedBytes)
      throw refuse(
        `the pack's objects unpack to more than ${limits.maxUnpackedBytes} bytes (the source's limits.maxUnpackedBytes); refused as a possible decompression bomb`,
      );
  }
}

function tooBig(
  kind: string,
  size: number,
  limits: PackLimits,
  refuse: (m: string) => BerthError,
): BerthError {
  return refuse(
    `the pack holds a ${kind} of ${size} bytes, over the limit of ${limits.maxObjectBytes} bytes for one object (the source's limits.maxObjectBytes; a large file in the repository, or a decompression bomb)`,
  );
}

function text(bytes: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...bytes.subarray(from, to));
}
