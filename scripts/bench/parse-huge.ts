/**
 * Benchmark: one ConfigMap with 150,000 keys (≈ 1.8 MB, under the 2 MiB file limit) — issue 12, item 4.
 *  1. Parse time of the file (parse + classify, as the worker runs it) in this process, and through the parse
 *     worker (round trip included), RUNS times each; target ≤ 1 s.
 *  2. /healthz latency of a running `berth run` (the compiled binary, or `bun agent/main.ts run` with
 *     --source) while it renders that file (the render window comes from the agent's own stage events): one
 *     request at a time from the API's first answer until the first sync attempt ends; RUNS runs; target
 *     p99 ≤ 100 ms. The whole attempt's p99 is printed too: the 1.8 MB ConfigMap is over the API server's
 *     1 MiB limit, so the attempt ends at the plan's dry-run and nothing is written.
 *  3. SIGTERM while it renders: time until the process has exited; target ≤ 2 s.
 * Uses the shared control plane (scripts/cluster/cluster.sh up). Prints one JSON object per figure, each with
 * the machine's 1-minute load average when it was taken.
 *
 *   node_modules/.bin/bun scripts/bench/parse-huge.ts [--runs N] [--source]
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { ParsePool } from "../../agent/render/parse-pool.ts";
import { DEFAULT_RENDER_LIMITS } from "../../agent/render/plain.ts";
import { renderFileBytes } from "../../agent/render/render-file.ts";
import { GitFixture } from "../../test/support/git.ts";
import { freePort } from "../../test/support/ports.ts";

const ROOT = join(import.meta.dir, "..", "..");
const arg = (name: string) => process.argv.indexOf(name);
const RUNS = arg("--runs") > 0 ? Number(process.argv[arg("--runs") + 1]) : 3;
const FROM_SOURCE = arg("--source") > 0;
const KEYS = 150_000;
const sha = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
const runtime = FROM_SOURCE ? "bun-source" : "bun-binary";
const emit = (metric: string, value: number, unit: string, extra: Record<string, unknown> = {}) =>
  console.log(
    JSON.stringify({
      bench: "parse-huge",
      metric,
      value: Math.round(value * 10) / 10,
      unit,
      runtime,
      load1: Math.round((loadavg()[0] ?? 0) * 100) / 100,
      commit: sha,
      ...extra,
    }),
  );
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};
const median = (xs: number[]) => pct(xs, 50);

function hugeConfigMap(): string {
  const lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: huge", "data:"];
  for (let i = 0; i < KEYS; i++) lines.push(`  k${i}: v`);
  return `${lines.join("\n")}\n`;
}
const text = hugeConfigMap();
const bytes = new TextEncoder().encode(text);
emit("file_bytes", bytes.byteLength, "bytes", { keys: KEYS });

// 1. Parse time, in this thread and through the worker.
const limits = { ...DEFAULT_RENDER_LIMITS, budget: DEFAULT_RENDER_LIMITS.maxDocuments };
const inline: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const t0 = performance.now();
  const r = renderFileBytes("huge.yaml", bytes, limits);
  inline.push(performance.now() - t0);
  if (r.errors.length > 0 || r.objects.length !== 1)
    throw new Error(`parse failed: ${JSON.stringify(r.errors)}`);
}
emit("parse_ms_median", median(inline), "ms", { runs: inline.map(Math.round) });
const pool = new ParsePool({ size: 1 });
const viaWorker: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const t0 = performance.now();
  await pool.parse("huge.yaml", bytes, limits);
  viaWorker.push(performance.now() - t0);
}
await pool.close();
emit("parse_via_worker_ms_median", median(viaWorker), "ms", { runs: viaWorker.map(Math.round) });

// 2 and 3. A running agent.
const clusterUp = execFileSync("bash", [join(ROOT, "scripts/cluster/cluster.sh"), "up"], {
  encoding: "utf8",
});
const kubeconfig = /^KUBECONFIG=(.+)$/m.exec(clusterUp)?.[1] ?? "";
const command = FROM_SOURCE
  ? [join(ROOT, "node_modules/.bin/bun"), join(ROOT, "agent/main.ts")]
  : [
      join(
        ROOT,
        execFileSync("bash", [join(ROOT, "scripts/build.sh")], { cwd: ROOT, encoding: "utf8" }).trim(),
      ),
    ];

async function startRun(url: string) {
  const ws = mkdtempSync(join(tmpdir(), "berth-bench-parse-"));
  const port = await freePort();
  const config = join(ws, "berth.yaml");
  writeFileSync(
    config,
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", interval: 1h}\napps:\n  - {name: huge, path: app, namespace: default}\nledger: {path: ledger.db}\napi:\n  listen: 127.0.0.1:${port}\n  anonymousRead: true\n`,
  );
  const [exe, ...pre] = command;
  const child = spawn(exe as string, [...pre, "run", "--config", config, "--kubeconfig", kubeconfig], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const onData = (d: Buffer) => {
    out += d;
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { base: `http://127.0.0.1:${port}`, child, exited, output: () => out, config };
}

/** The agent's stage events (server time, ms) from its event stream, until `stop` aborts; `onEvent` sees each. */
async function stages(
  base: string,
  stop: AbortSignal,
  onEvent?: (what: string) => void,
): Promise<Array<{ at: number; what: string }>> {
  const seen: Array<{ at: number; what: string }> = [];
  try {
    const r = await fetch(`${base}/api/v1/events`, { signal: stop });
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += new TextDecoder().decode(value);
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (!line.startsWith("data: ")) continue;
        const e = JSON.parse(line.slice(6)) as { at?: string; type: string; stage?: string };
        if (e.at && (e.type === "stage" || e.type === "finished")) {
          seen.push({ at: Date.parse(e.at), what: e.stage ?? e.type });
          onEvent?.(e.stage ?? e.type);
        }
      }
    }
  } catch {
    // Aborted: the run is over.
  }
  return seen;
}

async function healthz(base: string): Promise<number | undefined> {
  const t0 = performance.now();
  try {
    const r = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(30_000) });
    await r.arrayBuffer();
    return r.status === 200 ? performance.now() - t0 : undefined;
  } catch {
    return undefined;
  }
}

/** The render stage's duration (ms) and the outcome of the app's first entry, from the ledger. */
function firstEntry(config: string): { render?: number; reason: string; message: string } {
  const [exe, ...pre] = command;
  const list = JSON.parse(
    execFileSync(exe as string, [...pre, "ledger", "list", "--json", "--app", "huge", "--config", config], {
      encoding: "utf8",
    }),
  ) as Array<{ id: number; reason: string; message: string }>;
  const first = list.at(-1);
  if (!first) return { reason: "none", message: "no ledger entry" };
  const shown = JSON.parse(
    execFileSync(exe as string, [...pre, "ledger", "show", String(first.id), "--json", "--config", config], {
      encoding: "utf8",
    }),
  ) as { timings?: Record<string, number> };
  return { ...(shown.timings?.render !== undefined ? { render: shown.timings.render } : {}), ...first };
}

const git = await GitFixture.start();
try {
  const url = git.createRepo("huge");
  git.commit("huge", { "app/huge.yaml": text });
  const all: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const agent = await startRun(url);
    const latencies: number[] = [];
    let failures = 0;
    // One request at a time, from the API's first answer until the first attempt has ended.
    let up = false;
    for (let i = 0; i < 3000 && !up; i++) {
      up = (await healthz(agent.base)) !== undefined;
      if (!up) await sleep(10);
    }
    if (!up) throw new Error(`the API never answered:\n${agent.output().slice(-2000)}`);
    const stopStream = new AbortController();
    const events = stages(agent.base, stopStream.signal);
    const samples: Array<{ start: number; end: number; ms: number }> = [];
    const deadline = performance.now() + 300_000;
    while (!/"msg":"sync (succeeded|failed)"/.test(agent.output()) && performance.now() < deadline) {
      const start = Date.now();
      const ms = await healthz(agent.base);
      if (ms === undefined) failures++;
      else samples.push({ start, end: Date.now(), ms });
      await sleep(5);
    }
    stopStream.abort();
    const seen = await events;
    agent.child.kill("SIGTERM");
    await agent.exited;
    const entry = firstEntry(agent.config);
    // The render window: from the render stage's event to the next stage's (server clock, this machine).
    const from = seen.find((e) => e.what === "render")?.at ?? Number.NaN;
    const to = seen.find((e) => e.at >= from && e.what !== "render")?.at ?? Number.NaN;
    const inRender = samples.filter((x) => x.end >= from && x.start <= to).map((x) => x.ms);
    latencies.push(...samples.map((x) => x.ms));
    all.push(...inRender);
    emit("healthz_during_render_p99_ms", pct(inRender, 99), "ms", {
      run,
      p50_ms: Math.round(pct(inRender, 50) * 10) / 10,
      max_ms: Math.round(Math.max(...inRender) * 10) / 10,
      requests: inRender.length,
      render_window_ms: to - from,
      render_ms: entry.render,
    });
    emit("healthz_during_whole_attempt_p99_ms", pct(latencies, 99), "ms", {
      run,
      max_ms: Math.round(Math.max(...latencies) * 10) / 10,
      requests: latencies.length,
      failures,
      stages: seen.map((e) => e.what),
      outcome: entry.reason,
    });
  }
  emit("healthz_during_render_p99_ms_all_runs", pct(all, 99), "ms", { requests: all.length });

  // 3. SIGTERM while the file renders: the worker is stopped, the attempt is recorded as Interrupted.
  for (let run = 0; run < RUNS; run++) {
    const agent = await startRun(url);
    for (let i = 0; i < 3000 && (await healthz(agent.base)) === undefined; i++) await sleep(10);
    // SIGTERM as soon as the agent says the render stage began (its event stream), plus a little.
    const stopStream = new AbortController();
    await new Promise<void>((resolve) => {
      void stages(agent.base, stopStream.signal, (what) => what === "render" && resolve());
      setTimeout(resolve, 60_000);
    });
    stopStream.abort();
    await sleep(100);
    const t0 = performance.now();
    agent.child.kill("SIGTERM");
    const code = await agent.exited;
    const stopMs = performance.now() - t0;
    const entry = firstEntry(agent.config);
    emit("sigterm_during_render_exit_ms", stopMs, "ms", {
      run,
      code,
      outcome: `${entry.reason}: ${entry.message}`,
    });
  }
} finally {
  await git.close();
}
