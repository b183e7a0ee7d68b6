/**
 * Load beside the test run: a second control plane of its own (its own state directory, stopped at the end)
 * and the compiled binary syncing a 1,000-object app against it in a loop — each round changes 100
 * ConfigMaps and every fifth round restarts all 300 Deployments' pods — so tests can be run on a machine as
 * busy as a CI host that also runs a benchmark. Bounded: stops after --seconds (default 1800) or on
 * SIGTERM/SIGINT. Prints one JSON line per round.
 *
 *   bun scripts/load/sync-loop.ts [--seconds N]
 *
 * The crash-safety suite starts it when BERTH_TEST_LOAD=1 (test/support/load.ts).
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runToEnd } from "../../test/support/binary.ts";
import { GitFixture } from "../../test/support/git.ts";
import { numberFlag } from "../bench/flags.ts";
import { tree1000 } from "../bench/tree-1000.ts";

const ROOT = join(import.meta.dir, "..", "..");
const SECONDS = numberFlag("--seconds", 1800);
const deadline = Date.now() + SECONDS * 1000;
let stopping = false;
for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => (stopping = true));

const say = (o: Record<string, unknown>) => console.log(JSON.stringify({ load: "sync-loop", ...o }));
const clusterDir = mkdtempSync(join(tmpdir(), "berth-load-cluster-"));
const clusterEnv = { ...process.env, BERTH_CLUSTER_DIR: clusterDir };
const cluster = (cmd: string) =>
  execFileSync("bash", [join(ROOT, "scripts/cluster/cluster.sh"), cmd], {
    env: clusterEnv,
    encoding: "utf8",
  });

const ws = mkdtempSync(join(tmpdir(), "berth-load-"));
let git: GitFixture | undefined;
try {
  const kubeconfig = /^KUBECONFIG=(.+)$/m.exec(cluster("up"))?.[1] ?? "";
  const binary = join(
    ROOT,
    execFileSync("bash", [join(ROOT, "scripts/build.sh")], { cwd: ROOT, encoding: "utf8" })
      .trim()
      .split("\n")
      .at(-1) ?? "",
  );
  git = await GitFixture.start();
  const url = git.createRepo("load");
  const ns = "load";
  git.commit("load", tree1000(ns, "0"));
  const config = join(ws, "berth.yaml");
  writeFileSync(
    config,
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}"}\napps:\n  - {name: load, path: app, timeout: 5m}\nledger: {path: ledger.db}\n`,
  );
  say({ event: "started", kubeconfig, seconds: SECONDS });
  for (let round = 0; !stopping && Date.now() < deadline; round++) {
    if (round > 0) {
      const next = tree1000(ns, String(round), String(round));
      const changed = Object.fromEntries(Object.entries(next).filter(([p]) => /cm-\d?\d\.yaml$/.test(p)));
      git.commit("load", changed);
    }
    if (round > 0 && round % 5 === 0)
      execFileSync(
        join(binDir(), "kubectl"),
        ["--kubeconfig", kubeconfig, "rollout", "restart", "deployment", "-n", ns],
        {
          stdio: "ignore",
        },
      );
    const t0 = performance.now();
    const child = spawn(binary, ["sync", "--config", config, "--kubeconfig", kubeconfig], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const stop = () => child.kill("SIGTERM");
    process.once("SIGTERM", stop);
    const r = await runToEnd(child, 600_000);
    process.off("SIGTERM", stop);
    say({ event: "round", round, exit: r.code, seconds: Math.round(performance.now() - t0) / 1000 });
  }
} finally {
  await git?.close();
  try {
    cluster("down");
  } catch {}
  rmSync(ws, { recursive: true, force: true });
  rmSync(clusterDir, { recursive: true, force: true });
  say({ event: "stopped" });
}

function binDir(): string {
  return /^BERTH_CLUSTER_BIN=(.+)$/m.exec(cluster("env"))?.[1] ?? "";
}
