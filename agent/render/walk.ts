/** Lists the manifest files under an app path: recursive, sorted, hidden entries skipped, symlinks followed inside the repository only. */
import type { Snapshot } from "../object/snapshot.ts";
import type { RenderProblem } from "./plain.ts";
import { resolvePath } from "./resolve-path.ts";

/** A manifest file: `path` as seen under the app path (through links), `realPath` where its bytes are. */
export interface ManifestFile {
  path: string;
  realPath: string;
  /** The blob's Git object id, when the snapshot gives one and the file is not reached through a link. */
  oid?: string;
}

/** The files to render, plus what was skipped or wrong on the way. */
export interface WalkResult {
  files: ManifestFile[];
  skipped: RenderProblem[];
  errors: RenderProblem[];
}

/** Tree entries one walk may visit, so symlink fan-out cannot explode. */
export const MAX_WALK_ENTRIES = 100_000;

const MANIFEST = /\.(ya?ml|json)$/i;

/** True for *.yaml, *.yml and *.json. */
export function isManifestName(name: string): boolean {
  return MANIFEST.test(name);
}

/** Walks `appPath`; it must exist (links allowed) and be a directory. */
export async function walkManifests(snapshot: Snapshot, appPath: string): Promise<WalkResult> {
  const result: WalkResult = { files: [], skipped: [], errors: [] };
  const path = appPath
    .split("/")
    .filter((p) => p !== "" && p !== ".")
    .join("/");
  const shown = path === "" ? "(repository root)" : path;
  if (appPath.startsWith("/") || path.split("/").includes("..")) {
    result.errors.push({ path: shown, message: "app path must be relative and stay inside the repository" });
    return result;
  }
  const root = await resolvePath(snapshot, path);
  if (!root.ok) {
    const message =
      root.kind === "missing" ? "app path does not exist" : `app path cannot be used: ${root.message}`;
    result.errors.push({ path: shown, message });
    return result;
  }
  if (root.entry.type !== "tree") {
    result.errors.push({ path: shown, message: `app path is not a directory (it is a ${root.entry.type})` });
    return result;
  }
  const budget = { entries: MAX_WALK_ENTRIES };
  await walkDir(snapshot, path, root.path, new Set([root.path]), result, budget);
  result.files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return result;
}

async function walkDir(
  snapshot: Snapshot,
  logical: string,
  real: string,
  ancestors: ReadonlySet<string>,
  result: WalkResult,
  budget: { entries: number },
): Promise<void> {
  for (const entry of await snapshot.readDir(real)) {
    if (entry.name.startsWith(".")) continue;
    budget.entries -= 1;
    if (budget.entries < 0) {
      if (budget.entries === -1)
        result.errors.push({ path: logical, message: `more than ${MAX_WALK_ENTRIES} entries` });
      return;
    }
    const path = logical === "" ? entry.name : `${logical}/${entry.name}`;
    if (entry.type === "tree") {
      await walkDir(snapshot, path, entry.path, new Set([...ancestors, entry.path]), result, budget);
    } else if (entry.type === "blob") {
      if (isManifestName(entry.name))
        result.files.push({ path, realPath: entry.path, ...(entry.oid ? { oid: entry.oid } : {}) });
    } else if (entry.type === "submodule") {
      result.skipped.push({ path, message: "a submodule: berth does not fetch submodules" });
    } else {
      await followLink(snapshot, path, entry.path, entry.name, ancestors, result, budget);
    }
  }
}

async function followLink(
  snapshot: Snapshot,
  path: string,
  linkPath: string,
  name: string,
  ancestors: ReadonlySet<string>,
  result: WalkResult,
  budget: { entries: number },
): Promise<void> {
  const target = JSON.stringify(new TextDecoder().decode(await snapshot.readBlob(linkPath)));
  const resolved = await resolvePath(snapshot, linkPath);
  if (!resolved.ok) {
    switch (resolved.kind) {
      case "absolute":
        result.errors.push({
          path,
          message: `symlink target ${target} is absolute; only links inside the repository are followed`,
        });
        return;
      case "escape":
        result.errors.push({ path, message: `symlink target ${target} leaves the repository` });
        return;
      case "loop":
        result.errors.push({ path, message: `symlink target ${target}: ${resolved.message}` });
        return;
      default:
        if (isManifestName(name))
          result.errors.push({ path, message: `symlink target ${target}: ${resolved.message}` });
        else result.skipped.push({ path, message: `dangling symlink: ${resolved.message}` });
        return;
    }
  }
  const { entry } = resolved;
  if (entry.type === "tree") {
    if (ancestors.has(resolved.path)) {
      result.errors.push({
        path,
        message: `symlink target ${target} is a directory that contains the link (a loop)`,
      });
      return;
    }
    await walkDir(snapshot, path, resolved.path, new Set([...ancestors, resolved.path]), result, budget);
  } else if (entry.type === "blob") {
    if (isManifestName(name)) result.files.push({ path, realPath: resolved.path });
  } else if (entry.type === "submodule") {
    result.skipped.push({ path, message: "links to a submodule: berth does not fetch submodules" });
  }
}
