/**
 * Benchmark: restore of 1,000 objects from the ledger into a freshly started control plane with Git down
 * (time from replay start to all healthy), and ledger size per 1,000-object commit and its growth over 100
 * commits that each change one object. Prints one JSON object per figure. The recorded sync and the restore
 * each get a control plane of their own (never the shared test one); `--restore-only` skips the size figures.
 *
 *   node_modules/.bin/bun scripts/bench/restore.ts [--restore-only]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { wire } from "../../agent/cli/wire.ts";
import { silentLogger } from "../../agent/engine/log.ts";
import { reconcile } from "../../agent/engine/reconcile.ts";
import { replay, resolveEntry } from "../../agent/engine/replay.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { type KubeObject, objectId, refOf } from "../../agent/object/object.ts";
import { writeConfig } from "../../test/support/berth.ts";
import { GitFixture } from "../../test/support/git.ts";

const SCRIPT = join(import.meta.dir, "..", "cluster", "cluster.sh");
const commit = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { encoding: "utf8" }).trim();
const emit = (metric: string, value: number, unit: string) =>
  console.log(JSON.stringify({ bench: "restore", metric, value, unit, runtime: "bun", commit }));

const N = 1000;
const DEPLOYMENTS = 50;
const ns = `bench-${Math.random().toString(16).slice(2, 8)}`;
const cm = (i: number, v = "v1") =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata:\n  value: "${v}-${i}"\n  padding: "${"x".repeat(200)}"\n`;
const dep = (i: number) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d-${i}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: d-${i}}}\n  template:\n    metadata: {labels: {app: d-${i}}}\n    spec:\n      containers: [{name: c, image: "nginx:1.27"}]\n`;

async function restoreBench(): Promise<void> {
  // The recorded sync runs on a control plane of its own too: the shared one is busy with other tests.
  const sourceEnv = { ...process.env, BERTH_CLUSTER_DIR: mkdtempSync(join(tmpdir(), "berth-bench-source-")) };
  const sourceUp = execFileSync("bash", [SCRIPT, "up"], {
    encoding: "utf8",
    env: sourceEnv,
    stdio: ["ignore", "pipe", "ignore"],
  });
  const sourceKubeconfig = /^KUBECONFIG=(.+)$/m.exec(sourceUp)?.[1] ?? "";
  const git = await GitFixture.start();
  const url = git.createRepo("bench");
  const files: Record<string, string> = {
    "app/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
  };
  for (let i = 0; i < N - DEPLOYMENTS - 1; i++) files[`app/cm-${i}.yaml`] = cm(i);
  for (let i = 0; i < DEPLOYMENTS; i++) files[`app/d-${i}.yaml`] = dep(i);
  git.commit("bench", files);
  const config = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}"}\napps:\n  - {name: bench, path: app, namespace: ${ns}, timeout: 120s}\nledger: {path: $DIR/ledger.db}\n`,
  );
  const w = await wire({ config, kubeconfig: sourceKubeconfig }, silentLogger);
  const app = w.config.apps[0];
  if (!app) throw new Error("no app");
  const synced = await reconcile(w.deps, { app, trigger: "bench" });
  if (synced.outcome !== "Succeeded") throw new Error(`sync failed: ${synced.message}`);
  w.close();
  await git.close(); // Git is down from here on
  execFileSync("bash", [SCRIPT, "down"], { env: sourceEnv, stdio: "ignore" });

  const dir = mkdtempSync(join(tmpdir(), "berth-bench-cluster-"));
  const env = { ...process.env, BERTH_CLUSTER_DIR: dir };
  try {
    const t0 = performance.now();
    const out = execFileSync("bash", [SCRIPT, "up"], {
      encoding: "utf8",
      env,
      stdio: ["ignore", "pipe", "ignore"],
    });
    emit("control_plane_start_s", round((performance.now() - t0) / 1000), "s");
    const kubeconfig = /^KUBECONFIG=(.+)$/m.exec(out)?.[1] ?? "";
    const r = await wire({ config, kubeconfig }, silentLogger);
    try {
      const t1 = performance.now();
      const result = await replay(
        { ...r.deps, ledger: r.ledger },
        { app, entry: resolveEntry(r.ledger, app.name, "last-healthy"), trigger: "replay" },
      );
      const seconds = (performance.now() - t1) / 1000;
      if (result.outcome !== "Succeeded") throw new Error(`replay failed: ${result.message}`);
      emit("restore_1000_objects_to_healthy_s", round(seconds), "s");
      for (const [stage, ms] of Object.entries(result.timings))
        emit(`restore_stage_${stage}_s`, round(ms / 1000), "s");
    } finally {
      r.close();
    }
  } finally {
    execFileSync("bash", [SCRIPT, "down"], { env, stdio: "ignore" });
  }
}

/** Records entries through the Ledger API exactly as a sync does (manifests, object rows, inventory). */
async function sizeBench(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "berth-bench-ledger-"));
  const ledger = await Ledger.open(join(dir, "ledger.db"));
  const objects: KubeObject[] = [];
  for (let i = 0; i < N; i++)
    objects.push({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: `cm-${i}`, namespace: "bench", labels: { "berth.dev/app": "bench" } },
      data: { value: `v0-${i}`, padding: "x".repeat(200) },
    });
  const record = async (rev: number) => {
    const id = ledger.begin({ app: "bench", revision: `main@sha1:${rev}`, trigger: "bench" });
    const digests = await ledger.putManifests(objects);
    const items = objects.map((o) => ({ ref: refOf(o), digest: digests.get(objectId(refOf(o))) ?? "" }));
    ledger.finish(id, {
      outcome: "Succeeded",
      reason: "Succeeded",
      message: "bench",
      objects: items.map((i) => ({ ...i, action: "unchanged" as const, health: "Current" as const })),
      timings: {},
      inventory: items,
    });
  };
  // Sizes are of an exported copy: a compact file, free of WAL and free-page noise.
  const size = async (n: number) => {
    const path = join(dir, `size-${n}.db`);
    await ledger.backup(path);
    return statSync(path).size;
  };
  const empty = await size(0);
  await record(0);
  const first = await size(1);
  emit("ledger_bytes_first_1000_object_commit", first - empty, "bytes");
  for (let c = 1; c <= 100; c++) {
    const o = objects[c % N] as KubeObject;
    o.data = { value: `v${c}-${c}`, padding: "x".repeat(200) };
    await record(c);
  }
  const after = await size(101);
  emit("ledger_bytes_growth_100_one_object_commits", after - first, "bytes");
  emit("ledger_bytes_per_one_object_commit", Math.round((after - first) / 100), "bytes");
  ledger.close();
  rmSync(dir, { recursive: true, force: true });
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

if (!process.argv.includes("--restore-only")) await sizeBench();
await restoreBench();
