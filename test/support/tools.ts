/** The render tools (kustomize, helm, sops) built once from the Go module proxy by scripts/tools/build.sh, cached. */
import { execFile } from "node:child_process";
import { join } from "node:path";

let built: Promise<string> | undefined;

/** The directory holding kustomize, helm and sops (builds them the first time: minutes cold, 0 s cached). */
export function toolsDir(): Promise<string> {
  built ??= new Promise((resolve, reject) => {
    // Async: a sync spawn would block an in-process Git server of the same test.
    execFile(
      "bash",
      [join(import.meta.dir, "../../scripts/tools/build.sh")],
      { maxBuffer: 1 << 20 },
      (err, stdout) => {
        if (err) reject(err);
        else resolve(stdout.trim().split("\n").at(-1) ?? "");
      },
    );
  });
  return built;
}

/** Paths of the three tools, as berth's render settings take them. */
export async function toolPaths(): Promise<{ kustomize: string; helm: string; sops: string }> {
  const dir = await toolsDir();
  return { kustomize: join(dir, "kustomize"), helm: join(dir, "helm"), sops: join(dir, "sops") };
}
