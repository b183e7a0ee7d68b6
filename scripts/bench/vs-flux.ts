/**
 * berth against Flux (source-controller + kustomize-controller v1.9.4, built by scripts/bench/flux-build.sh from
 * the Go module proxy and run out of cluster), on one control plane of the bench's own and one Git server, with
 * the same 1,000-object app (scripts/bench/tree-1000.ts: 400 ConfigMaps, 300 Services, 300 Deployments and a
 * Namespace), interleaved: per run Flux then berth, each into a fresh namespace. Not part of `npm test`.
 *
 * How Flux runs (the recipe): KUBECONFIG in the environment, leader election off (its default), distinct
 * metrics/health ports, source-controller's artifact storage on a loopback port
 * (--storage-addr/--storage-adv-addr/--storage-path) with kustomize-controller pointed at it
 * (SOURCE_CONTROLLER_LOCALHOST), --interval-jitter-percentage=0 on both; a GitRepository (branch main,
 * interval 1m) and a Kustomization (path ./app, prune, wait, timeout 5m, interval 1m) in namespace flux-system.
 * Flux is "applied" when the Kustomization's status.lastAppliedRevision is main@sha1:<commit> and Ready is True
 * (wait: true, so every object healthy); berth when the app is Synced at the commit with health Current.
 *
 * Figures per agent (the JSON gives Flux, berth and Flux÷berth):
 *   first sync   Flux: the two objects created (controllers started and idle) → applied; berth: process start →
 *                applied (so berth's includes its own start-up);
 *   no-op        Flux: the Kustomization annotated reconcile.fluxcd.io/requestedAt → status.lastHandledReconcileAt
 *                matches; berth: POST /api/v1/apps/bench/sync → its attempt finished (metrics); and the agent's
 *                requests meanwhile from the API server's audit log (writes, dry-runs, reads);
 *   push→live    commit changing cm-0, the GitRepository annotated / berth's sync asked → the value live;
 *   drift        an out-of-band edit of one ConfigMap → reverted (Flux only at its 1 m interval; limit 150 s);
 *   RSS          idle (10 s after the first sync) and peak (VmHWM), both controllers summed for Flux;
 *   CPU          the agent's CPU seconds and the API server's + etcd's, during the first sync.
 * Every step is checked; a failure exits non-zero.
 * `--berth-jit`: each run also syncs berth with BERTH_JIT=on (the JIT kept; `berth run` turns it off by default),
 * printed beside the default as `berthJitOnFigures` with its own ratios.
 * Usage: bun scripts/bench/vs-flux.ts [--runs 3] [--berth-jit]   (first use builds Flux: ~10 min cold, cached after)
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inBackground } from "../../test/support/binary.ts";
import { GitFixture } from "../../test/support/git.ts";
import { freePort } from "../../test/support/ports.ts";
import { numberFlag } from "./flags.ts";
import {
  binaryCopy,
  cmValue,
  commitOfTree,
  cpuSeconds,
  loadSampler,
  note,
  onStop,
  ownCluster,
  procSample,
  ROOT,
  range,
  round,
  sleep,
  startAgent,
  tamper,
  until,
} from "./harness.ts";
import { tree1000 } from "./tree-1000.ts";

const RUNS = numberFlag("--runs", 3);
const BERTH_JIT = process.argv.includes("--berth-jit");
const flux = execFileSync("bash", [join(ROOT, "scripts/bench/flux-build.sh")], {
  encoding: "utf8",
  stdio: ["ignore", "pipe", "inherit"],
}).trim();
const version = (name: string) => readFileSync(join(flux, "bin", `${name}.version`), "utf8").trim();
const cluster = ownCluster("vs-flux");
const git = await GitFixture.start();
const binary = binaryCopy(mkdtempSync(join(tmpdir(), "berth-vs-flux-bin-")));
for (const crd of readdirSync(join(flux, "crds")))
  cluster.kubectl("apply", "--server-side", "-f", join(flux, "crds", crd));
cluster.kubectl("create", "namespace", "flux-system");

const KS = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations";
const GR = "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories";
const json = (method: string, path: string, body?: unknown, type = "application/json") =>
  cluster.kube.request("bench", method, path, body === undefined ? undefined : JSON.stringify(body), {
    "Content-Type": type,
  }) as Promise<Record<string, unknown>>;
const annotate = (path: string, value: string) =>
  json(
    "PATCH",
    path,
    { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": value } } },
    "application/merge-patch+json",
  );

interface Figures {
  firstSyncS: number;
  noopS: number;
  noopWrites: number;
  noopDryRuns: number;
  noopReads: number;
  pushLiveS: number;
  driftS: number;
  idleMb: number;
  peakMb: number;
  agentCpuS: number;
  serverCpuS: number;
}

/** Starts a Flux controller; returns its pid and a stop function. */
async function controller(name: string, args: string[], env: Record<string, string>) {
  const metrics = await freePort();
  const health = await freePort();
  const proc = inBackground(
    spawn(
      join(flux, "bin", name),
      [
        `--metrics-addr=127.0.0.1:${metrics}`,
        `--health-addr=127.0.0.1:${health}`,
        "--interval-jitter-percentage=0",
        ...args,
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, KUBECONFIG: cluster.kubeconfig, ...env } },
    ),
  );
  onStop(() => proc.child.kill("SIGKILL"));
  await until(
    `${name} ready`,
    120_000,
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`${name} exited:\n${proc.output().slice(-2000)}`);
      return fetch(`http://127.0.0.1:${health}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
    },
    200,
  );
  return {
    pid: proc.child.pid as number,
    stop: async () => {
      proc.child.kill("SIGTERM");
      await proc.exited;
    },
  };
}

async function runFlux(run: number): Promise<Figures> {
  const ns = `flux-${run}-${Math.random().toString(16).slice(2, 6)}`;
  const repo = `flux${run}-${ns}`;
  const url = git.createRepo(repo);
  const sha = git.commit(repo, tree1000(ns, "1"));
  const storage = await freePort();
  const sc = await controller(
    "source-controller",
    [
      `--storage-addr=127.0.0.1:${storage}`,
      `--storage-adv-addr=127.0.0.1:${storage}`,
      `--storage-path=${mkdtempSync(join(tmpdir(), "flux-storage-"))}`,
    ],
    {},
  );
  const kc = await controller("kustomize-controller", [], {
    SOURCE_CONTROLLER_LOCALHOST: `127.0.0.1:${storage}`,
  });
  const pids = [sc.pid, kc.pid];
  const rss = () =>
    pids
      .map((p) => procSample(p))
      .reduce((a, s) => ({ rss: a.rss + s.rssMb, hwm: a.hwm + s.hwmMb }), { rss: 0, hwm: 0 });
  const cpu = () => pids.reduce((a, p) => a + cpuSeconds(p), 0);
  try {
    const name = `bench-${run}`;
    const applied = async (commit: string) => {
      const k = await json("GET", `${KS}/${name}`);
      const status = k.status as
        | {
            lastAppliedRevision?: string;
            conditions?: Array<{ type: string; status: string; message?: string }>;
          }
        | undefined;
      const ready = status?.conditions?.find((c) => c.type === "Ready");
      if (
        ready?.status === "False" &&
        /failed|error/i.test(ready.message ?? "") &&
        !/progress/i.test(ready.message ?? "")
      )
        note(`Flux Ready=False: ${ready.message}`);
      return status?.lastAppliedRevision === `main@sha1:${commit}` && ready?.status === "True";
    };
    const cpu0 = cpu();
    const server0 = cluster.serverCpu();
    const t0 = performance.now();
    await json("POST", GR, {
      apiVersion: "source.toolkit.fluxcd.io/v1",
      kind: "GitRepository",
      metadata: { name, namespace: "flux-system" },
      spec: { url, ref: { branch: "main" }, interval: "1m" },
    });
    await json("POST", KS, {
      apiVersion: "kustomize.toolkit.fluxcd.io/v1",
      kind: "Kustomization",
      metadata: { name, namespace: "flux-system" },
      spec: {
        interval: "1m",
        sourceRef: { kind: "GitRepository", name },
        path: "./app",
        prune: true,
        wait: true,
        timeout: "5m",
      },
    });
    await until("Flux applied the first commit", 900_000, () => applied(sha), 100);
    const firstSyncS = (performance.now() - t0) / 1000;
    const agentCpuS = cpu() - cpu0;
    const serverCpuS = cluster.serverCpu() - server0;
    await sleep(10_000);
    const idleMb = rss().rss;

    const since = new Date();
    const stamp = String(Date.now());
    const n0 = performance.now();
    await annotate(`${KS}/${name}`, stamp);
    await until(
      "Flux handled the no-op",
      300_000,
      async () => {
        const k = await json("GET", `${KS}/${name}`);
        return (
          (k.status as { lastHandledReconcileAt?: string } | undefined)?.lastHandledReconcileAt === stamp
        );
      },
      50,
    );
    const noopS = (performance.now() - n0) / 1000;
    await sleep(1000);
    const noop = cluster.audit(since, "kustomize-controller");

    const sha2 = git.commit(repo, {
      "app/config/cm-0.yaml": tree1000(ns, "2")["app/config/cm-0.yaml"] as string,
    });
    const p0 = performance.now();
    await annotate(`${GR}/${name}`, String(Date.now()));
    await until(
      "Flux made the change live",
      300_000,
      async () => (await cmValue(cluster.kube, ns, "cm-0", "version")) === "2",
    );
    const pushLiveS = (performance.now() - p0) / 1000;
    await until("Flux recorded the change", 300_000, () => applied(sha2), 100);

    const d0 = performance.now();
    await tamper(cluster.kube, ns, "cm-5", "index", "tampered");
    await until(
      "Flux reverted the edit",
      150_000,
      async () => (await cmValue(cluster.kube, ns, "cm-5", "index")) === "5",
      20,
    );
    const driftS = (performance.now() - d0) / 1000;
    const peakMb = rss().hwm;
    await json("DELETE", `${KS}/${name}`);
    await json("DELETE", `${GR}/${name}`);
    return {
      firstSyncS,
      noopS,
      noopWrites: noop.writes,
      noopDryRuns: noop.dryRuns,
      noopReads: noop.reads,
      pushLiveS,
      driftS,
      idleMb,
      peakMb,
      agentCpuS,
      serverCpuS,
    };
  } finally {
    await kc.stop();
    await sc.stop();
    cluster.kubectl("delete", "namespace", ns, "--wait=false");
  }
}

async function runBerth(run: number, env?: Record<string, string>): Promise<Figures> {
  const ns = `berth-${run}-${Math.random().toString(16).slice(2, 6)}`;
  const repo = `berth${run}-${ns}`;
  const url = git.createRepo(repo);
  git.commit(repo, tree1000(ns, "1"));
  const server0 = cluster.serverCpu();
  const agent = await startAgent({
    binary,
    kubeconfig: cluster.kubeconfig,
    url,
    apps: [{ name: "bench", path: "app" }],
    ...(env ? { env } : {}),
  });
  try {
    const agentCpuS = cpuSeconds(agent.pid);
    const serverCpuS = cluster.serverCpu() - server0;
    await sleep(10_000);
    const idleMb = procSample(agent.pid).rssMb;

    const count = async () =>
      [...(await agent.metrics("berth_reconcile_duration_seconds_count")).values()][0] ?? 0;
    const before = await count();
    const since = new Date();
    const n0 = performance.now();
    await agent.api("POST", "/api/v1/apps/bench/sync");
    await until("berth's no-op attempt finished", 300_000, async () => (await count()) > before);
    const noopS = (performance.now() - n0) / 1000;
    await sleep(1000);
    const noop = cluster.audit(since, "berth");

    const sha2 = git.commit(repo, {
      "app/config/cm-0.yaml": tree1000(ns, "2")["app/config/cm-0.yaml"] as string,
    });
    const p0 = performance.now();
    await agent.api("POST", "/api/v1/apps/bench/sync");
    await until(
      "berth made the change live",
      300_000,
      async () => (await cmValue(cluster.kube, ns, "cm-0", "version")) === "2",
    );
    const pushLiveS = (performance.now() - p0) / 1000;
    await agent.allSynced(300_000, sha2);

    const d0 = performance.now();
    await tamper(cluster.kube, ns, "cm-5", "index", "tampered");
    await until(
      "berth reverted the edit",
      150_000,
      async () => (await cmValue(cluster.kube, ns, "cm-5", "index")) === "5",
      5,
    );
    const driftS = (performance.now() - d0) / 1000;
    return {
      firstSyncS: agent.firstSyncS,
      noopS,
      noopWrites: noop.writes,
      noopDryRuns: noop.dryRuns,
      noopReads: noop.reads,
      pushLiveS,
      driftS,
      idleMb,
      peakMb: agent.peakMb(),
      agentCpuS,
      serverCpuS,
    };
  } finally {
    const code = await agent.stop();
    cluster.kubectl("delete", "namespace", ns, "--wait=false");
    if (code !== 0) stopFailures.push(`berth run ${run} exited ${code} on SIGTERM`);
  }
}

const stopFailures: string[] = [];
const load = loadSampler();
const fluxRuns: Figures[] = [];
const berthRuns: Figures[] = [];
const berthJitRuns: Figures[] = [];
try {
  for (let run = 0; run < RUNS; run++) {
    fluxRuns.push(await runFlux(run));
    note(`run ${run} Flux: ${JSON.stringify(fluxRuns.at(-1))}`);
    berthRuns.push(await runBerth(run));
    note(`run ${run} berth: ${JSON.stringify(berthRuns.at(-1))}`);
    if (BERTH_JIT) {
      berthJitRuns.push(await runBerth(run + 100, { BERTH_JIT: "on" }));
      note(`run ${run} berth, JIT on: ${JSON.stringify(berthJitRuns.at(-1))}`);
    }
  }
} finally {
  load.stop();
  await git.close();
  cluster.down();
}
const keys = Object.keys(fluxRuns[0] ?? {}) as Array<keyof Figures>;
const summary = (runs: Figures[]) => Object.fromEntries(keys.map((k) => [k, range(runs.map((r) => r[k]))]));
const fluxS = summary(fluxRuns);
const berthS = summary(berthRuns);
const berthJitS = summary(berthJitRuns);
// Flux ÷ berth of the medians (> 1: berth is ahead); a 0 berth figure gives no ratio.
const ratios = (b: ReturnType<typeof summary>) =>
  Object.fromEntries(
    keys.map((k) => {
      const m = b[k]?.median ?? 0;
      return [k, m === 0 ? null : round((fluxS[k]?.median ?? Number.NaN) / m, 2)];
    }),
  );
console.log(
  JSON.stringify({
    bench: "vs-flux",
    commit: commitOfTree(),
    flux: {
      "source-controller": version("source-controller"),
      "kustomize-controller": version("kustomize-controller"),
    },
    objects: 1001,
    runs: RUNS,
    fluxFigures: fluxS,
    berthFigures: berthS,
    ratioFluxOverBerth: ratios(berthS),
    ...(BERTH_JIT ? { berthJitOnFigures: berthJitS, ratioFluxOverBerthJitOn: ratios(berthJitS) } : {}),
    load1: load.summary(),
    failures: stopFailures,
  }),
);
if (stopFailures.length > 0) process.exit(1);
