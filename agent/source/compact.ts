/**
 * Folding a Git cache's packs into one. Every fetch of a new commit adds a pack, and isomorphic-git looks an
 * object up pack by pack, loading each pack's index once per snapshot: after a few hundred commits a snapshot
 * loaded hundreds of indexes, and an agent following a busy branch for months would load thousands per commit.
 * So when the packs pass MAX_PACKS, the objects of what the cache follows (each remote-tracking branch's commit
 * and its whole tree, as a depth-1 fetch leaves them) are written into one pack, those commits are recorded as
 * the shallow boundary, and the older packs are retired. History is dropped, as a depth-1 fetch never had it; a
 * pinned commit no longer there is fetched again when asked for.
 *
 * A snapshot opened before the fold may still read the retired packs, so they are deleted only at a fold or
 * fetch RETIRED_GRACE_MS later. Callers hold the cache's lock (one fetch or fold at a time).
 */
import { rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { atomicFs } from "./atomic-fs.ts";
import { MAX_TREE_BYTES } from "./git-snapshot.ts";
import { objectSize, readCommit, readTree, snapshotReader, trackingTips, writePack } from "./iso-git.ts";
import { readRetired, writeRetired } from "./retired-packs.ts";

/** Packs a cache may have before they are folded (each commit fetched adds one). */
export const MAX_PACKS = 32;
/**
 * The most pack bytes a fold reads: it holds each pack it reads from and the pack it writes in memory. A cache
 * bigger than that (a repository of large files) is left unfolded, slower to read but not a risk to memory.
 */
export const MAX_FOLD_BYTES = 256 * 1024 * 1024;
/** How long a retired pack stays for snapshots opened before the fold. */
export const RETIRED_GRACE_MS = 10 * 60_000;

export interface CompactOptions {
  /** Commits to keep besides the branches' (the one being opened, which may be pinned rather than a tip). */
  keep?: string[];
  maxPacks?: number;
  /** Pack bytes past which the cache is left unfolded (default MAX_FOLD_BYTES). */
  maxBytes?: number;
  graceMs?: number;
  now?: number;
}

/** What a fold did. */
export interface Compacted {
  /** The new pack's file name. */
  pack: string;
  /** Packs retired by it. */
  retired: number;
  /** Objects in the new pack. */
  objects: number;
}

/** Deletes packs retired long enough ago, then folds the packs if there are more than maxPacks. */
export async function compactCache(
  gitdir: string,
  options: CompactOptions = {},
): Promise<Compacted | undefined> {
  const now = options.now ?? Date.now();
  const retired = await deleteRetired(gitdir, now - (options.graceMs ?? RETIRED_GRACE_MS));
  const live = (await packNames(gitdir)).filter((name) => !retired.has(name));
  if (live.length <= (options.maxPacks ?? MAX_PACKS)) return undefined;
  const packDir = join(gitdir, "objects", "pack");
  let bytes = 0;
  for (const name of live) bytes += (await stat(join(packDir, name))).size;
  if (bytes > (options.maxBytes ?? MAX_FOLD_BYTES)) return undefined;
  const tips = [...new Set([...(await trackingTips(gitdir)).values(), ...(options.keep ?? [])])];
  const reader = snapshotReader(gitdir);
  const oids = new Set<string>();
  const kept: string[] = [];
  for (const tip of tips) {
    let commit: Awaited<ReturnType<typeof readCommit>>;
    try {
      commit = await readCommit(reader, tip);
    } catch {
      continue; // a branch whose last fetch failed after its ref moved: fetched again when it is asked for
    }
    kept.push(tip);
    oids.add(tip);
    // A tree no snapshot would parse (git-snapshot.ts) is not parsed here either: that cache stays unfolded.
    if (!(await addTree(reader, commit.tree, oids))) return undefined;
  }
  // Nothing to keep would leave an empty cache; the next depth-1 fetch starts it again anyway.
  if (kept.length === 0) return undefined;
  const pack = await writePack(reader, [...oids]);
  // The kept commits' parents are gone with the old packs: they are the shallow boundary now.
  await atomicFs.promises.writeFile(join(gitdir, "shallow"), `${kept.sort().join("\n")}\n`);
  for (const name of live) if (name !== pack) retired.set(name, now);
  // The same objects make the same pack: one retired by an earlier fold may be live again.
  retired.delete(pack);
  await writeRetired(gitdir, retired);
  return { pack, retired: live.filter((name) => name !== pack).length, objects: oids.size };
}

/** Adds the tree `oid` and everything under it to `into`; false if a tree in it is over MAX_TREE_BYTES. */
async function addTree(
  reader: ReturnType<typeof snapshotReader>,
  oid: string,
  into: Set<string>,
): Promise<boolean> {
  if (into.has(oid)) return true;
  if (((await objectSize(reader, oid)) ?? 0) > MAX_TREE_BYTES) return false;
  into.add(oid);
  for (const entry of await readTree(reader, oid)) {
    if (entry.type === "tree") {
      if (!(await addTree(reader, entry.oid, into))) return false;
    } else if (entry.type === "blob") into.add(entry.oid); // files and symlinks; a submodule's commit is not here
  }
  return true;
}

/** The cache's pack files that have an index (isomorphic-git uses no other). */
async function packNames(gitdir: string): Promise<string[]> {
  const dir = join(gitdir, "objects", "pack");
  let names: string[];
  try {
    names = await atomicFs.promises.readdir(dir);
  } catch {
    return [];
  }
  const set = new Set(names);
  return names.filter((n) => n.endsWith(".pack") && set.has(`${n.slice(0, -5)}.idx`)).sort();
}

/** Deletes retired packs retired before `before`; the ones still waiting, by name. */
async function deleteRetired(gitdir: string, before: number): Promise<Map<string, number>> {
  const retired = await readRetired(gitdir);
  let changed = false;
  for (const [name, at] of retired) {
    if (at > before) continue;
    const base = join(gitdir, "objects", "pack", name.slice(0, -5));
    // The index first: without it isomorphic-git no longer lists the pack.
    await rm(`${base}.idx`, { force: true });
    await rm(`${base}.pack`, { force: true });
    retired.delete(name);
    changed = true;
  }
  if (changed) await writeRetired(gitdir, retired);
  return retired;
}
