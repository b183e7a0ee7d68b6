/**
 * Benchmark: the HTTP API under load while a 1,000-object sync runs. The compiled binary's `berth run` syncs a
 * generated repository (400 ConfigMaps, 300 Services, 300 Deployments) against a control plane of its own;
 * a load generator on loopback (C concurrent fetch loops per endpoint, bounded by time and request count)
 * hits GET /api/v1/apps and GET /metrics from the moment the API answers until the sync finishes, then for a
 * few seconds while idle. Figures: requests/s and p50/p99 latency per endpoint, and the sync's duration with
 * and without that load. Prints one JSON object per figure.
 *
 *   node_modules/.bin/bun scripts/bench/api.ts [--concurrency C]
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GitFixture } from "../../test/support/git.ts";
import { freePort } from "../../test/support/ports.ts";

const ROOT = join(import.meta.dir, "..", "..");
const flagAt = process.argv.indexOf("--concurrency");
const CONCURRENCY = flagAt > 0 ? Number(process.argv[flagAt + 1]) : 4;
if (!Number.isInteger(CONCURRENCY) || CONCURRENCY < 1 || CONCURRENCY > 64)
  throw new Error(`--concurrency: expected an integer from 1 to 64, got ${process.argv[flagAt + 1]}`);
const MAX_LOAD_MS = 180_000;
const MAX_REQUESTS = 2_000_000;
const IDLE_MS = 5_000;
const TOKEN = "bench-api-token-0123456789abcdef";
const sha = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
const emit = (metric: string, value: number, unit: string) =>
  console.log(
    JSON.stringify({
      bench: "api",
      metric,
      value: Math.round(value * 1000) / 1000,
      unit,
      runtime: "bun-binary",
      commit: sha,
    }),
  );

const clusterDir = mkdtempSync(join(tmpdir(), "berth-bench-cluster-"));
const clusterEnv = { ...process.env, BERTH_CLUSTER_DIR: clusterDir };
const cluster = (cmd: string) =>
  execFileSync("bash", [join(ROOT, "scripts/cluster/cluster.sh"), cmd], {
    env: clusterEnv,
    encoding: "utf8",
  });
const kubeconfig = /^KUBECONFIG=(.+)$/m.exec(cluster("up"))?.[1] ?? "";
const kubectlBin = join(/^BERTH_CLUSTER_BIN=(.+)$/m.exec(cluster("env"))?.[1] ?? "", "kubectl");
const kubectl = (...args: string[]) =>
  execFileSync(kubectlBin, ["--kubeconfig", kubeconfig, ...args], { encoding: "utf8" });
const binary = join(
  ROOT,
  execFileSync("bash", [join(ROOT, "scripts/build.sh")], { cwd: ROOT, encoding: "utf8" }).trim(),
);

function tree(ns: string): Record<string, string> {
  const files: Record<string, string> = {
    "app/namespace.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
  };
  for (let i = 0; i < 400; i++)
    files[`app/config/cm-${i}.yaml`] =
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\n  namespace: ${ns}\ndata:\n  index: "${i}"\n`;
  for (let i = 0; i < 300; i++) {
    files[`app/svc/svc-${i}.yaml`] =
      `apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-${i}\n  namespace: ${ns}\nspec:\n  selector: {app: d-${i}}\n  ports: [{port: 80, targetPort: 8080}]\n`;
    files[`app/deploy/d-${i}.yaml`] =
      `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d-${i}\n  namespace: ${ns}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: d-${i}}}\n  template:\n    metadata: {labels: {app: d-${i}}}\n    spec:\n      containers: [{name: c, image: "nginx:1.27"}]\n`;
  }
  return files;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `berth run` on a fresh 1,000-object repo; resolves with the sync's duration and the API's base URL. */
async function startRun(git: GitFixture, name: string) {
  const ns = `bench-${name}-${Math.random().toString(16).slice(2, 6)}`;
  const url = git.createRepo(name);
  git.commit(name, tree(ns));
  const ws = mkdtempSync(join(tmpdir(), "berth-bench-api-"));
  const port = await freePort();
  writeFileSync(join(ws, "token"), `${TOKEN}\n`, { mode: 0o600 });
  const config = join(ws, "berth.yaml");
  writeFileSync(
    config,
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", interval: 1h}\napps:\n  - {name: bench, path: app, timeout: 5m}\nledger: {path: ledger.db}\napi:\n  listen: 127.0.0.1:${port}\n  tokenFile: token\n`,
  );
  const child = spawn(binary, ["run", "--config", config, "--kubeconfig", kubeconfig], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let startedAt = 0;
  const synced = new Promise<number>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d;
      if (!startedAt && out.includes("berth is running")) startedAt = performance.now();
      if (/"msg":"sync (succeeded|failed)"/.test(out)) {
        if (out.includes('"msg":"sync failed"')) reject(new Error(`sync failed:\n${out.slice(-2000)}`));
        else resolve((performance.now() - startedAt) / 1000);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`berth run exited ${code}:\n${out.slice(-2000)}`)));
  });
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const stop = async () => {
    child.kill("SIGTERM");
    await Promise.race([exited, sleep(30_000)]);
    child.kill("SIGKILL");
    kubectl("delete", "namespace", ns, "--wait=true", "--timeout=180s");
  };
  return { base: `http://127.0.0.1:${port}`, synced, stop };
}

interface LoadStats {
  latencies: number[];
  errors: number;
}

/** C concurrent loops of GET `path` until `until` resolves (or the time/count bounds hit). */
async function load(
  url: string,
  until: Promise<unknown>,
  maxMs: number,
): Promise<LoadStats & { seconds: number }> {
  const stats: LoadStats = { latencies: [], errors: 0 };
  let done = false;
  const stopLoad = () => {
    done = true;
  };
  until.then(stopLoad, stopLoad);
  const deadline = performance.now() + maxMs;
  const t0 = performance.now();
  const loop = async () => {
    while (!done && performance.now() < deadline && stats.latencies.length + stats.errors < MAX_REQUESTS) {
      const s = performance.now();
      try {
        const r = await fetch(url, { headers: { Authorization: `Bearer ${TOKEN}` } });
        await r.arrayBuffer();
        if (r.status === 200) stats.latencies.push(performance.now() - s);
        else stats.errors++;
      } catch {
        stats.errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
  return { ...stats, seconds: (performance.now() - t0) / 1000 };
}

const pct = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};

function report(label: string, endpoint: string, s: LoadStats & { seconds: number }): void {
  emit(`${endpoint}_${label}_requests_per_s`, s.latencies.length / s.seconds, "req/s");
  emit(`${endpoint}_${label}_p50_ms`, pct(s.latencies, 50), "ms");
  emit(`${endpoint}_${label}_p99_ms`, pct(s.latencies, 99), "ms");
  emit(`${endpoint}_${label}_errors`, s.errors, "requests");
}

async function apiUp(base: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const r = await fetch(`${base}/healthz`).catch(() => undefined);
    if (r) return;
    await sleep(20);
  }
  throw new Error(`${base} never answered`);
}

const git = await GitFixture.start();
try {
  // 1. The sync alone.
  const quiet = await startRun(git, "quiet");
  const quietSeconds = await quiet.synced;
  await quiet.stop();
  emit("sync_1000_without_load_s", quietSeconds, "s");

  // 2. The same sync (another namespace) with both endpoints under load from the moment the API answers.
  const loaded = await startRun(git, "loaded");
  await apiUp(loaded.base);
  const [apps, metrics, loadedSeconds] = await Promise.all([
    load(`${loaded.base}/api/v1/apps`, loaded.synced, MAX_LOAD_MS),
    load(`${loaded.base}/metrics`, loaded.synced, MAX_LOAD_MS),
    loaded.synced,
  ]);
  emit("sync_1000_with_load_s", loadedSeconds, "s");
  report("during_sync", "apps", apps);
  report("during_sync", "metrics", metrics);

  // 3. The same endpoints with the agent idle, as the reference.
  const idle = sleep(IDLE_MS);
  const [appsIdle, metricsIdle] = await Promise.all([
    load(`${loaded.base}/api/v1/apps`, idle, IDLE_MS),
    load(`${loaded.base}/metrics`, idle, IDLE_MS),
  ]);
  report("idle", "apps", appsIdle);
  report("idle", "metrics", metricsIdle);
  emit("load_concurrency_per_endpoint", CONCURRENCY, "loops");
  await loaded.stop();
} finally {
  await git.close();
  cluster("down");
}
