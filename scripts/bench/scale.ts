/**
 * Scale: the compiled binary's `berth run` on one app of 100, 1,000 and 10,000 objects, and on 10,000 objects in
 * 100 apps (100 each), against a control plane of the bench's own. Objects are 90% ConfigMaps and 10% Services,
 * one Namespace per app. Per shape it measures:
 *   first sync   agent start → every app Synced and health Current (read from the agent's API);
 *   warm no-op   every app asked to sync at once (POST /api/v1/apps/NAME/sync) with nothing changed → every
 *                app's attempt finished (berth_reconcile_duration_seconds_count moved; the end is the newest
 *                finish the ledger holds then), and the API requests berth sent meanwhile
 *                (berth_kube_requests_total);
 *   one change   commit changing one ConfigMap, sync asked through the API → the new value read from the API server;
 *   drift        an out-of-band edit of one ConfigMap → healed (read back from the API server);
 *   RSS          idle (10 s after the first sync) and peak (VmHWM) of the binary; the ledger's bytes.
 * Every step is checked (app views, ledger outcomes, live values); a failure exits non-zero.
 * Prints one JSON object (the curve) and then a text table on stderr.
 * Usage: bun scripts/bench/scale.ts [--shapes 100x1,1000x1,10000x1,10000x100] [--runs 1] [--cpu-prof DIR]
 *   --cpu-prof DIR  the agent writes a Markdown CPU profile per run into DIR (Bun's --cpu-prof-md); timings then
 *                   include the profiler's cost.
 * Time on this 2-core machine under load: 100 ≈ 1 min, 1,000 ≈ 2 min, 10,000 ≈ 8-15 min each (plus ~1 min to
 * start the control plane).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GitFixture } from "../../test/support/git.ts";
import { numberFlag } from "./flags.ts";
import {
  type Agent,
  binaryCopy,
  cmValue,
  commitOfTree,
  lastFinishedAt,
  ledgerOutcomes,
  loadSampler,
  note,
  ownCluster,
  procSample,
  range,
  round,
  sleep,
  startAgent,
  stringFlag,
  tamper,
  until,
} from "./harness.ts";

const SHAPES = (stringFlag("--shapes") ?? "100x1,1000x1,10000x1,10000x100").split(",").map((s) => {
  const [objects, apps] = s.split("x").map(Number);
  return { objects: objects as number, apps: apps ?? 1 };
});
const RUNS = numberFlag("--runs", 1);
const CPU_PROF = stringFlag("--cpu-prof");

const cluster = ownCluster("scale");
const git = await GitFixture.start();
const binary = binaryCopy(mkdtempSync(join(tmpdir(), "berth-scale-bin-")));

/** One app's files under `path`: a Namespace and `n` objects (every 10th a Service, the rest ConfigMaps). */
function appFiles(path: string, ns: string, n: number, version: string): Record<string, string> {
  const files: Record<string, string> = {
    [`${path}/ns.yaml`]: `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
  };
  for (let i = 1; i < n; i++) {
    files[`${path}/o-${i}.yaml`] =
      i % 10 === 0
        ? `apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-${i}\n  namespace: ${ns}\nspec:\n  selector: {app: a-${i}}\n  ports: [{port: 80}]\n`
        : `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\n  namespace: ${ns}\ndata:\n  index: "${i}"\n  version: "${i === 1 ? version : "1"}"\n`;
  }
  return files;
}

/** Asks for a sync of `app` through the API (again after a 409: no attempt could start). */
async function askSync(agent: Agent, app: string) {
  await until(`sync of ${app} accepted`, 120_000, () =>
    agent.api("POST", `/api/v1/apps/${app}/sync`).then(
      () => true,
      (err: Error) => {
        // 409: no attempt can start now (a standby, say); the API answers 202 at once otherwise.
        if (!/ 409 /.test(err.message)) throw err;
        return false;
      },
    ),
  );
}

const attempts = async (agent: Agent) => {
  const m = await agent.metrics("berth_reconcile_duration_seconds_count");
  return new Map([...m].map(([k, v]) => [/app="([^"]+)"/.exec(k)?.[1] ?? k, v]));
};
// Watch requests (each kind's watch re-opens every 20 s) keep the view, not the resync: left out of the count.
const kubeRequestsByVerb = async (agent: Agent) => {
  const byVerb = new Map<string, number>();
  for (const [key, n] of await agent.metrics("berth_kube_requests_total")) {
    const verb = /verb="([^"]+)"/.exec(key)?.[1] ?? key;
    if (verb !== "watch") byVerb.set(verb, (byVerb.get(verb) ?? 0) + n);
  }
  return byVerb;
};
async function measure(shape: { objects: number; apps: number }, run: number) {
  const per = Math.floor(shape.objects / shape.apps);
  const tag = `s${shape.objects}x${shape.apps}r${run}-${Math.random().toString(16).slice(2, 6)}`;
  const url = git.createRepo(tag);
  const files: Record<string, string> = {};
  const apps = Array.from({ length: shape.apps }, (_, a) => ({
    // Unique per run: a reused name's label selector would also watch the last run's objects being deleted.
    name: `${tag}-${a}`,
    path: `apps/app-${a}`,
    ns: `${tag}-${a}`,
  }));
  for (const a of apps) Object.assign(files, appFiles(a.path, a.ns, per, "1"));
  git.commit(tag, files);
  note(`${shape.objects} objects in ${shape.apps} apps: starting berth run`);
  const agent = await startAgent({
    binary,
    kubeconfig: cluster.kubeconfig,
    url,
    apps,
    firstSyncTimeoutMs: 60 * 60_000,
    // Only the agent's: BUN_OPTIONS in the bench's own environment would reach the build too.
    ...(CPU_PROF ? { env: { BUN_OPTIONS: `--cpu-prof-md --cpu-prof-dir ${CPU_PROF}` } } : {}),
  });
  try {
    note(`first sync ${round(agent.firstSyncS)} s`);
    await sleep(10_000);
    const idleMb = procSample(agent.pid).rssMb;

    // Warm no-op of every app at once.
    const before = await attempts(agent);
    const req0 = await kubeRequestsByVerb(agent);
    const t0 = Date.now();
    await Promise.all(apps.map((a) => askSync(agent, a.name)));
    // Polled every 200 ms, not 20: each /metrics answer reads every app's status, and at 100 apps a poll every
    // 20 ms kept the agent's one thread busy answering (the end is taken from the ledger, below).
    await until(
      "every app's no-op attempt finished",
      600_000,
      async () => {
        const now = await attempts(agent);
        return apps.every((a) => (now.get(a.name) ?? 0) > (before.get(a.name) ?? 0));
      },
      200,
    );
    const noopS =
      (lastFinishedAt(
        agent.ledgerPath,
        apps.map((a) => a.name),
      ) -
        t0) /
      1000;
    const req1 = await kubeRequestsByVerb(agent);
    // By verb, so a no-op that is not free says what it asked (every app's periodic resync falls in it too).
    const noopByVerb = Object.fromEntries(
      [...req1].map(([verb, n]) => [verb, n - (req0.get(verb) ?? 0)]).filter(([, n]) => (n as number) > 0),
    ) as Record<string, number>;
    const noopRequests = Object.values(noopByVerb).reduce((a, n) => a + n, 0);
    await agent.allSynced(60_000);

    // One change in the first app.
    const first = apps[0] as (typeof apps)[number];
    git.commit(tag, {
      [`${first.path}/o-1.yaml`]: appFiles(first.path, first.ns, 2, "2")[`${first.path}/o-1.yaml`] as string,
    });
    const c0 = performance.now();
    await askSync(agent, first.name);
    await until(
      "the change live",
      300_000,
      async () => (await cmValue(cluster.kube, first.ns, "cm-1", "version")) === "2",
    );
    const changeS = (performance.now() - c0) / 1000;

    // An out-of-band edit in the first app.
    const d0 = performance.now();
    await tamper(cluster.kube, first.ns, "cm-2", "index", "tampered");
    await until(
      "the edit healed",
      120_000,
      async () => (await cmValue(cluster.kube, first.ns, "cm-2", "index")) === "2",
      5,
    );
    const driftS = (performance.now() - d0) / 1000;

    await sleep(1000);
    // Running: a periodic resync of another app under way at this moment (100 apps resync all along).
    const failed = ledgerOutcomes(agent.ledgerPath).filter(
      (e) => e.outcome !== "Succeeded" && e.outcome !== "Running",
    );
    if (failed.length > 0)
      throw new Error(`ledger entries not Succeeded: ${JSON.stringify(failed.slice(0, 5))}`);
    return {
      firstSyncS: agent.firstSyncS,
      noopS,
      noopRequests,
      noopByVerb,
      changeS,
      driftS,
      idleMb,
      peakMb: agent.peakMb(),
      ledgerMb: agent.ledgerBytes() / 2 ** 20,
    };
  } finally {
    const code = await agent.stop();
    if (code !== 0) note(`berth run exited ${code} on SIGTERM`);
    cluster.kubectl("delete", "namespace", ...apps.map((a) => a.ns), "--wait=false");
  }
}

const load = loadSampler();
const curve: Array<Record<string, unknown>> = [];
try {
  for (const shape of SHAPES) {
    const runs: Array<Awaited<ReturnType<typeof measure>>> = [];
    for (let r = 0; r < RUNS; r++) runs.push(await measure(shape, r));
    const pick = (k: Exclude<keyof (typeof runs)[number], "noopByVerb">) => range(runs.map((x) => x[k]));
    curve.push({
      objects: shape.objects,
      apps: shape.apps,
      runs: RUNS,
      firstSyncS: pick("firstSyncS"),
      warmNoopS: pick("noopS"),
      warmNoopKubeRequests: pick("noopRequests"),
      warmNoopKubeRequestsByVerb: runs.map((x) => x.noopByVerb),
      oneChangeS: pick("changeS"),
      driftHealS: pick("driftS"),
      idleRssMb: pick("idleMb"),
      peakRssMb: pick("peakMb"),
      ledgerMb: pick("ledgerMb"),
    });
  }
} finally {
  load.stop();
  await git.close();
  cluster.down();
}
const multi = curve.find((c) => c.objects === 10000 && c.apps === 100);
const multiPeak = (multi?.peakRssMb as { max: number } | undefined)?.max;
console.log(
  JSON.stringify({
    bench: "scale",
    commit: commitOfTree(),
    curve,
    ...(multiPeak !== undefined ? { peak10000x100WithinTarget: multiPeak <= 300, targetMb: 300 } : {}),
    load1: load.summary(),
  }),
);
const cell = (v: unknown) => String((v as { median?: number } | null)?.median ?? "-");
const cols = [
  "firstSyncS",
  "warmNoopS",
  "warmNoopKubeRequests",
  "oneChangeS",
  "driftHealS",
  "idleRssMb",
  "peakRssMb",
  "ledgerMb",
];
console.error(["objects×apps", ...cols].join("\t"));
for (const c of curve) console.error([`${c.objects}×${c.apps}`, ...cols.map((k) => cell(c[k]))].join("\t"));
