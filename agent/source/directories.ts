/**
 * The directories of a snapshot read from a Git object store (git-snapshot.ts over isomorphic-git,
 * ssh-snapshot.ts over the system git): each listed once, when first read, and kept; files are looked up by name,
 * since a render reads every file of a directory (a scan per file made that quadratic: scripts/bench/README.md,
 * "Wide directories").
 */
import { BerthError } from "../object/errors.ts";
import type { TreeEntry } from "../object/snapshot.ts";
import { rememberedUntilFailure } from "./lock.ts";

/** A tree entry with the id of the object it names. */
export interface GitEntry extends TreeEntry {
  oid: string;
}

/** A path that is no directory of the snapshot (missing, or a file): nothing below it exists. */
export class NotADirectoryError extends BerthError {}

interface Listing<E> {
  entries: E[];
  byName: Map<string, E>;
}

/** Lists one directory, its entry in its parent given (undefined for the root), in the order readDir returns. */
export type ListDirectory<E> = (dir: string, entry: E | undefined) => Promise<E[]>;

/** A snapshot's directories, listed when first read. */
export class Directories<E extends GitEntry> {
  private readonly listed = new Map<string, Promise<Listing<E>>>();

  /** `wording` says a path is missing or a file as the snapshot words its errors: the message and subject. */
  constructor(
    private readonly list: ListDirectory<E>,
    private readonly wording: (
      dir: string,
      why: "no such directory" | "not a directory",
    ) => {
      message: string;
      subject: string;
    },
  ) {}

  /** The entries of `dir` (normalised; "" is the root). */
  async entries(dir: string): Promise<E[]> {
    return (await this.listing(dir)).entries;
  }

  /** The entry at `path` (normalised, not the root), or undefined when it or a directory above it is missing. */
  async find(path: string): Promise<E | undefined> {
    const slash = path.lastIndexOf("/");
    let siblings: Listing<E>;
    try {
      siblings = await this.listing(slash === -1 ? "" : path.slice(0, slash));
    } catch (err) {
      // Any other failure (a limit, a read error) is reported, never read as "no such file".
      if (err instanceof NotADirectoryError) return undefined;
      throw err;
    }
    return siblings.byName.get(path.slice(slash + 1));
  }

  private listing(dir: string): Promise<Listing<E>> {
    return rememberedUntilFailure(this.listed, dir, () => this.load(dir));
  }

  private async load(dir: string): Promise<Listing<E>> {
    let entry: E | undefined;
    if (dir !== "") {
      entry = await this.find(dir);
      if (entry?.type !== "tree") {
        const { message, subject } = this.wording(dir, entry ? "not a directory" : "no such directory");
        throw new NotADirectoryError(message, { subject });
      }
    }
    const entries = await this.list(dir, entry);
    return { entries, byName: new Map(entries.map((e) => [e.name, e])) };
  }
}

/** What readDir shows of an entry: a blob's object id, nothing else of the object store. */
export function publicEntry(e: GitEntry): TreeEntry {
  return { name: e.name, path: e.path, type: e.type, ...(e.type === "blob" ? { oid: e.oid } : {}) };
}
