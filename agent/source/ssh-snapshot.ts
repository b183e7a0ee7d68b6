/** A Snapshot read from a bare repository with the system git: one recursive `ls-tree`, then `cat-file` per blob. */
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
import { DEFAULT_PACK_LIMITS } from "./pack-check.ts";
import { runGit } from "./ssh-git.ts";

/** The most one blob may hold: the limit a fetch over HTTP puts on one object. */
const MAX_BLOB_BYTES = DEFAULT_PACK_LIMITS.maxObjectBytes;

/** A repository tree at one commit, its listing read once. */
export class SshSnapshot implements Snapshot {
  private constructor(
    private readonly gitdir: string,
    readonly revision: string,
    readonly commit: CommitInfo,
    private readonly entries: Map<string, TreeEntry & { oid: string; size?: number }>,
    private readonly children: Map<string, TreeEntry[]>,
  ) {}

  /** Opens the commit `sha`, which must be in the bare repository `gitdir`. */
  static async open(gitdir: string, sha: string, revision: string): Promise<SshSnapshot> {
    const subject = `commit ${sha}`;
    const meta = await runGit(["--git-dir", gitdir, "show", "-s", "--format=%an <%ae>%x00%aI%x00%B", sha], {
      subject,
    });
    const [author = "", time = "", message = ""] = meta.stdout.toString("utf8").split("\0");
    const listing = await runGit(
      ["--git-dir", gitdir, "ls-tree", "-r", "-t", "-l", "-z", "--full-tree", sha],
      {
        subject,
      },
    );
    const entries = new Map<string, TreeEntry & { oid: string; size?: number }>();
    const children = new Map<string, TreeEntry[]>([["", []]]);
    for (const record of listing.stdout.toString("utf8").split("\0")) {
      if (record === "") continue;
      const tab = record.indexOf("\t");
      // "<mode> <type> <oid> <size, padded with spaces; - for a tree>"
      const [mode = "", , oid = "", size = "-"] = record.slice(0, tab).split(/ +/);
      const path = record.slice(tab + 1);
      const type = TREE_MODE_TYPES[mode];
      if (!type) continue;
      const slash = path.lastIndexOf("/");
      const entry = {
        name: path.slice(slash + 1),
        path,
        type,
        oid,
        ...(size === "-" ? {} : { size: Number(size) }),
      };
      entries.set(path, entry);
      const parent = slash < 0 ? "" : path.slice(0, slash);
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent)?.push({ name: entry.name, path, type, ...(type === "blob" ? { oid } : {}) });
      if (type === "tree" && !children.has(path)) children.set(path, []);
    }
    for (const list of children.values())
      list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const info = boundedCommit({
      sha,
      author,
      message: message.trimEnd(),
      time: new Date(time).toISOString(),
    });
    return new SshSnapshot(gitdir, revision, info, entries, children);
  }

  /** Entries directly under `path`. */
  async readDir(path: string): Promise<TreeEntry[]> {
    const clean = normalize(path);
    const list = this.children.get(clean);
    if (!list) throw this.error(clean, this.entries.has(clean) ? "not a directory" : "no such directory");
    return list.map((e) => ({ ...e }));
  }

  /** A blob's bytes, or a symlink's target. */
  async readBlob(path: string, options?: ReadBlobOptions): Promise<Uint8Array> {
    const clean = normalize(path);
    const entry = this.entries.get(clean);
    if (!entry) throw this.error(clean, "no such file");
    if (entry.type === "tree") throw this.error(clean, "is a directory, not a file");
    if (entry.type === "submodule") throw this.error(clean, "is a submodule, which berth does not follow");
    // Known from the listing, so a file over a limit is refused without reading it.
    checkSize(clean, entry.size, options);
    if (entry.size !== undefined && entry.size > MAX_BLOB_BYTES)
      throw this.error(
        clean,
        `the file is ${entry.size} bytes, over the limit of ${MAX_BLOB_BYTES} for one file`,
      );
    const out = await runGit(["--git-dir", this.gitdir, "cat-file", "blob", entry.oid], { subject: clean });
    return withinLimit(clean, new Uint8Array(out.stdout), options);
  }

  /** The entry at `path`, or undefined. */
  async stat(path: string): Promise<TreeEntry | undefined> {
    const clean = normalize(path);
    if (clean === "") return { name: "", path: "", type: "tree" };
    const entry = this.entries.get(clean);
    return entry ? { name: entry.name, path: entry.path, type: entry.type } : undefined;
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
