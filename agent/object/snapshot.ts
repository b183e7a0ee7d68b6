/** A read-only view of a repository tree at one commit, shared by source and render. */
import { BerthError } from "./errors.ts";
import type { CommitInfo } from "./object.ts";

/** One entry of a tree. `symlink` entries read back as their target path. */
export interface TreeEntry {
  name: string;
  /** Path from the repository root, "/"-separated, no leading slash. */
  path: string;
  type: "blob" | "tree" | "symlink" | "submodule";
  /** A blob's Git object id where the snapshot knows it: the same id at the same path is the same bytes. */
  oid?: string;
}

/** A repository tree at one commit. Paths are "/"-separated from the root; "" is the root. */
export interface Snapshot {
  /** `<ref>@sha1:<hash>` */
  revision: string;
  commit: CommitInfo;
  /** Entries directly under a directory; rejects with an error naming the path if it is not a directory. */
  readDir(path: string): Promise<TreeEntry[]>;
  /** The bytes of a blob, or the target of a symlink; rejects naming the path if absent. */
  readBlob(path: string, options?: ReadBlobOptions): Promise<Uint8Array>;
  /** The entry at a path, or undefined. */
  stat(path: string): Promise<TreeEntry | undefined>;
}

/** What a reader of a blob may ask the snapshot to refuse. */
export interface ReadBlobOptions {
  /**
   * Rejects with BlobTooLargeError when the blob has more bytes than this: before reading (and, from Git, before
   * inflating) it where the snapshot can tell its size, otherwise once read.
   */
  maxBytes?: number;
}

/** A blob over the reader's `maxBytes`: its size, its bytes not kept. */
/** What a file over a reader's limit is told with, by a snapshot (BlobTooLargeError) and by render alike. */
export function tooLargeMessage(size: number, maxBytes: number): string {
  return `file is ${size} bytes, over the limit of ${maxBytes}`;
}

export class BlobTooLargeError extends BerthError {
  constructor(
    readonly path: string,
    readonly size: number,
    readonly maxBytes: number,
  ) {
    super(tooLargeMessage(size, maxBytes), { subject: path });
    this.name = "BlobTooLargeError";
  }
}

/** Throws BlobTooLargeError when `size` (undefined: not known) is more than `options.maxBytes`. */
export function checkSize(
  path: string,
  size: number | undefined,
  options: ReadBlobOptions | undefined,
): void {
  const max = options?.maxBytes;
  if (size !== undefined && max !== undefined && size > max) throw new BlobTooLargeError(path, size, max);
}

/** `bytes`, or BlobTooLargeError when they are more than `options.maxBytes`. */
export function withinLimit(
  path: string,
  bytes: Uint8Array,
  options: ReadBlobOptions | undefined,
): Uint8Array {
  checkSize(path, bytes.byteLength, options);
  return bytes;
}

/** Tree entry modes as Git stores them, and what each is. */
export const TREE_MODE_TYPES: Readonly<Record<string, TreeEntry["type"]>> = {
  "040000": "tree",
  "100644": "blob",
  "100755": "blob",
  "120000": "symlink",
  "160000": "submodule",
};
