/** Kustomize: an app path holding a kustomization file is built by the `kustomize` binary from a private copy of the repository. */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { BerthError } from "../object/errors.ts";
import type { Snapshot } from "../object/snapshot.ts";
import { requireTool, runTool, type ToolSettings } from "./tools.ts";

/** File names kustomize accepts as a kustomization, in its own order of preference. */
export const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/** An app's kustomize settings. */
export interface KustomizeOptions {
  /** Let kustomizations name remote bases (URLs); default false: they are refused before the tool runs. */
  allowRemoteBases?: boolean;
}

/** True if the app path holds a kustomization file. */
export async function isKustomization(snapshot: Snapshot, appPath: string): Promise<boolean> {
  for (const name of KUSTOMIZATION_FILES) {
    const entry = await snapshot.stat(appPath === "" ? name : `${appPath}/${name}`);
    if (entry && entry.type !== "tree") return true;
  }
  return false;
}

/** `kustomize build` of `appPath` inside the materialised repository `root`; returns the YAML it printed. */
export async function kustomizeBuild(
  root: string,
  appPath: string,
  options: KustomizeOptions,
  tools: ToolSettings,
): Promise<string> {
  const binary = requireTool("kustomize", tools);
  if (!options.allowRemoteBases) await refuseRemoteBases(root);
  const args = ["build", "--load-restrictor", "LoadRestrictionsRootOnly", appPath === "" ? "." : appPath];
  const label = `kustomize build ${appPath === "" ? "." : appPath}`;
  const env: Record<string, string> = {};
  // Without remote bases the tool needs no network; pointing proxies nowhere makes any attempt fail fast.
  if (!options.allowRemoteBases)
    Object.assign(env, { HTTPS_PROXY: "http://127.0.0.1:9", HTTP_PROXY: "http://127.0.0.1:9", NO_PROXY: "" });
  const out = await runTool(binary, args, {
    cwd: root,
    env,
    label,
    ...(tools.timeoutMs !== undefined ? { timeoutMs: tools.timeoutMs } : {}),
    ...(tools.maxOutputBytes !== undefined ? { maxOutputBytes: tools.maxOutputBytes } : {}),
  });
  return out.stdout;
}

// kustomize's remote forms: scheme URLs, scp-like git@host:path, and host/path shorthands like github.com/org/repo.
const REMOTE = /^([a-z][a-z0-9+.-]*:\/\/|[^/\s]+@[^/\s]+:|(github|gitlab|bitbucket)\.(com|org)\/)/i;

/** True for a kustomization entry that names a remote base or file. */
export function isRemoteReference(entry: string): boolean {
  return REMOTE.test(entry.trim());
}

/** Refuses every kustomization in the tree that names a URL under resources, components or bases. */
async function refuseRemoteBases(root: string): Promise<void> {
  const stack = [""];
  while (stack.length > 0) {
    const rel = stack.pop() as string;
    for (const dirent of await readdir(join(root, rel), { withFileTypes: true })) {
      const path = rel === "" ? dirent.name : `${rel}/${dirent.name}`;
      if (dirent.isDirectory()) {
        if (dirent.name !== ".git") stack.push(path);
        continue;
      }
      if (!KUSTOMIZATION_FILES.includes(dirent.name) || !dirent.isFile()) continue;
      const text = await readFile(join(root, path), "utf8");
      for (const doc of parseAllDocuments(text)) {
        const data = doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown> | null;
        if (data === null || typeof data !== "object") continue;
        for (const field of ["resources", "components", "bases"]) {
          const list = data[field];
          if (!Array.isArray(list)) continue;
          for (const item of list) {
            if (typeof item === "string" && isRemoteReference(item)) {
              throw new BerthError(
                `${field} names the remote base ${JSON.stringify(item)}; remote bases are refused unless the app sets kustomize.allowRemoteBases`,
                { subject: path, reason: "BuildFailed" },
              );
            }
          }
        }
      }
    }
  }
}
