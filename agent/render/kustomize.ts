/** Kustomize: an app path holding a kustomization file is built by the `kustomize` binary from a private copy of the repository. */
import { readdir, readFile } from "node:fs/promises";
import { isAbsolute, join, normalize } from "node:path";
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
  if (!options.allowRemoteBases) await refuseRemoteBases(root, appPath);
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
    settings: tools,
  });
  return out.stdout;
}

// kustomize's remote forms: scheme URLs, scp-like git@host:path, and host/path shorthands like github.com/org/repo.
const REMOTE = /^([a-z][a-z0-9+.-]*:\/\/|[^/\s]+@[^/\s]+:|(github|gitlab|bitbucket)\.(com|org)\/)/i;

/** True for a kustomization entry that names a remote base or file. */
export function isRemoteReference(entry: string): boolean {
  return REMOTE.test(entry.trim());
}

/**
 * Refuses a kustomization that names a URL under resources, components or bases — in the app's kustomization and
 * every local one it reaches through them, not elsewhere in the repository: another app's remote base is that
 * app's business.
 */
async function refuseRemoteBases(root: string, appPath: string): Promise<void> {
  const seen = new Set<string>();
  const queue = [appPath === "" ? "." : appPath];
  while (queue.length > 0) {
    const dir = normalize(queue.shift() as string);
    if (seen.has(dir) || dir.startsWith("..") || isAbsolute(dir)) continue;
    seen.add(dir);
    const file = await kustomizationIn(join(root, dir));
    if (!file) continue;
    const path = dir === "." ? file : `${dir}/${file}`;
    const text = await readFile(join(root, path), "utf8");
    for (const doc of parseAllDocuments(text)) {
      const data = doc.toJS({ maxAliasCount: 100 }) as Record<string, unknown> | null;
      if (data === null || typeof data !== "object") continue;
      for (const field of ["resources", "components", "bases"]) {
        const list = data[field];
        if (!Array.isArray(list)) continue;
        for (const item of list) {
          if (typeof item !== "string") continue;
          if (isRemoteReference(item)) {
            throw new BerthError(
              `${field} names the remote base ${JSON.stringify(item)}; remote bases are refused unless the app sets kustomize.allowRemoteBases`,
              { subject: path, reason: "BuildFailed" },
            );
          }
          queue.push(join(dir, item));
        }
      }
    }
  }
}

/** The kustomization file's name in `dir`, if it holds one. */
async function kustomizationIn(dir: string): Promise<string | undefined> {
  try {
    const names = new Set(
      (await readdir(dir, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name),
    );
    return KUSTOMIZATION_FILES.find((f) => names.has(f));
  } catch {
    return undefined; // a file resource, or a path that does not exist: kustomize itself says so
  }
}
