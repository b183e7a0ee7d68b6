/** A Snapshot read from a bare repository with the system git: `ls-tree` per directory read, `cat-file` per blob. */
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
import { GitOutputTooLarge, runGit } from "./ssh-git.ts";

/**
 * The most one directory's listing (`git ls-tree -l`, 62 bytes and the name an entry) may print: over 200,000
 * entries, about what an 8 MiB tree object holds (the limit over HTTP, git-snapshot.ts). It is held in memory.
 */
const MAX_LISTING_BYTES = 16 * 1024 * 1024;

interface Entry extends GitEntry {
  size?: number;
}

/** A repository tree at one commit; each directory is listed when first read, and kept. */
export class SshSnapshot implements Snapshot {
  private readonly dirs = new Directories<Entry>(
    (dir) => this.list(dir),
    (dir, why) => ({ message: why, subject: `${dir} at ${this.revision}` }),
  );
  private constructor(
    private readonly gitdir: string,
    readonly revision: string,
    readonly commit: CommitInfo,
    private readonly sha: string,
    private readonly maxBlobBytes: number,
  ) {}

  /**
   * Opens the commit `sha`, which must be in the bare repository `gitdir`. One blob may hold at most
   * `maxBlobBytes`: the source's limits.maxObjectBytes, what the fetch let into the cache.
   */
  static async open(
    gitdir: string,
    sha: string,
    revision: string,
    maxBlobBytes: number,
  ): Promise<SshSnapshot> {
    const subject = `commit ${sha}`;
    const meta = await runGit(["--git-dir", gitdir, "show", "-s", "--format=%an <%ae>%x00%aI%x00%B", sha], {
      subject,
    });
    const [author = "", time = "", message = ""] = meta.stdout.toString("utf8").split("\0");
    const info = boundedCommit({
      sha,
      author,
      message: message.trimEnd(),
      time: new Date(time).toISOString(),
    });
    return new SshSnapshot(gitdir, revision, info, sha, maxBlobBytes);
  }

  /** Entries directly under `path`. */
  async readDir(path: string): Promise<TreeEntry[]> {
    return (await this.dirs.entries(normalize(path))).map(publicEntry);
  }

  /** A blob's bytes, or a symlink's target. */
  async readBlob(path: string, options?: ReadBlobOptions): Promise<Uint8Array> {
    const clean = normalize(path);
    const entry = await this.dirs.find(clean);
    if (!entry) throw this.error(clean, "no such file");
    if (entry.type === "tree") throw this.error(clean, "is a directory, not a file");
    if (entry.type === "submodule") throw this.error(clean, "is a submodule, which berth does not follow");
    // Known from the listing, so a file over a limit is refused without reading it.
    checkSize(clean, entry.size, options);
    if (entry.size !== undefined && entry.size > this.maxBlobBytes)
      throw this.error(
        clean,
        `the file is ${entry.size} bytes, over the limit of ${this.maxBlobBytes} for one file (the source's limits.maxObjectBytes)`,
      );
    const out = await runGit(["--git-dir", this.gitdir, "cat-file", "blob", entry.oid], {
      subject: clean,
      maxOutputBytes: this.maxBlobBytes,
    });
    return withinLimit(clean, new Uint8Array(out.stdout), options);
  }

  /** The entry at `path`, or undefined. */
  async stat(path: string): Promise<TreeEntry | undefined> {
    const clean = normalize(path);
    if (clean === "") return { name: "", path: "", type: "tree" };
    const entry = await this.dirs.find(clean);
    return entry ? { name: entry.name, path: entry.path, type: entry.type } : undefined;
  }

  /** One `git ls-tree -l` of `dir`: its entries with their sizes, sorted by name. */
  private async list(dir: string): Promise<Entry[]> {
    const treeish = dir === "" ? this.sha : `${this.sha}:${dir}`;
    const listing = await runGit(["--git-dir", this.gitdir, "ls-tree", "-l", "-z", treeish], {
      subject: `${dir || "(repository root)"} at ${this.revision}`,
      maxOutputBytes: MAX_LISTING_BYTES,
    }).catch((err: unknown) => {
      if (err instanceof GitOutputTooLarge)
        throw this.error(
          dir,
          `the directory's listing is over ${MAX_LISTING_BYTES} bytes, the limit for one directory`,
        );
      throw err;
    });
    const entries: Entry[] = [];
    for (const record of listing.stdout.toString("utf8").split("\0")) {
      if (record === "") continue;
      const tab = record.indexOf("\t");
      // "<mode> <type> <oid> <size, padded with spaces; - for a tree>"
      const [mode = "", , oid = "", size = "-"] = record.slice(0, tab).split(/ +/);
      const name = record.slice(tab + 1);
      const type = TREE_MODE_TYPES[mode];
      if (!type) continue;
      entries.push({
        name,
        path: dir === "" ? name : `${dir}/${name}`,
        type,
        oid,
        ...(size === "-" ? {} : { size: Number(size) }),
      });
    }
    return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private error(path: string, why: string): BerthError {
    return new BerthError(why, { subject: `${path || "(repository root)"} at ${this.revision}` });
  }
}

function normalize(path: string): string {
  return path
    .split("/")
    .filter((p) => p !== "" && p !== ".")
    .join("/");
}
