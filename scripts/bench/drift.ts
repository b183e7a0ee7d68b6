/**
 * Benchmark: drift detection and heal latency. The compiled binary runs `berth run` (drift: heal, resync
 * interval 1 h, so only the watches can heal) on an app of 1,000 ConfigMaps on a control plane of its own; the
 * benchmark makes 100 out-of-band edits, one at a time, each as another field manager, and measures
 *   heal latency: from sending the edit to reading the object back with berth's value (polled every 5 ms);
 *   record latency: from sending the edit to the drift event's time in the ledger;
 *   the API server's share: from sending the edit to the bench's own watch seeing it (one write's round trip,
 *   which every heal pays twice: the edit, then berth's re-apply);
 *   berth's share: from the bench's watch seeing the edit to it seeing berth's value back (berth's watch, decision,
 *   re-apply and that write's round trip);
 *   the machine's wake-up cost: a loopback HTTP request after 200 ms idle against one right after another (a
 *   virtual machine's idle vCPUs wake slowly, and every hop of a heal pays it).
 * Also the resident memory of `berth run` holding 1,000 objects against one holding 10 (the view's cost).
 * Prints one JSON object per figure. Usage: bun scripts/bench/drift.ts [--edits N] [--binary PATH]
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeClient } from "../../agent/kube/client.ts";
import { KindWatch } from "../../agent/kube/watch.ts";
import { inBackground } from "../../test/support/binary.ts";
import { GitFixture } from "../../test/support/git.ts";
import { numberFlag } from "./flags.ts";
import { readLedger, stringFlag } from "./harness.ts";

const ROOT = join(import.meta.dir, "..", "..");
const EDITS = numberFlag("--edits", 100);
const commit = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], {
  cwd: ROOT,
  encoding: "utf8",
}).trim();
const emit = (metric: string, value: number, unit: string) =>
  console.log(
    JSON.stringify({
      bench: "drift",
      metric,
      value: Math.round(value * 1000) / 1000,
      unit,
      runtime: "bun-binary",
      commit,
    }),
  );
/** Nearest-rank percentile: of 100 samples, p99 is the 99th smallest. */
const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil(xs.length * p) - 1)] ?? Number.NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const clusterDir = mkdtempSync(join(tmpdir(), "berth-bench-drift-cluster-"));
const clusterEnv = { ...process.env, BERTH_CLUSTER_DIR: clusterDir };
const up = execFileSync("bash", [join(ROOT, "scripts/cluster/cluster.sh"), "up"], {
  env: clusterEnv,
  encoding: "utf8",
});
const kubeconfig = /^KUBECONFIG=(.+)$/m.exec(up)?.[1] ?? "";
// `--binary PATH` measures another build (an older commit's, say) with this bench; default: this tree's.
const binary =
  stringFlag("--binary") ??
  join(ROOT, execFileSync("bash", [join(ROOT, "scripts/build.sh")], { cwd: ROOT, encoding: "utf8" }).trim());
const kube = KubeClient.connect({ kubeconfig });
await kube.discover();
const git = await GitFixture.start();

function tree(ns: string, n: number): Record<string, string> {
  const files: Record<string, string> = {
    "app/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
  };
  for (let i = 0; i < n; i++) {
    files[`app/cm-${i}.yaml`] =
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\n  namespace: ${ns}\ndata:\n  value: "v${i}"\n`;
  }
  return files;
}

/** Starts `berth run` on an app of n ConfigMaps; resolves once the first sync is recorded. */
async function startAgent(n: number) {
  const ns = `drift-${n}-${Math.random().toString(16).slice(2, 6)}`;
  const repo = `drift${n}`;
  const url = git.createRepo(repo);
  git.commit(repo, tree(ns, n));
  const ws = mkdtempSync(join(tmpdir(), "berth-bench-drift-"));
  const config = join(ws, "berth.yaml");
  writeFileSync(
    config,
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", interval: 1h}\napps:\n  - {name: bench, path: app, timeout: 5m, drift: heal}\nledger: {path: ledger.db}\napi: {listen: "127.0.0.1:0", anonymousRead: true}\n`,
  );
  const { child, output } = inBackground(
    spawn(binary, ["run", "--config", config, "--kubeconfig", kubeconfig], {
      stdio: ["ignore", "pipe", "pipe"],
    }),
  );
  const deadline = Date.now() + 300_000;
  while (!/"msg":"sync succeeded"/.test(output())) {
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`berth run did not sync:\n${output().slice(-2000)}`);
    await sleep(100);
  }
  await sleep(2000); // let the watches list and settle
  const rssMb = () =>
    Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1]) / 1024;
  return { ns, child, ledger: join(ws, "ledger.db"), rssMb };
}

/** Median loopback HTTP round trip, back to back and after 200 ms idle: the machine's wake-up cost. */
async function wakeCost(): Promise<{ busy: number; idle: number }> {
  const server = createServer((_, res) => res.end("ok")).listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  const { port } = server.address() as { port: number };
  const once = async () => {
    const t = performance.now();
    await (await fetch(`http://127.0.0.1:${port}/`)).text();
    return performance.now() - t;
  };
  const busy: number[] = [];
  const idle: number[] = [];
  for (let k = 0; k < 20; k++) busy.push(await once());
  for (let k = 0; k < 20; k++) {
    await sleep(200);
    idle.push(await once());
  }
  server.close();
  return { busy: pct(busy, 0.5), idle: pct(idle, 0.5) };
}

const cmRef = (ns: string, i: number) => ({
  group: "",
  version: "v1",
  kind: "ConfigMap",
  namespace: ns,
  name: `cm-${i}`,
});
try {
  const small = await startAgent(10);
  const smallRss = small.rssMb();
  small.child.kill("SIGTERM");
  const big = await startAgent(1000);
  const bigRss = big.rssMb();
  emit("rss_with_1000_objects_mb", bigRss, "MB");
  emit("rss_with_10_objects_mb", smallRss, "MB");
  emit("rss_delta_per_1000_objects_mb", bigRss - smallRss, "MB");

  // The bench's own watch on the namespace: when each value was first seen (name=value → Date.now()).
  const seen = new Map<string, number>();
  const configMaps = kube.resource("", "v1", "ConfigMap");
  if (!configMaps) throw new Error("the API server does not serve v1 ConfigMaps");
  const watch = new KindWatch(kube, {
    info: configMaps,
    labelSelector: "",
    namespace: big.ns,
    onUpdate: (u) => {
      if (u.type === "relist") return;
      const key = `${u.object.metadata?.name}=${(u.object.data as { value?: string } | undefined)?.value}`;
      if (!seen.has(key)) seen.set(key, Date.now());
    },
  });
  watch.start();
  await watch.synced;
  await sleep(500);
  const heal: number[] = [];
  const record: number[] = [];
  const sentAt: number[] = [];
  const apiShare: number[] = [];
  const berthShare: number[] = [];
  for (let e = 0; e < EDITS; e++) {
    const i = (e * 37) % 1000;
    const t0 = Date.now();
    sentAt.push(t0);
    await kube.request(
      "patch",
      "PATCH",
      `${kube.objectPath(cmRef(big.ns, i))}?fieldManager=bench-editor`,
      JSON.stringify({ data: { value: `tampered-${e}` } }),
      { "Content-Type": "application/merge-patch+json" },
    );
    for (;;) {
      const live = await kube.get(cmRef(big.ns, i));
      if ((live?.data as { value?: string } | undefined)?.value === `v${i}`) break;
      if (Date.now() - t0 > 30_000) throw new Error(`edit ${e} of cm-${i} was not healed within 30 s`);
      await sleep(5);
    }
    heal.push(Date.now() - t0);
    await sleep(50);
    const editSeen = seen.get(`cm-${i}=tampered-${e}`);
    const healSeen = seen.get(`cm-${i}=v${i}`);
    seen.delete(`cm-${i}=v${i}`); // the same object is edited again later
    if (editSeen !== undefined) apiShare.push(editSeen - t0);
    if (editSeen !== undefined && healSeen !== undefined) berthShare.push(healSeen - editSeen);
  }
  await watch.stop();
  await sleep(500);
  const rows = readLedger(
    big.ledger,
    (db) =>
      db.query("SELECT detected_at FROM drift_events ORDER BY id").all() as Array<{ detected_at: string }>,
  );
  rows.slice(-EDITS).forEach((r, k) => {
    const t = Date.parse(r.detected_at);
    const s = sentAt[k];
    if (s !== undefined && Number.isFinite(t)) record.push(t - s);
  });
  big.child.kill("SIGTERM");
  emit("heal_latency_p50_ms", pct(heal, 0.5), "ms");
  emit("heal_latency_p99_ms", pct(heal, 0.99), "ms");
  emit("heal_latency_max_ms", Math.max(...heal), "ms");
  emit("recorded_latency_p50_ms", pct(record, 0.5), "ms");
  emit("recorded_latency_p99_ms", pct(record, 0.99), "ms");
  emit("api_edit_seen_p50_ms", pct(apiShare, 0.5), "ms");
  emit("api_edit_seen_p99_ms", pct(apiShare, 0.99), "ms");
  emit("berth_share_p50_ms", pct(berthShare, 0.5), "ms");
  emit("berth_share_p99_ms", pct(berthShare, 0.99), "ms");
  emit("berth_share_max_ms", Math.max(...berthShare), "ms");
  emit("berth_share_samples", berthShare.length, "edits");
  emit("drift_events_recorded", rows.length, "events");
  const wake = await wakeCost();
  emit("loopback_http_back_to_back_ms", wake.busy, "ms");
  emit("loopback_http_after_200ms_idle_ms", wake.idle, "ms");
} finally {
  await git.close();
  execFileSync("bash", [join(ROOT, "scripts/cluster/cluster.sh"), "down"], {
    env: clusterEnv,
    stdio: "ignore",
  });
}
