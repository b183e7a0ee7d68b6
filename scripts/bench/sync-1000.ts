/**
 * Benchmark: a generated repository of 1,000 objects (400 ConfigMaps, 300 Services, 300 Deployments) synced by
 * the compiled binary against a real control plane of its own (started here, stopped at the end):
 * first sync, no-op resync (time and real writes, from the API server's audit log), one-object-change resync,
 * and the binary's peak resident memory; `kubectl apply --server-side` of the same tree as the baseline.
 * Prints one JSON object per figure. Usage: bun scripts/bench/sync-1000.ts [--runs N] [--noops N]
 * [--binary PATH]… [--no-kubectl]. With several `--binary`, each run syncs a fresh app with each binary in
 * turn (the order alternating between runs), and every no-op is also printed on its own with its stage
 * timings and /proc/loadavg (`noop_run_s`); without one, this tree's binary is built.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runToEnd } from "../../test/support/binary.ts";
import { GitFixture } from "../../test/support/git.ts";
import { numberFlag } from "./flags.ts";
import { tree1000 as tree } from "./tree-1000.ts";

const ROOT = join(import.meta.dir, "..", "..");
const RUNS = numberFlag("--runs", 3);
const NOOPS = numberFlag("--noops", 1);
const KUBECTL = !process.argv.includes("--no-kubectl");
const binaryFlags = process.argv.flatMap((a, i) => (a === "--binary" ? [process.argv[i + 1] ?? ""] : []));
const commit = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], {
  cwd: ROOT,
  encoding: "utf8",
}).trim();
const emit = (
  bench: string,
  metric: string,
  value: number,
  unit: string,
  runtime = "bun-binary",
  extra: Record<string, unknown> = {},
) =>
  console.log(
    JSON.stringify({
      bench,
      metric,
      value: Math.round(value * 1000) / 1000,
      unit,
      runtime,
      commit,
      ...extra,
    }),
  );
const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

// An isolated control plane, so the figures are not disturbed by test namespaces.
const clusterDir = mkdtempSync(join(tmpdir(), "berth-bench-cluster-"));
const clusterEnv = { ...process.env, BERTH_CLUSTER_DIR: clusterDir };
const up = execFileSync("bash", [join(ROOT, "scripts/cluster/cluster.sh"), "up"], {
  env: clusterEnv,
  encoding: "utf8",
});
const kubeconfig = /^KUBECONFIG=(.+)$/m.exec(up)?.[1] ?? "";
const bin = /^BERTH_CLUSTER_BIN=(.+)$/m.exec(
  execFileSync("bash", [join(ROOT, "scripts/cluster/cluster.sh"), "env"], {
    env: clusterEnv,
    encoding: "utf8",
  }),
)?.[1];
const kubectl = (...args: string[]) =>
  execFileSync(join(bin ?? "", "kubectl"), ["--kubeconfig", kubeconfig, ...args], {
    encoding: "utf8",
    maxBuffer: 1 << 28,
  });
const binaries =
  binaryFlags.length > 0
    ? binaryFlags
    : [
        join(
          ROOT,
          execFileSync("bash", [join(ROOT, "scripts/build.sh")], { cwd: ROOT, encoding: "utf8" }).trim(),
        ),
      ];

/** Runs a binary (async: the Git server lives in this process); returns seconds and peak RSS in MB. */
async function runBinary(
  binary: string,
  args: string[],
): Promise<{ seconds: number; peakMb: number; out: string; code: number | null }> {
  const t0 = performance.now();
  const { code, stdout, stderr } = await runToEnd(
    spawn("/usr/bin/time", ["-f", "BERTH_MAXRSS_KB=%M", binary, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    }),
    0, // the app's health timeout bounds a sync; never cut one short here
  );
  const out = stdout + stderr;
  const kb = Number(/BERTH_MAXRSS_KB=(\d+)/.exec(out)?.[1] ?? Number.NaN);
  return { seconds: (performance.now() - t0) / 1000, peakMb: kb / 1024, out, code };
}

function writes(since: Date): number {
  const text = readFileSync(join(clusterDir, "audit.log"), "utf8");
  let n = 0;
  for (const line of text.split("\n")) {
    if (!line) continue;
    const e = JSON.parse(line) as {
      verb: string;
      requestURI: string;
      userAgent?: string;
      requestReceivedTimestamp: string;
    };
    if (e.userAgent !== "berth" || new Date(e.requestReceivedTimestamp) < since) continue;
    if (["create", "update", "patch", "delete"].includes(e.verb) && !e.requestURI.includes("dryRun=All")) n++;
  }
  return n;
}

const git = await GitFixture.start();
type Figures = Record<"first" | "noop" | "noopWrites" | "change" | "peak" | "kubectl", number[]>;
const results = new Map<string, Figures>(
  binaries.map((b) => [b, { first: [], noop: [], noopWrites: [], change: [], peak: [], kubectl: [] }]),
);
try {
  for (let run = 0; run < RUNS; run++) {
    const order = run % 2 === 0 ? binaries : [...binaries].reverse();
    for (const binary of order) {
      const fig = results.get(binary) as Figures;
      const ns = `bench-${run}-${Math.random().toString(16).slice(2, 6)}`;
      const repo = `bench${run}${ns.slice(-4)}`;
      const url = git.createRepo(repo);
      git.commit(repo, tree(ns, "1"));
      const ws = mkdtempSync(join(tmpdir(), "berth-bench-"));
      const config = join(ws, "berth.yaml");
      writeFileSync(
        config,
        `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}"}\napps:\n  - {name: bench, path: app, timeout: 5m}\nledger: {path: ledger.db}\n`,
      );
      const args = ["sync", "--config", config, "--kubeconfig", kubeconfig];
      const first = await runBinary(binary, args);
      if (first.code !== 0) throw new Error(`first sync failed:\n${first.out.slice(-2000)}`);
      fig.first.push(first.seconds);
      fig.peak.push(first.peakMb);
      for (let i = 0; i < NOOPS; i++) {
        const since = new Date();
        const load = loadavg();
        const noop = await runBinary(binary, args);
        if (noop.code !== 0) throw new Error(`no-op sync exited ${noop.code}:\n${noop.out.slice(-2000)}`);
        fig.noop.push(noop.seconds);
        fig.peak.push(noop.peakMb);
        await new Promise((r) => setTimeout(r, 500));
        fig.noopWrites.push(writes(since));
        const stages = /\[entry \d+; ([^\]]*)\]/.exec(noop.out)?.[1] ?? "";
        emit("sync-1000", "noop_run_s", noop.seconds, "s", "bun-binary", {
          binary,
          run,
          loadavg: load,
          stages,
        });
      }
      git.commit(repo, { "app/config/cm-0.yaml": tree(ns, "2")["app/config/cm-0.yaml"] as string });
      const change = await runBinary(binary, args);
      if (change.code !== 0)
        throw new Error(`change sync exited ${change.code}:\n${change.out.slice(-2000)}`);
      if (!change.out.includes("1 configured"))
        throw new Error(`change sync did not configure one object:\n${change.out}`);
      fig.change.push(change.seconds);
      kubectl("delete", "namespace", ns, "--wait=false");
      if (!KUBECTL) continue;

      // Baseline: kubectl apply --server-side of the same tree into another namespace.
      const kdir = mkdtempSync(join(tmpdir(), "berth-bench-kubectl-"));
      const kns = `${ns}-kubectl`;
      for (const [path, body] of Object.entries(tree(kns, "1"))) {
        mkdirSync(join(kdir, path, ".."), { recursive: true });
        writeFileSync(join(kdir, path), body);
      }
      const k0 = performance.now();
      kubectl("apply", "--server-side", "-f", join(kdir, "app/namespace.yaml"));
      kubectl("apply", "--server-side", "-R", "-f", join(kdir, "app"));
      kubectl("rollout", "status", "-n", kns, "deployment", "--timeout=300s");
      fig.kubectl.push((performance.now() - k0) / 1000);
      kubectl("delete", "namespace", kns, "--wait=false");
    }
  }
} finally {
  await git.close();
  execFileSync("bash", [join(ROOT, "scripts/cluster/cluster.sh"), "down"], {
    env: clusterEnv,
    stdio: "ignore",
  });
}
for (const [binary, r] of results) {
  const tag = { binary };
  emit("sync-1000", "first_sync_s", median(r.first), "s", "bun-binary", tag);
  emit("sync-1000", "noop_resync_s", median(r.noop), "s", "bun-binary", tag);
  emit("sync-1000", "noop_resync_writes", Math.max(...r.noopWrites), "requests", "bun-binary", tag);
  emit("sync-1000", "one_change_resync_s", median(r.change), "s", "bun-binary", tag);
  emit("sync-1000", "peak_rss_mb", Math.max(...r.peak), "MB", "bun-binary", tag);
  if (r.kubectl.length === 0) continue;
  emit("sync-1000", "kubectl_ssa_apply_and_rollout_s", median(r.kubectl), "s", "kubectl", tag);
  emit(
    "sync-1000",
    "first_sync_vs_kubectl_ratio",
    median(r.first) / median(r.kubectl),
    "ratio",
    "bun-binary",
    tag,
  );
}
