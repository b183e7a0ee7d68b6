/** Resolves a repository path through symlinks without ever leaving the repository. */
import type { Snapshot, TreeEntry } from "../object/snapshot.ts";

/** How many symlinks one resolution may follow before it counts as a loop. */
export const MAX_SYMLINK_HOPS = 40;

/** Where a path really is, or why it cannot be used. */
export type Resolution =
  | { ok: true; path: string; entry: TreeEntry }
  | { ok: false; kind: "escape" | "absolute" | "loop" | "missing" | "notDir"; message: string };

/** Follows every symlink in `path` (targets relative to the link's directory); refuses targets outside the repository. */
export async function resolvePath(snapshot: Snapshot, path: string): Promise<Resolution> {
  const resolved: string[] = [];
  const pending = path.split("/").filter((p) => p !== "");
  let hops = 0;
  let entry: TreeEntry = { name: "", path: "", type: "tree" };
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === ".") continue;
    if (part === "..") {
      if (resolved.length === 0)
        return fail("escape", `${JSON.stringify(path)} leads outside the repository`);
      resolved.pop();
      entry = { name: resolved.at(-1) ?? "", path: resolved.join("/"), type: "tree" };
      continue;
    }
    if (entry.type !== "tree") return fail("notDir", `${JSON.stringify(entry.path)} is not a directory`);
    const candidate = [...resolved, part].join("/");
    const found = await snapshot.stat(candidate);
    if (found === undefined) return fail("missing", `${JSON.stringify(candidate)} does not exist`);
    if (found.type === "symlink") {
      hops += 1;
      if (hops > MAX_SYMLINK_HOPS) return fail("loop", `more than ${MAX_SYMLINK_HOPS} symlinks (a loop?)`);
      const target = new TextDecoder().decode(await snapshot.readBlob(candidate));
      if (target.startsWith("/") || /^[A-Za-z]:[\\/]/.test(target)) {
        return fail(
          "absolute",
          `${JSON.stringify(candidate)} -> ${JSON.stringify(target)} is an absolute target`,
        );
      }
      pending.unshift(...target.split("/").filter((p) => p !== ""));
      continue;
    }
    resolved.push(part);
    entry = found;
  }
  return { ok: true, path: resolved.join("/"), entry };
}

function fail(kind: Exclude<Resolution, { ok: true }>["kind"], message: string): Resolution {
  return { ok: false, kind, message };
}
