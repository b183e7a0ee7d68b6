/**
 * Benchmark: what the JavaScript heap of `berth run` holds with a 1,000-object app watched (issue 17, item 1).
 *   bun scripts/bench/heap.ts [--settle-ms N]
 * In this process, wired as `berth run` wires it (wire, wireDrift's watch view and drift watcher, the sync
 * loop; no HTTP API), against the shared control plane and a Git server in this process: the generated app
 * (scripts/bench/tree-1000.ts) is synced, then resynced once (a warm no-op), and left to settle. Then, after a
 * full GC, bun:jsc heapStats() (heap size, object count, the commonest object types), and the retained size of
 * each holder, measured as the heap it frees when dropped, one after another: the health verdict cache
 * (agent/policy/health-rules.ts); the render port with its render cache (agent/render/render-cache.ts; its
 * objects, and the plan's prepared copies keyed by them, turned out to stay alive after it went: see
 * scripts/bench/README.md); one render held again (negative: what a render adds); the loop (its last result per
 * app, its source snapshot); the watch view with the drift watcher (agent/kube/view.ts); the ledger; the rest of
 * the wiring; the parse workers (heaps of their own: RSS only). Also what the view holds per kind: the mean
 * count of values and JSON bytes of each part of an object (metadata, berth's field set, other managers'
 * entries, spec, status, data).
 * Prints one JSON object per line. The heap before berth does anything includes this script's harness (the
 * Git server); every holder figure is a difference, so it does not. The machine is shared: the load is printed.
 */
import { heapStats } from "bun:jsc";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { renderPortFor, type Wired, wire, wireDrift } from "../../agent/cli/wire.ts";
import { silentLogger } from "../../agent/engine/log.ts";
import { SyncLoop } from "../../agent/engine/loop.ts";
import { FIELD_MANAGER, type KubeObject } from "../../agent/object/object.ts";
import { RuleHealthJudge } from "../../agent/policy/health-rules.ts";
import { sharedParsePool } from "../../agent/render/parse-pool.ts";
import { writeConfig } from "../../test/support/berth.ts";
import { GitFixture } from "../../test/support/git.ts";
import { numberFlag } from "./flags.ts";
import { tree1000 } from "./tree-1000.ts";

const ROOT = join(import.meta.dir, "..", "..");
const SETTLE_MS = numberFlag("--settle-ms", 5000);
const OBJECTS = 1001; // the Namespace and the 1,000
const commit = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], {
  cwd: ROOT,
  encoding: "utf8",
}).trim();
const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mb = (bytes: number) => Math.round((bytes / 1048576) * 100) / 100;
const rssMb = () =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? Number.NaN) / 1024;
const print = (fields: Record<string, unknown>) =>
  console.log(JSON.stringify({ bench: "heap", ...fields, commit, load: load() }));

/** The heap after a full collection (twice: a WeakMap's values go one collection after their keys). */
async function settled(): Promise<{ heap: number; objects: number; extra: number; rss: number }> {
  for (let i = 0; i < 3; i++) {
    Bun.gc(true);
    await sleep(50);
  }
  const h = heapStats();
  return { heap: h.heapSize, objects: h.objectCount, extra: h.extraMemorySize, rss: rssMb() };
}

const typeCounts = () => heapStats().objectTypeCounts as Record<string, number>;

/** JavaScript values (objects, arrays, strings, numbers …) in a JSON value: what each costs the heap, roughly. */
function nodes(v: unknown): number {
  if (v === null || typeof v !== "object") return 1;
  let n = 1;
  for (const x of Object.values(v as Record<string, unknown>)) n += nodes(x);
  return n;
}

/** Per kind: objects held, and the mean values and JSON bytes of each part of one (what the view keeps). */
function composition(objects: KubeObject[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const o of objects) {
    const { managedFields = [], ...meta } = o.metadata;
    const ours = managedFields.filter((m) => m.manager === FIELD_MANAGER && m.operation === "Apply");
    const others = managedFields.filter((m) => !ours.includes(m));
    const parts: Record<string, unknown> = {
      metadata: meta,
      "managedFields (berth's Apply entry)": ours,
      "managedFields (other managers)": others,
    };
    for (const [k, v] of Object.entries(o)) if (k !== "metadata") parts[k] = v;
    const row = out[o.kind] ?? { objects: 0 };
    out[o.kind] = row;
    row.objects = (row.objects ?? 0) + 1;
    for (const [k, v] of Object.entries(parts)) {
      row[`${k} values`] = (row[`${k} values`] ?? 0) + nodes(v);
      row[`${k} json bytes`] = (row[`${k} json bytes`] ?? 0) + JSON.stringify(v ?? null).length;
    }
  }
  for (const row of Object.values(out))
    for (const k of Object.keys(row))
      if (k !== "objects") row[k] = Math.round((row[k] ?? 0) / (row.objects ?? 1));
  return out;
}

// The shared control plane (started if it is not running), without loading client-node into this heap.
const SCRIPT = join(ROOT, "scripts", "cluster", "cluster.sh");
const kubeconfig = /^KUBECONFIG=(.+)$/m.exec(execFileSync("bash", [SCRIPT, "up"], { encoding: "utf8" }))?.[1];
if (!kubeconfig) throw new Error("scripts/cluster/cluster.sh up printed no KUBECONFIG");
const bin = /^BERTH_CLUSTER_BIN=(.+)$/m.exec(
  execFileSync("bash", [SCRIPT, "env"], { encoding: "utf8" }),
)?.[1];
const kubectl = (...args: string[]) =>
  execFileSync(join(bin ?? "", "kubectl"), ["--kubeconfig", kubeconfig, ...args], { encoding: "utf8" });

const git = await GitFixture.start();
const tag = Math.random().toString(16).slice(2, 8);
const ns = `heap-${tag}`;
const app = `heap-${tag}`;
const url = git.createRepo(`heap${tag}`);
git.commit(`heap${tag}`, tree1000(ns, "1"));
const config = writeConfig(
  `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", interval: 1h}\napps:\n  - {name: ${app}, path: app, timeout: 5m}\nledger: {path: $DIR/ledger.db}\n`,
);

try {
  const before = await settled();
  const startTypes = typeCounts();
  // Only the finished syncs' outcomes are kept: holding every event would hold what they carry.
  const outcomes: string[] = [];
  let w: Wired | undefined = await wire({ config, kubeconfig }, silentLogger, (e) => {
    if (e.type === "finished") outcomes.push(`${e.outcome}: ${e.message}`);
  });
  let drift: ReturnType<typeof wireDrift> | undefined = wireDrift(w, silentLogger);
  let loop: SyncLoop | undefined = new SyncLoop(w.deps, w.config.apps, { interval: 3_600_000 });
  const running = loop.start();
  const finished = async (n: number) => {
    const t0 = performance.now();
    while (outcomes.length < n) {
      if (performance.now() - t0 > 600_000) throw new Error("the sync did not finish in 10 minutes");
      await sleep(100);
    }
  };
  await finished(1);
  await loop.triggerAndWait(app, "bench");
  await finished(2);
  await sleep(SETTLE_MS); // the Deployments' status churn after the first sync settles
  const full = await settled();
  const viewSize = drift.view.size;
  const types = Object.entries(typeCounts())
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15);
  print({
    metric: "heap_1000_watched",
    heap_mb: mb(full.heap),
    heap_over_start_mb: mb(full.heap - before.heap),
    objects: full.objects,
    objects_over_start: full.objects - before.objects,
    extra_memory_mb: mb(full.extra),
    rss_mb: Math.round(full.rss * 10) / 10,
    view_objects: viewSize,
    syncs: outcomes,
    top_object_types: Object.fromEntries(types),
  });

  print({ metric: "view_composition", per_kind: composition(drift.view.objectsOf(app)) });

  // Each holder dropped in turn; what the heap loses is what it held (and nothing else held).
  const holders: Array<[string, () => void | Promise<void>]> = [];
  let wired: Wired | undefined = w;
  w = undefined;
  holders.push([
    "health verdict cache (RuleHealthJudge)",
    () => {
      if (!wired) return;
      // The same rules and fallback in a new judge: only the verdict cache is left behind.
      const old = wired.deps.health as unknown as { rules: RuleHealthJudge["assess"]; fallback: never };
      wired.deps.health = new RuleHealthJudge(old.rules as never, old.fallback);
    },
  ]);
  holders.push([
    "render cache + plan's prepared copies",
    () => {
      if (wired) wired.deps.render = renderPortFor(wired.config, wired.kube, wired.clientFor, silentLogger);
    },
  ]);
  let _heldRender: unknown;
  holders.push([
    "one render result alone (held again; negative: what it adds)",
    async () => {
      if (!wired) return;
      const spec = wired.config.apps[0];
      const snapshot = await wired.source.snapshot(await wired.source.resolve());
      if (spec) _heldRender = await wired.deps.render(snapshot, spec);
    },
  ]);
  holders.push([
    "the loop (last result per app: plan and health; source snapshot)",
    async () => {
      _heldRender = undefined;
      await loop?.stop();
      await running;
      loop = undefined;
    },
  ]);
  holders.push([
    "watch view + drift watcher",
    async () => {
      await drift?.close();
      drift = undefined;
      if (wired) delete wired.deps.live;
    },
  ]);
  holders.push([
    "ledger (closed)",
    () => {
      wired?.ledger.close();
    },
  ]);
  holders.push([
    "the rest of the wiring (sources and their Git object caches, kube client, metrics)",
    () => {
      wired = undefined;
    },
  ]);
  let last = full;
  let lastTypes = typeCounts();
  for (const [name, drop] of holders) {
    await drop();
    const now = await settled();
    const types = typeCounts();
    print({
      metric: "holder_retained",
      holder: name,
      heap_mb: mb(last.heap - now.heap),
      objects: last.objects - now.objects,
      per_watched_object_bytes: Math.round((last.heap - now.heap) / OBJECTS),
      rss_mb: Math.round((last.rss - now.rss) * 10) / 10,
      freed_object_types: Object.fromEntries(
        Object.keys({ ...lastTypes, ...types })
          .map((t) => [t, (lastTypes[t] ?? 0) - (types[t] ?? 0)] as const)
          .filter(([, n]) => n !== 0)
          .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))
          .slice(0, 6),
      ),
    });
    last = now;
    lastTypes = types;
  }
  const rssBefore = rssMb();
  await sharedParsePool().close();
  await sleep(500);
  print({
    metric: "holder_retained",
    holder: "parse workers (own heaps; RSS freed when closed)",
    rss_mb: Math.round((rssBefore - rssMb()) * 10) / 10,
  });
  print({
    metric: "heap_left",
    heap_mb: mb(last.heap),
    heap_over_start_mb: mb(last.heap - before.heap),
    objects_over_start: last.objects - before.objects,
    types_over_start: Object.fromEntries(
      Object.entries(lastTypes)
        .map(([t, n]) => [t, n - (startTypes[t] ?? 0)] as const)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 12),
    ),
  });
} finally {
  await git.close();
  try {
    kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found");
  } catch {} // the shared control plane may have been reset meanwhile
}
process.exit(0);
