/** The render tools (kustomize, helm, sops) built once from the Go module proxy by scripts/tools/build.sh, cached. */
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
