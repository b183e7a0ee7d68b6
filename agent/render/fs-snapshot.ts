/** A `Snapshot` over a directory on disk (node:fs only): for tests and `berth validate` on a working tree. */
import type { Dirent } from "node:fs";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { BerthError } from "../object/errors.ts";
import type { CommitInfo } from "../object/object.ts";
import {
  checkSize,
  type ReadBlobOptions,
  type Snapshot,
  type TreeEntry,
  withinLimit,
} from "../object/snapshot.ts";

const NO_COMMIT: CommitInfo = { sha: "", author: "", message: "", time: "" };

/** A directory read as a repository tree: symlinks are reported (lstat), never followed; directories holding a `.git` entry below the root are submodules. */
export class FsSnapshot implements Snapshot {
  readonly revision: string;
  readonly commit: CommitInfo;
  readonly rootDir: string;

  constructor(rootDir: string, commit: CommitInfo = NO_COMMIT, revision?: string) {
    this.rootDir = rootDir;
    this.commit = commit;
    this.revision = revision ?? (commit.sha === "" ? "local" : `sha1:${commit.sha}`);
  }

  /** Entries directly under `path`, sorted by name. */
  async readDir(path: string): Promise<TreeEntry[]> {
    const entry = await this.stat(path);
    if (entry?.type !== "tree")
      throw notFound(path, entry === undefined ? "no such directory" : "not a directory");
    const dirents = await readdir(await this.osPath(path), { withFileTypes: true });
    const out: TreeEntry[] = [];
    for (const dirent of dirents) {
      const child = path === "" ? dirent.name : `${path}/${dirent.name}`;
      const type = await this.typeOf(dirent, child);
      if (type !== undefined) out.push({ name: dirent.name, path: child, type });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** A file's bytes, or a symlink's target text. */
  async readBlob(path: string, options?: ReadBlobOptions): Promise<Uint8Array> {
    const entry = await this.stat(path);
    if (entry === undefined) throw notFound(path, "no such file");
    const os = await this.osPath(path);
    if (entry.type === "symlink") return new TextEncoder().encode(await readlink(os));
    if (entry.type !== "blob") throw notFound(path, `not a file (${entry.type})`);
    if (options?.maxBytes !== undefined) checkSize(path, (await lstat(os)).size, options);
    return withinLimit(path, new Uint8Array(await readFile(os)), options);
  }

  /** The entry at `path` (lstat: symlinks are not followed), or undefined. */
  async stat(path: string): Promise<TreeEntry | undefined> {
    const parts = splitPath(path);
    if (parts === undefined) return undefined;
    // Like a Git tree lookup, never pass through a symlinked directory on the way.
    let os = this.rootDir;
    let type: TreeEntry["type"] = "tree";
    for (const part of parts) {
      if (type !== "tree") return undefined;
      os = join(os, part);
      try {
        const st = await lstat(os);
        if (st.isSymbolicLink()) type = "symlink";
        else if (st.isDirectory()) type = (await isSubmodule(os)) ? "submodule" : "tree";
        else if (st.isFile()) type = "blob";
        else return undefined;
      } catch {
        return undefined;
      }
    }
    return { name: parts.at(-1) ?? "", path, type };
  }

  private async osPath(path: string): Promise<string> {
    const parts = splitPath(path);
    if (parts === undefined) throw notFound(path, "not a repository path");
    return join(this.rootDir, ...parts);
  }

  private async typeOf(dirent: Dirent, path: string): Promise<TreeEntry["type"] | undefined> {
    if (dirent.isSymbolicLink()) return "symlink";
    if (dirent.isFile()) return "blob";
    if (dirent.isDirectory()) return (await isSubmodule(join(this.rootDir, path))) ? "submodule" : "tree";
    return undefined;
  }
}

async function isSubmodule(dir: string): Promise<boolean> {
  try {
    await lstat(join(dir, ".git"));
    return true;
  } catch {
    return false;
  }
}

/** "/"-separated relative path → parts; undefined for absolute paths or paths with "." / "..". */
function splitPath(path: string): string[] | undefined {
  if (path === "") return [];
  const parts = path.split("/");
  if (parts.some((p) => p === "" || p === "." || p === "..")) return undefined;
  return parts;
}

function notFound(path: string, why: string): BerthError {
  return new BerthError(why, { subject: path === "" ? "(repository root)" : path });
}
