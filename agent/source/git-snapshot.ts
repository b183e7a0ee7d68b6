/** A `Snapshot` read straight from a bare object store: trees and blobs at one commit, no working copy. */
import { BerthError } from "../object/errors.ts";
import { boundedCommit, type CommitInfo } from "../object/object.ts";
import {
  checkSize,
  type ReadBlobOptions,
  type Snapshot,
  TREE_MODE_TYPES,
  type TreeEntry,
  withinLimit,
} from "../object/snapshot.ts";
import { Directories, type GitEntry, publicEntry } from "./directories.ts";
import {
  objectSize,
  readBlob,
  readCommit,
  readTree,
  type SnapshotReader,
  snapshotReader,
} from "./iso-git.ts";

/**
 * The most one directory's tree object may hold. isomorphic-git parses a tree whole into an object per entry
 * (about 40 bytes of tree make 200 of heap), so a fetched 64 MiB tree would take gigabytes. 8 MiB is some
 * 200,000 entries, twice what one render walks (MAX_WALK_ENTRIES).
 */
export const MAX_TREE_BYTES = 8 * 1024 * 1024;

/** A repository tree at one commit of the bare repository `gitdir`; trees are read once and kept. */
export class GitSnapshot implements Snapshot {
  private readonly dirs = new Directories<GitEntry>(
    (dir, entry) => this.loadTree(dir, entry),
    (dir, why) => ({ message: `${why} at ${this.revision}`, subject: dir }),
  );
  private constructor(
    private reader: SnapshotReader,
    readonly revision: string,
    readonly commit: CommitInfo,
    private readonly rootTree: string,
  ) {}

  /** Opens the snapshot at `sha`, which must already be in the object store `reader` reads. */
  static async open(reader: SnapshotReader, sha: string, revision: string): Promise<GitSnapshot> {
    const commit = await readCommit(reader, sha);
    const info: CommitInfo = boundedCommit({
      sha,
      author: `${commit.author.name} <${commit.author.email}>`,
      message: commit.message.trimEnd(),
      time: new Date(commit.author.timestamp * 1000).toISOString(),
    });
    return new GitSnapshot(reader, revision, info, commit.tree);
  }

  async readDir(path: string): Promise<TreeEntry[]> {
    return (await this.dirs.entries(normalize(path))).map(publicEntry);
  }

  async readBlob(path: string, options?: ReadBlobOptions): Promise<Uint8Array> {
    const clean = normalize(path);
    const entry = await this.dirs.find(clean);
    if (!entry) throw this.error(clean, "no such file");
    if (entry.type === "tree") throw this.error(clean, "is a directory, not a file");
    if (entry.type === "submodule") throw this.error(clean, "is a submodule, which berth does not follow");
    // Told from the pack's headers: a file over the limit is never inflated (it could be gigabytes of zeros).
    if (options?.maxBytes !== undefined)
      checkSize(clean, await this.read((r) => objectSize(r, entry.oid)), options);
    // A symlink's blob is its target path, which is what `Snapshot` promises to return for it.
    return withinLimit(clean, await this.read((r) => readBlob(r, entry.oid)), options);
  }

  async stat(path: string): Promise<TreeEntry | undefined> {
    const clean = normalize(path);
    if (clean === "") return { name: "", path: "", type: "tree" };
    const entry = await this.dirs.find(clean);
    return entry && publicEntry(entry);
  }

  /** The tree of `dir` (its `entry` in its parent; the root's when undefined), refused unread past MAX_TREE_BYTES. */
  private async loadTree(dir: string, entry: GitEntry | undefined): Promise<GitEntry[]> {
    const oid = entry?.oid ?? this.rootTree;
    // Told from the pack's headers, as for a file: a tree over the limit is never inflated or parsed.
    const size = await this.read((r) => objectSize(r, oid));
    if (size !== undefined && size > MAX_TREE_BYTES)
      throw new BerthError(
        `the directory's tree object is ${size} bytes, over the limit of ${MAX_TREE_BYTES} at ${this.revision}`,
        { subject: dir === "" ? "." : dir },
      );
    const tree = await this.read((r) => readTree(r, oid));
    return tree.map((e) => ({
      name: e.path,
      path: dir === "" ? e.path : `${dir}/${e.path}`,
      type: TREE_MODE_TYPES[e.mode] ?? "blob",
      oid: e.oid,
    }));
  }

  /**
   * Runs a read of the object store, and once more with a new reader when it fails. The sync loop keeps a
   * snapshot while its commit is unchanged, for days maybe, and a reader remembers the pack listing it first saw;
   * meanwhile another branch's fetches into the same cache may fold the packs and, past the grace, delete the old
   * ones (compact.ts). The commit's objects are then in the folded pack, which a new reader lists.
   */
  private async read<T>(fn: (reader: SnapshotReader) => Promise<T>): Promise<T> {
    const reader = this.reader;
    try {
      return await fn(reader);
    } catch {
      if (this.reader === reader) this.reader = snapshotReader(reader.gitdir);
      return fn(this.reader);
    }
  }

  private error(path: string, what: string): BerthError {
    return new BerthError(`${what} at ${this.revision}`, { subject: path });
  }
}

/** "/a//b/./c/" → "a/b/c"; ".." is refused because a snapshot has no parent to climb to. */
function normalize(path: string): string {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new BerthError(`path must not contain ".."`, { subject: path });
  return parts.join("/");
}
