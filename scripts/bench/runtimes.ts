/**
 * Benchmark: berth under its three runtimes side by side — artifact size, start-to-/readyz time and idle
 * resident memory with one app synced — against the real control plane and Git server.
 *   bun scripts/bench/runtimes.ts [runs=5]
 * Prints one JSON object per figure per line (medians of `runs`). Targets for the binary: start ≤ 0.5 s,
 * idle ≤ 60 MB. Not part of `npm test`.
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { writeConfig } from "../../test/support/berth.ts";
import { freshNamespace, kubectl, useCluster } from "../../test/support/cluster.ts";
import { GitFixture } from "../../test/support/git.ts";
import { apiUrlIn, berthCommand, RUNTIMES, type Runtime } from "../../test/support/runtimes.ts";

const ROOT = join(import.meta.dir, "..", "..");
const RUNS = Number(process.argv[2] ?? 5);
const commit = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], {
  cwd: ROOT,
  encoding: "utf8",
}).trim();
const RUNTIME_LABEL: Record<Runtime, string> = { binary: "bun-binary", deno: "deno", node: "node" };

function emit(runtime: Runtime, metric: string, value: number, unit: string): void {
  const v = Math.round(value * 1000) / 1000;
  console.log(
    JSON.stringify({ bench: "runtimes", metric, value: v, unit, runtime: RUNTIME_LABEL[runtime], commit }),
  );
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** What has to be shipped: the binary; the bundle (plus better-sqlite3 beside it); Deno runs the sources. */
function artifactBytes(runtime: Runtime): number {
  const [first, second] = berthCommand(runtime);
  if (runtime === "binary") return statSync(first ?? "").size;
  if (runtime === "node") return statSync(second ?? "").size;
  return Number(execFileSync("du", ["-sb", join(ROOT, "agent")], { encoding: "utf8" }).split("\t")[0]);
}

/** Resident memory of a process and its children (the Deno launcher execs, so one process). */
function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

const cluster = await useCluster();
for (const r of RUNTIMES) berthCommand(r);
const ns = await freshNamespace(cluster, "bench-rt");
const git = await GitFixture.start();
const url = git.createRepo("bench");
git.commit("bench", {
  "app/cm.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b\n`,
});
try {
  for (const runtime of RUNTIMES) {
    emit(runtime, "artifact_size_mb", artifactBytes(runtime) / 1e6, "MB");
    const starts: number[] = [];
    const rss: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const config = writeConfig(
        `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", interval: 30s}\napps:\n  - {name: app, path: app, namespace: ${ns}}\nledger: {path: $DIR/ledger.db}\napi: {listen: "127.0.0.1:0", anonymousRead: true}\n`,
      );
      const [exe, ...pre] = berthCommand(runtime);
      const t0 = performance.now();
      const child = spawn(exe ?? "false", [...pre, "run", "--config", config], {
        stdio: ["ignore", "pipe", "pipe"],
        env: {
          PATH: process.env.PATH ?? "",
          HOME: process.env.HOME ?? "/root",
          KUBECONFIG: cluster.kubeconfigPath,
        },
      });
      let out = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d;
      });
      child.stderr.on("data", (d: Buffer) => {
        out += d;
      });
      // Ready means: ledger open, config loaded and the first pass (a sync of the app) done.
      for (;;) {
        const base = apiUrlIn(out);
        const ok = base
          ? await fetch(`${base}/readyz`).then(
              (r) => r.status === 200,
              () => false,
            )
          : false;
        if (ok) break;
        if (performance.now() - t0 > 60_000) throw new Error(`${runtime}: not ready after 60 s:\n${out}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      starts.push((performance.now() - t0) / 1000);
      // Idle: a few seconds after the first sync, between polls.
      await new Promise((r) => setTimeout(r, 3000));
      rss.push(rssBytes(child.pid ?? 0));
      child.kill("SIGTERM");
      await new Promise((r) => child.on("exit", r));
    }
    emit(runtime, "start_to_readyz_s", median(starts), "s");
    emit(runtime, "idle_rss_mb", median(rss) / 1e6, "MB");
  }
} finally {
  await git.close();
  kubectl(cluster, "delete", "namespace", ns, "--wait=false");
}
