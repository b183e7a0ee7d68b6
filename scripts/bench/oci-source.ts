import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OciSource } from "../../agent/source/oci-source.ts";
import { OciRegistryFixture } from "../../test/support/helm-repo.ts";
import { orasPush } from "../../test/support/oras.ts";
import { figurePrinter, median } from "./flags.ts";

const print = figurePrinter("oci-source");

const RUNS = 7;
const FILES = 500;
const auth = { username: "bench", password: "bench-pw" };
const registry = await OciRegistryFixture.start(auth);
const work = mkdtempSync(join(tmpdir(), "berth-bench-oci-"));
try {
  const files: Record<string, string> = {};
  for (let i = 0; i < FILES; i++)
    files[`apps/app-${i % 20}/cm-${i}.yaml`] =
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\n  namespace: app-${i % 20}\ndata:\n${Array.from({ length: 20 }, (_, k) => `  key${k}: "value ${i}-${k} ${"x".repeat(20)}"`).join("\n")}\n`;
  await orasPush(registry, "bench/manifests:v1", { files }, "flux");
  const ca = readFileSync(registry.caFile, "utf8");
  const source = (cacheDir: string) =>
    new OciSource({
      url: `oci://${registry.host}/bench/manifests`,
      tag: "v1",
      cacheDir,
      credentials: () => auth,
      ca,
      retries: 0,
    });
  const time = async (f: () => Promise<unknown>) => {
    const t0 = performance.now();
    await f();
    return performance.now() - t0;
  };
  const cold: number[] = [];
  const warm: number[] = [];
  const poll: number[] = [];
  let warmRequests = 0;
  for (let i = 0; i < RUNS; i++) {
    const cacheDir = join(work, `cache-${i}`);
    cold.push(
      await time(async () => {
        const s = source(cacheDir);
        await s.snapshot(await s.resolve());
      }),
    );
    const mark = registry.requests.length;
    warm.push(
      await time(async () => {
        const s = source(cacheDir);
        const snap = await s.snapshot(await s.resolve());
        await snap.readBlob("apps/app-0/cm-0.yaml");
      }),
    );
    const s = source(cacheDir);
    await s.resolve();
    poll.push(await time(() => s.resolve()));
    await new Promise((r) => setTimeout(r, 200));
    warmRequests += registry.requests.slice(mark).filter((q) => q.method === "GET").length;
    rmSync(cacheDir, { recursive: true, force: true });
  }
  if (warmRequests !== 0)
    throw new Error(`warm runs and polls made ${warmRequests} GET requests; expected none`);
  print("cold_pull_ms", median(cold), "ms");
  print("warm_pull_ms", median(warm), "ms");
  print("idle_poll_ms", median(poll), "ms");
  print("files", FILES, "files");
} finally {
  await registry.close();
  rmSync(work, { recursive: true, force: true });
}
