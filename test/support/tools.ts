/** The render tools (kustomize, helm, sops) built once from the Go module proxy by scripts/tools/build.sh, cached. */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { goBuild } from "./go-build.ts";

/** The directory holding kustomize, helm and sops (builds them the first time: minutes cold, 0 s cached). */
export function toolsDir(): Promise<string> {
  return goBuild("tools");
}

/** Paths of the three tools, as berth's render settings take them. */
export async function toolPaths(): Promise<{ kustomize: string; helm: string; sops: string }> {
  const dir = await toolsDir();
  return { kustomize: join(dir, "kustomize"), helm: join(dir, "helm"), sops: join(dir, "sops") };
}

/** A fresh home for helm (cache, config and data inside it), so runs never share or read ~/.config/helm. */
export function helmHome(prefix: string): { home: string; env: Record<string, string> } {
  const home = mkdtempSync(join(tmpdir(), prefix));
  return {
    home,
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: home,
      HELM_CACHE_HOME: join(home, "cache"),
      HELM_CONFIG_HOME: join(home, "config"),
      HELM_DATA_HOME: join(home, "data"),
    },
  };
}
