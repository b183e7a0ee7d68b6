import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AppRenderSpec, type RenderEnvironment, renderApp } from "../../agent/render/app.ts";
import { FsSnapshot } from "../../agent/render/fs-snapshot.ts";
import { HelmRepoFixture } from "../../test/support/helm-repo.ts";
import { toolPaths } from "../../test/support/tools.ts";
import { figurePrinter, median } from "./flags.ts";

const print = figurePrinter("helm-remote");

const RUNS = 7;
const repo = await HelmRepoFixture.start({ username: "bench", password: "bench-pw" });
const work = mkdtempSync(join(tmpdir(), "berth-bench-helmremote-"));
try {
  repo.publish("demo", "1.0.0");
  repo.publish("demo", "1.1.0");
  writeFileSync(join(work, "password"), "bench-pw\n");
  const tools = { paths: await toolPaths() };
  const snapshot = new FsSnapshot(work);
  const app: AppRenderSpec = {
    name: "demo",
    path: "",
    helm: {
      chart: "demo",
      repo: repo.url,
      version: "1.x",
      auth: { username: "bench", passwordFile: join(work, "password") },
      caFile: repo.caFile,
    },
  };
  const once = async (env: RenderEnvironment): Promise<number> => {
    const t0 = performance.now();
    const r = await renderApp(snapshot, app, env);
    if (r.errors.length > 0) throw new Error(JSON.stringify(r.errors));
    return performance.now() - t0;
  };
  const cold: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const chartCache = join(work, `cache-${i}`);
    cold.push(await once({ tools, chartCache }));
    warm.push(await once({ tools, chartCache }));
    rmSync(chartCache, { recursive: true, force: true });
  }
  const downloads = repo.requests.filter((q) => q.path.endsWith(".tgz")).length;
  if (downloads !== RUNS)
    throw new Error(`expected ${RUNS} archive downloads (cold runs only), saw ${downloads}`);
  print("cold_render_ms", median(cold), "ms");
  print("warm_render_ms", median(warm), "ms");
} finally {
  await repo.close();
  rmSync(work, { recursive: true, force: true });
}
