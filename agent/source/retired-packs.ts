/**
 * The packs of a Git cache that a fold (compact.ts) replaced, and when: kept on disk a while for snapshots opened
 * before it, but no longer listed to snapshots opened after it (iso-git.ts's reader leaves them out).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { atomicFs } from "./atomic-fs.ts";

/** In the cache directory, not among the packs. */
const RETIRED_FILE = "berth-retired-packs.json";

/** Pack file name (`pack-<sha>.pack`) → when it was retired (ms since the epoch); empty when none or unreadable. */
export async function readRetired(gitdir: string): Promise<Map<string, number>> {
  try {
    const parsed: unknown = JSON.parse(await readFile(join(gitdir, RETIRED_FILE), "utf8"));
    const out = new Map<string, number>();
    if (parsed && typeof parsed === "object")
      for (const [name, at] of Object.entries(parsed))
        if (/^pack-[0-9a-f]{40}\.pack$/.test(name) && typeof at === "number") out.set(name, at);
    return out;
  } catch {
    return new Map();
  }
}

export function writeRetired(gitdir: string, retired: Map<string, number>): Promise<void> {
  return atomicFs.promises.writeFile(join(gitdir, RETIRED_FILE), JSON.stringify(Object.fromEntries(retired)));
}
