/**
 * Benchmark: where the compiled binary's memory goes, and its resident memory at rest and at work.
 *   bun scripts/bench/footprint.ts [--runs N] [--binary PATH] [--env KEY=VALUE]... [--no-modules] [--no-live]
 *     [--smaps DIR]
 * 1. Breakdown: one probe binary per module (`bun build --compile` of a file that only imports it), its resident
 *    memory after a full GC minus the bare runtime's, and the JavaScript heap (bun:jsc heapStats) it leaves.
 * 2. Live, against the shared control plane and a Git server in this process, `berth run` of the binary:
 *    start → /readyz and idle RSS with one app of one object (3 s after ready, its file-backed part, and at rest
 *    35 s after ready, once the parse workers stopped); start → /readyz (the first sync) and peak RSS (VmHWM) of
 *    1,000 objects, RSS with them watched, the warm no-op resync (every 2 s) from /metrics (mean duration and
 *    API requests), and one ConfigMap changed (its attempt from the ledger, and commit → live).
 * Prints one JSON object per line; each live figure carries every run's value, its range and /proc/loadavg
 * at each run (the machine is shared: say so with the figures). `--env BUN_OPTIONS=--smol` tries a runtime flag.
 * `--smaps DIR` keeps /proc/PID/smaps of the agent idle with one object and with 1,000 watched (per run), to see
 * which mappings hold the memory.
 * Each `berth run` starts from a fresh copy of the binary: a file just written is wholly in the page cache, so
 * every run, and every binary compared, starts alike (a binary partly out of the cache measured up to 5 MB lower:
 * scripts/bench/README.md, "The page cache moves RSS too").
 */
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeConfig } from "../../test/support/berth.ts";
import { kubectl, useCluster } from "../../test/support/cluster.ts";
import { GitFixture } from "../../test/support/git.ts";
import { numberFlag } from "./flags.ts";
import { tree1000 } from "./tree-1000.ts";

const ROOT = join(import.meta.dir, "..", "..");
const BUN = join(ROOT, "node_modules", ".bin", "bun");
const RUNS = numberFlag("--runs", 3);
const argv = process.argv;
const flagValues = (flag: string) =>
  argv.flatMap((a, i) => (a === flag && argv[i + 1] ? [argv[i + 1] as string] : []));
const SMAPS = flagValues("--smaps")[0];
const extraEnv = Object.fromEntries(
  flagValues("--env").map((kv) => [kv.slice(0, kv.indexOf("=")), kv.slice(kv.indexOf("=") + 1)]),
);
const commit = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], {
  cwd: ROOT,
  encoding: "utf8",
}).trim();
const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
const round = (x: number) => Math.round(x * 1000) / 1000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const variant = Object.keys(extraEnv).length > 0 ? JSON.stringify(extraEnv) : "default";

function emit(metric: string, values: number[], unit: string, extra: Record<string, unknown> = {}): void {
  console.log(
    JSON.stringify({
      bench: "footprint",
      metric,
      value: round(median(values)),
      min: round(Math.min(...values)),
      max: round(Math.max(...values)),
      runs: values.map(round),
      unit,
      runtime: "bun-binary",
      variant,
      commit,
      ...extra,
    }),
  );
}

/** One line of /proc/PID/status, in MB. */
function statusMb(pid: number | string, field: string): number {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)?.[1] ?? Number.NaN) / 1024;
}

// ---- 1. The breakdown: what each module costs once imported into a compiled binary. ----

const PROBES: Array<[name: string, module: string | undefined]> = [
  ["runtime (bun, nothing imported)", undefined],
  ["@kubernetes/client-node (whole package)", "@kubernetes/client-node"],
  ["@kubernetes/client-node KubeConfig only (dist/config.js)", "@kubernetes/client-node/dist/config.js"],
  ["isomorphic-git", "isomorphic-git"],
  ["ajv (library)", "ajv"],
  ["ajv + compiled config schema (agent/config/schema-check.ts)", "agent/config/schema-check.ts"],
  ["CEL (@marcbachmann/cel-js)", "@marcbachmann/cel-js"],
  ["CEL rules + builtin packs (agent/policy/rule-set.ts)", "agent/policy/rule-set.ts"],
  ["hono", "hono"],
  ["HTTP API + status page + OpenAPI (agent/api/app.ts)", "agent/api/app.ts"],
  ["yaml", "yaml"],
  ["age-encryption (SOPS)", "age-encryption"],
  ["the ledger (agent/ledger/ledger.ts, bun:sqlite)", "agent/ledger/ledger.ts"],
  ["the kube client (agent/kube/client.ts)", "agent/kube/client.ts"],
  ["everything the binary imports at start (agent/cli/cli.ts)", "agent/cli/cli.ts"],
];

function probe(
  module: string | undefined,
  dir: string,
  i: number,
): { rss: number; heap: number; objects: number } {
  const target = module === undefined ? undefined : module.startsWith("agent/") ? join(ROOT, module) : module;
  const file = join(ROOT, `.footprint-probe-${process.pid}-${i}.ts`);
  writeFileSync(
    file,
    `${target ? `import * as M from ${JSON.stringify(target)};\n(globalThis as any).keep = M;\n` : ""}` +
      `Bun.gc(true);\nconst h = require("bun:jsc").heapStats();\n` +
      `const s = require("node:fs").readFileSync("/proc/self/status", "utf8");\n` +
      `console.log(JSON.stringify({ rss: Number(/VmRSS:\\s+(\\d+)/.exec(s)[1]) / 1024, heap: h.heapSize / 1048576, objects: h.objectCount }));\n`,
  );
  const exe = join(dir, `probe-${i}`);
  try {
    execFileSync(BUN, ["build", file, "--compile", "--outfile", exe], { cwd: ROOT, stdio: "ignore" });
  } finally {
    rmSync(file, { force: true });
  }
  const runs = [0, 1, 2].map(
    () =>
      JSON.parse(execFileSync(exe, { encoding: "utf8", env: { ...process.env, ...extraEnv } })) as {
        rss: number;
        heap: number;
        objects: number;
      },
  );
  return {
    rss: median(runs.map((r) => r.rss)),
    heap: median(runs.map((r) => r.heap)),
    objects: median(runs.map((r) => r.objects)),
  };
}

if (!argv.includes("--no-modules")) {
  const dir = mkdtempSync(join(tmpdir(), "berth-footprint-"));
  try {
    let base = Number.NaN;
    PROBES.forEach(([name, module], i) => {
      const p = probe(module, dir, i);
      if (module === undefined) base = p.rss;
      console.log(
        JSON.stringify({
          bench: "footprint",
          metric: "import_rss_mb",
          module: name,
          rss_mb: round(p.rss),
          over_runtime_mb: round(p.rss - base),
          js_heap_mb: round(p.heap),
          js_objects: p.objects,
          unit: "MB",
          variant,
          commit,
          load: load(),
        }),
      );
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- 2. The binary at rest and at work. ----

if (!argv.includes("--no-live")) {
  const binary =
    flagValues("--binary")[0] ??
    join(
      ROOT,
      execFileSync("bash", [join(ROOT, "scripts/build.sh")], { cwd: ROOT, encoding: "utf8" }).trim(),
    );
  const cluster = await useCluster();
  const git = await GitFixture.start();
  const copies = mkdtempSync(join(tmpdir(), "berth-footprint-binary-"));
  let copied = 0;

  /** Starts `berth run` of a fresh copy of the binary; resolves once /readyz answers 200, with the seconds it took. */
  async function start(config: string) {
    // The copy before goes (a process still running it keeps its inode); each start has one of its own.
    rmSync(join(copies, `berth-${copied}`), { force: true });
    const copy = join(copies, `berth-${++copied}`);
    copyFileSync(binary, copy);
    const t0 = performance.now();
    const child = spawn(copy, ["run", "--config", config], {
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/root",
        KUBECONFIG: cluster.kubeconfigPath,
        ...extraEnv,
      },
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d;
    });
    child.stderr.on("data", (d: Buffer) => {
      out += d;
    });
    for (;;) {
      const base = /"api":"(http:\/\/[^"]+)"/.exec(out)?.[1];
      const ok = base
        ? await fetch(`${base}/readyz`).then(
            (r) => r.status === 200,
            () => false,
          )
        : false;
      if (ok)
        return { child, base: base as string, seconds: (performance.now() - t0) / 1000, out: () => out };
      if (performance.now() - t0 > 300_000 || child.exitCode !== null)
        throw new Error(`berth run not ready:\n${out.slice(-3000)}`);
      await sleep(5);
    }
  }
  const stop = async (child: ReturnType<typeof spawn>) => {
    child.kill("SIGTERM");
    if (child.exitCode === null) await new Promise((r) => child.on("exit", r));
  };
  /** Sum and count of the reconcile histogram and the API request total, from /metrics. */
  async function metrics(base: string) {
    const text = await (await fetch(`${base}/metrics`)).text();
    const sum = (re: RegExp) =>
      text
        .split("\n")
        .filter((l) => re.test(l))
        .reduce((a, l) => a + Number(l.split(" ").at(-1)), 0);
    const byVerb: Record<string, number> = {};
    for (const l of text.split("\n")) {
      const verb = /^berth_kube_requests_total\{verb="([^"]+)"/.exec(l)?.[1];
      if (verb) byVerb[verb] = (byVerb[verb] ?? 0) + Number(l.split(" ").at(-1));
    }
    return {
      byVerb,
      seconds: sum(/^berth_reconcile_duration_seconds_sum\{/),
      passes: sum(/^berth_reconcile_duration_seconds_count\{/),
      // Watch requests re-open every 20 s per kind (the view's stall detection): counted apart from the resync's.
      requests: sum(/^berth_kube_requests_total\{verb="(?!watch")/),
      watches: sum(/^berth_kube_requests_total\{verb="watch"/),
    };
  }

  const r: Record<string, number[]> = {
    ready: [],
    idleOne: [],
    idleOneFile: [],
    restOne: [],
    firstSync: [],
    change: [],
    changeLive: [],
    peak: [],
    idle: [],
    idleFile: [],
    noop: [],
    noopReq: [],
    noopWatch: [],
  };
  const loads: string[] = [];
  /** Each run's requests in the no-op window, by verb (the count above is their sum without watch). */
  const verbs: Array<Record<string, number>> = [];
  try {
    const oneUrl = git.createRepo("one");
    for (let run = 0; run < RUNS; run++) {
      loads.push(load());
      const ns = `fp-${run}-${Math.random().toString(16).slice(2, 6)}`;
      // One app, one object.
      git.commit("one", {
        "app/cm.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  run: "${run}"\n`,
      });
      kubectl(cluster, "create", "namespace", `${ns}-one`);
      const one = start(
        writeConfig(
          `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${oneUrl}", interval: 30s}\napps:\n  - {name: app, path: app, namespace: ${ns}-one}\nledger: {path: $DIR/ledger.db}\napi: {listen: "127.0.0.1:0", anonymousRead: true}\n`,
        ),
      );
      const a = await one;
      r.ready?.push(a.seconds);
      await sleep(3000);
      r.idleOne?.push(statusMb(a.child.pid ?? 0, "VmRSS"));
      r.idleOneFile?.push(statusMb(a.child.pid ?? 0, "RssFile"));
      if (SMAPS) copyFileSync(`/proc/${a.child.pid}/smaps`, join(SMAPS, `smaps-one-object-${run}`));
      // At rest: the parse workers stop after 30 s without work (agent/render/parse-pool.ts).
      await sleep(32_000);
      r.restOne?.push(statusMb(a.child.pid ?? 0, "VmRSS"));
      await stop(a.child);

      // 1,000 objects, resynced every 2 s. The app's name differs per run: its label selector would otherwise
      // also watch the previous run's objects, still being deleted with their namespace.
      const repo = `k${run}`;
      const url = git.createRepo(repo);
      git.commit(repo, tree1000(ns, "1"));
      const b = await start(
        writeConfig(
          `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", interval: 2s}\napps:\n  - {name: bench-${run}, path: app, timeout: 5m}\nledger: {path: $DIR/ledger.db}\napi: {listen: "127.0.0.1:0", anonymousRead: true}\n`,
        ),
      );
      r.peak?.push(statusMb(b.child.pid ?? 0, "VmHWM"));
      r.firstSync?.push(b.seconds);
      await sleep(4000); // the pods' status churn after the first sync settles
      const m0 = await metrics(b.base);
      const samples: number[] = [];
      for (let i = 0; i < 40; i++) {
        await sleep(250);
        samples.push(statusMb(b.child.pid ?? 0, "VmRSS"));
      }
      const m1 = await metrics(b.base);
      r.idle?.push(median(samples));
      r.idleFile?.push(statusMb(b.child.pid ?? 0, "RssFile"));
      if (SMAPS) copyFileSync(`/proc/${b.child.pid}/smaps`, join(SMAPS, `smaps-1000-watched-${run}`));
      if (m1.passes > m0.passes) r.noop?.push((m1.seconds - m0.seconds) / (m1.passes - m0.passes));
      r.noopReq?.push(m1.requests - m0.requests);
      r.noopWatch?.push(m1.watches - m0.watches);
      verbs.push(
        Object.fromEntries(
          Object.entries(m1.byVerb)
            .map(([verb, n]) => [verb, n - (m0.byVerb[verb] ?? 0)])
            .filter(([, n]) => n !== 0),
        ),
      );
      // One ConfigMap changed: commit → value live (the source is polled every 2 s, so up to 2 s of it is the
      // poll's wait), and the change's own attempt from its ledger entry (started → finished).
      const value = `changed-${run}`;
      git.commit(repo, { "app/config/cm-0.yaml": tree1000(ns, value)["app/config/cm-0.yaml"] as string });
      const c0 = performance.now();
      for (;;) {
        const live = kubectl(cluster, "get", "configmap", "cm-0", "-n", ns, "-o", "jsonpath={.data.version}");
        if (live.trim() === value) break;
        if (performance.now() - c0 > 120_000)
          throw new Error(`the change was not live within 120 s:\n${b.out().slice(-3000)}`);
        await sleep(50);
      }
      r.changeLive?.push((performance.now() - c0) / 1000);
      const [entry] = (
        (await (await fetch(`${b.base}/api/v1/ledger?limit=1`)).json()) as {
          entries: Array<{ startedAt: string; finishedAt?: string }>;
        }
      ).entries;
      if (entry?.finishedAt)
        r.change?.push((Date.parse(entry.finishedAt) - Date.parse(entry.startedAt)) / 1000);
      await stop(b.child);
      try {
        kubectl(cluster, "delete", "namespace", ns, `${ns}-one`, "--wait=false", "--ignore-not-found");
      } catch {} // the shared control plane may have been reset meanwhile
    }
  } finally {
    await git.close();
    rmSync(copies, { recursive: true, force: true });
  }
  const extra = { load: loads };
  emit("start_to_readyz_s", r.ready ?? [], "s", extra);
  emit("idle_rss_one_object_mb", r.idleOne ?? [], "MB", extra);
  // File-backed pages (the binary's runtime code and embedded bundle) within that RSS.
  emit("idle_rss_one_object_file_backed_mb", r.idleOneFile ?? [], "MB", extra);
  emit("rest_rss_one_object_mb", r.restOne ?? [], "MB", extra);
  emit("first_sync_1000_to_readyz_s", r.firstSync ?? [], "s", extra);
  emit("peak_rss_first_sync_1000_mb", r.peak ?? [], "MB", extra);
  emit("idle_rss_1000_watched_mb", r.idle ?? [], "MB", extra);
  emit("idle_rss_1000_watched_file_backed_mb", r.idleFile ?? [], "MB", extra);
  emit("warm_noop_resync_1000_s", r.noop ?? [], "s", extra);
  emit("one_change_attempt_1000_s", r.change ?? [], "s", extra);
  emit("one_change_commit_to_live_1000_s", r.changeLive ?? [], "s", { ...extra, poll: "2s" });
  emit("warm_noop_resync_1000_api_requests", r.noopReq ?? [], "requests", { ...extra, by_verb: verbs });
  emit("watch_requests_in_noop_window", r.noopWatch ?? [], "requests", extra);
}
