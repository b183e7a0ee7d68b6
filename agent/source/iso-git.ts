/**
 * The one file that binds isomorphic-git: the few repository operations berth makes on its bare cache, with
 * the file system each needs (atomic writes for the cache, plain reads for snapshots). Everything else in
 * source/ works through these, so swapping the library means changing this file.
 */
import * as fs from "node:fs";
import { join } from "node:path";
import git, { type HttpClient, type PromiseFsClient, type ServerRef } from "isomorphic-git";
import { atomicFs } from "./atomic-fs.ts";
import { rememberedUntilFailure } from "./lock.ts";
import { ENTRY_HEADER_BYTES, looseSize, offsetInIndex, packedSize } from "./object-size.ts";
import { checkPack, type PackLimits } from "./pack-check.ts";
import { readRetired } from "./retired-packs.ts";

export type { HttpClient, ServerRef };

/**
 * What one snapshot reads its trees and blobs through: isomorphic-git's cache of parsed pack indexes, and a
 * read-only file system that remembers what a snapshot's reads ask of the object store again and again. Each
 * read of a packed object asked it for the repository directory's type, the pack directory's listing and a
 * loose copy of the object (none: fetches store packs), five calls in all, and 1,000 small blobs took 0.1–0.4 s
 * that way. One per snapshot, freed with it.
 */
export interface SnapshotReader {
  gitdir: string;
  cache: Record<string, unknown>;
  fs: PromiseFsClient;
  /** The pack indexes and their packs, loaded by the first blobSize. */
  indexes?: Promise<Array<{ idx: Uint8Array; pack: string }>>;
}

/** A reader of the bare cache at `gitdir`, for one snapshot (its commit already fetched). */
export function snapshotReader(gitdir: string): SnapshotReader {
  return { gitdir, cache: {}, fs: readOnlyFs(gitdir) };
}

/**
 * node:fs/promises with the answers a snapshot's lifetime cannot change remembered: the repository directory's
 * type; the pack directory's listing (packs are only ever added, and the snapshot's objects were all in place
 * when it opened); and which loose-object directories exist, so a packed object's loose copy is not looked for
 * where none can be. Writes are refused: snapshots only read.
 */
function readOnlyFs(gitdir: string): PromiseFsClient {
  const objects = join(gitdir, "objects");
  const packs = join(objects, "pack");
  const remembered = new Map<string, Promise<unknown>>();
  const once = <T>(key: string, make: () => Promise<T>): Promise<T> =>
    rememberedUntilFailure(remembered, key, make) as Promise<T>;
  const fanOut = () => once("fan-out", async () => new Set(await fs.promises.readdir(objects)));
  const readOnly = (path: string) =>
    Promise.reject(Object.assign(new Error(`read-only: ${path}`), { code: "EROFS" }));
  const promises = {
    // isomorphic-git calls readFile() without a path to tell a promise API from a callback one.
    readFile: async (path?: string, options?: unknown) => {
      if (path === undefined) throw new TypeError("no path");
      const dir = path.startsWith(objects)
        ? /^\/([0-9a-f]{2})\/[0-9a-f]{38}$/.exec(path.slice(objects.length))
        : null;
      if (dir && !(await fanOut()).has(dir[1] as string)) {
        throw Object.assign(new Error(`no such file: ${path}`), { code: "ENOENT" });
      }
      // Pack indexes are read once, by blobSize and isomorphic-git alike (small: 28 bytes an object). Not packs:
      // isomorphic-git keeps its own copy of each it reads from, and blobSize reads only an entry's header.
      if (path.startsWith(packs) && path.endsWith(".idx") && !hasEncoding(options))
        return once(`file:${path}`, () => fs.promises.readFile(path));
      return fs.promises.readFile(path, options as undefined);
    },
    stat: (path: string) =>
      path === gitdir ? once("stat", () => fs.promises.stat(path)) : fs.promises.stat(path),
    lstat: (path: string) => fs.promises.lstat(path),
    readdir: (path: string) =>
      path === packs ? once("packs", () => listPacks(gitdir)) : fs.promises.readdir(path),
    readlink: (path: string) => fs.promises.readlink(path),
    writeFile: readOnly,
    mkdir: readOnly,
    rmdir: readOnly,
    unlink: readOnly,
    symlink: readOnly,
  };
  return { promises };
}

/** The pack directory's listing without the packs a fold retired (retired-packs.ts). */
async function listPacks(gitdir: string): Promise<string[]> {
  const [names, retired] = await Promise.all([
    fs.promises.readdir(join(gitdir, "objects", "pack")),
    readRetired(gitdir),
  ]);
  if (retired.size === 0) return names;
  const gone = new Set([...retired.keys()].map((name) => name.slice(0, -".pack".length)));
  return names.filter((name) => !gone.has(name.replace(/\.(idx|pack)$/, "")));
}

function hasEncoding(options: unknown): boolean {
  return typeof options === "string" || Boolean((options as { encoding?: unknown } | undefined)?.encoding);
}

/**
 * An object's size (a blob's or a tree's) without inflating it (see object-size.ts), or undefined when it cannot be
 * told that way (then the caller reads it and checks the bytes).
 */
export async function objectSize(reader: SnapshotReader, oid: string): Promise<number | undefined> {
  reader.indexes ??= loadIndexes(reader);
  // One await a blob, then plain lookups: a render asks this for every file it reads.
  for (const { idx, pack } of await reader.indexes) {
    const offset = offsetInIndex(idx, oid);
    if (offset === undefined) continue;
    try {
      return packedSize(readAt(pack, offset), 0); // read synchronously: the window is free again right after
    } catch {
      return undefined; // unreadable here: the blob is then read and its bytes checked
    }
  }
  try {
    const file = await reader.fs.promises.readFile(
      join(reader.gitdir, "objects", oid.slice(0, 2), oid.slice(2)),
    );
    return looseSize(file as Uint8Array);
  } catch {
    return undefined;
  }
}

async function loadIndexes({ gitdir, fs: readerFs }: SnapshotReader) {
  const packs = join(gitdir, "objects", "pack");
  let names: string[] = [];
  try {
    names = (await readerFs.promises.readdir(packs)) as string[];
  } catch {
    // No pack directory: objects can only be loose.
  }
  const loaded = await Promise.all(
    names
      .filter((name) => name.endsWith(".idx"))
      .map(async (name) => ({
        // An index that cannot be read only leaves its objects' sizes unknown (they are then read and checked).
        idx: (await readerFs.promises.readFile(join(packs, name)).catch(() => undefined)) as
          | Uint8Array
          | undefined,
        pack: join(packs, `${name.slice(0, -".idx".length)}.pack`),
      })),
  );
  return loaded.flatMap(({ idx, pack }) => (idx ? [{ idx, pack }] : []));
}

/** One buffer for every header read (each is used up before the next): a render reads a header per file. */
const HEADER_WINDOW = new Uint8Array(ENTRY_HEADER_BYTES);

/**
 * The bytes of `path` from `offset` that a pack entry's header can need. Read synchronously: one small read of a
 * file the page cache holds, a few microseconds, where an asynchronous open, read and close cost a thread-pool
 * round trip each, for every file a render reads.
 */
function readAt(path: string, offset: number): Uint8Array {
  const fd = fs.openSync(path, "r");
  try {
    return HEADER_WINDOW.subarray(0, fs.readSync(fd, HEADER_WINDOW, 0, HEADER_WINDOW.byteLength, offset));
  } finally {
    fs.closeSync(fd);
  }
}

/** What a fetch into the cache needs: the server, which ref, how deep, and headers (auth). */
export interface FetchArgs {
  http: HttpClient;
  gitdir: string;
  url: string;
  /** The local ref the server is told we have (the tracking ref), or the SHA asked for. */
  ref: string;
  remoteRef: string;
  singleBranch: boolean;
  tags: boolean;
  depth?: number;
  headers: Record<string, string>;
  /** What the pack may hold; checked before isomorphic-git indexes it (see pack-check.ts). */
  limits: PackLimits;
  /** Names the repository in a refusal. */
  subject: string;
}

/** Fetches `remoteRef` into the bare cache, writing every file atomically; a pack over a limit is not written. */
export function fetchInto({ limits, subject, ...args }: FetchArgs): Promise<unknown> {
  return git.fetch({ fs: packCheckingFs(limits, subject), ...args });
}

/**
 * atomicFs, with every pack checked against `limits` before it is written: isomorphic-git writes the downloaded
 * pack, then indexes it (inflating each object), so a refusal here leaves the cache as it was.
 */
function packCheckingFs(limits: PackLimits, subject: string): typeof atomicFs {
  // isomorphic-git writes again after a failed write (having made the directory): the verdict is remembered.
  const refused = new WeakMap<object, unknown>();
  const writeFile: typeof atomicFs.promises.writeFile = async (path, data, options) => {
    if (typeof data !== "string" && /\/objects\/pack\/pack-[0-9a-f]+\.pack$/.test(path)) {
      const earlier = refused.get(data);
      if (earlier) throw earlier;
      try {
        checkPack(data, limits, subject);
      } catch (err) {
        refused.set(data, err);
        throw err;
      }
    }
    return atomicFs.promises.writeFile(path, data, options);
  };
  return { promises: { ...atomicFs.promises, writeFile } };
}

/** The server's refs (protocol v1: every ref, tags peeled, in the single GET of the advertisement). */
export function listServerRefs(
  http: HttpClient,
  url: string,
  headers: Record<string, string>,
): Promise<ServerRef[]> {
  return git.listServerRefs({ http, url, protocolVersion: 1, peelTags: true, headers });
}

/** Whether the cache at `gitdir` was fully initialised (its fetch refspec is the last thing written). */
export async function hasFetchConfig(gitdir: string): Promise<boolean> {
  return Boolean(await git.getConfig({ fs: atomicFs, gitdir, path: "remote.origin.fetch" }));
}

/** Initialises a bare cache whose fetches of `url` land in refs/remotes/origin/*. */
export async function initCache(gitdir: string, url: string): Promise<void> {
  await git.init({ fs: atomicFs, gitdir, bare: true, defaultBranch: "main" });
  await git.setConfig({ fs: atomicFs, gitdir, path: "remote.origin.url", value: url });
  await git.setConfig({
    fs: atomicFs,
    gitdir,
    path: "remote.origin.fetch",
    value: "+refs/heads/*:refs/remotes/origin/*",
  });
}

/** The commit a local ref points at (throws when there is none). */
export function resolveLocalRef(gitdir: string, ref: string): Promise<string> {
  return git.resolveRef({ fs: atomicFs, gitdir, ref });
}

/** A commit of the cache (throws when it is not there). */
export async function readCommit({ gitdir, cache, fs }: SnapshotReader, oid: string) {
  return (await git.readCommit({ fs, gitdir, oid, cache })).commit;
}

/** A tree's entries: name (`path`), mode and object id. */
export async function readTree({ gitdir, cache, fs }: SnapshotReader, oid: string) {
  return (await git.readTree({ fs, gitdir, oid, cache })).tree;
}

/**
 * One pack of `oids` (read through `reader`), written into the cache with its index the way a fetch writes them:
 * the pack first, then its index, each atomically (isomorphic-git lists packs by their index). Its file name.
 */
export async function writePack(reader: SnapshotReader, oids: string[]): Promise<string> {
  const { gitdir, cache, fs } = reader;
  const { filename, packfile } = await git.packObjects({ fs, gitdir, oids, cache });
  if (!packfile) throw new Error("packObjects returned no pack");
  const relative = join("objects", "pack", filename);
  await atomicFs.promises.writeFile(join(gitdir, relative), packfile);
  await git.indexPack({ fs: atomicFs, dir: gitdir, gitdir, filepath: relative });
  return filename;
}

/** The commits the cache's remote-tracking branches point at, by branch. */
export async function trackingTips(gitdir: string): Promise<Map<string, string>> {
  const tips = new Map<string, string>();
  for (const branch of await git.listBranches({ fs: atomicFs, gitdir, remote: "origin" })) {
    if (branch === "HEAD") continue;
    tips.set(branch, await git.resolveRef({ fs: atomicFs, gitdir, ref: `refs/remotes/origin/${branch}` }));
  }
  return tips;
}

/** A blob's bytes. */
export async function readBlob({ gitdir, cache, fs }: SnapshotReader, oid: string): Promise<Uint8Array> {
  return (await git.readBlob({ fs, gitdir, oid, cache })).blob;
}
