/**
 * Soak: the compiled binary's `berth run` on the 1,000-object app (scripts/bench/tree-1000.ts) against a control
 * plane of its own, for `--minutes` (default 60): a commit changing one ConfigMap every minute (synced through
 * the API, its push→live latency read back from the API server), an out-of-band edit every 5 minutes (its heal
 * latency likewise), the source polled every 30 s (so warm no-op resyncs run all along). Every 30 s it samples
 * the agent's RSS, open file descriptors and sockets (/proc/PID), the API server's open watches (its
 * apiserver_longrunning_requests, minus what was open before the agent started) and the ledger's bytes.
 * Prints one JSON object: the series, least-squares slopes per hour (whole run and second half) and the
 * latencies. Exits non-zero if the agent exits, a change is not live within 60 s or an edit is not healed within 30 s.
 * Usage: bun scripts/bench/soak.ts [--minutes 60] [--sample-seconds 30]
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GitFixture } from "../../test/support/git.ts";
import { numberFlag } from "./flags.ts";
import {
  binaryCopy,
  cmValue,
  commitOfTree,
  ledgerOutcomes,
  loadavg1,
  note,
  ownCluster,
  procSample,
  range,
  round,
  sleep,
  slope,
  startAgent,
  tamper,
  until,
} from "./harness.ts";
import { tree1000 } from "./tree-1000.ts";

const MINUTES = numberFlag("--minutes", 60);
const SAMPLE_S = numberFlag("--sample-seconds", 30);
const CHANGE_S = 60;
const DRIFT_S = 300;

const cluster = ownCluster("soak");
const git = await GitFixture.start();
const binary = binaryCopy(mkdtempSync(join(tmpdir(), "berth-soak-bin-")));
// The commit the binary was built from, read now: the checkout may move during an hour's run.
const builtFrom = commitOfTree();
const ns = `soak-${Math.random().toString(16).slice(2, 6)}`;
const url = git.createRepo("soak");
git.commit("soak", tree1000(ns, "0"));
let code = 0;
try {
  await cluster.kube.discover();
  const watchesBefore = await cluster.openWatches();
  const agent = await startAgent({
    binary,
    kubeconfig: cluster.kubeconfig,
    url,
    apps: [{ name: "bench", path: "app" }],
    interval: "30s",
  });
  const t0 = Date.now();
  const series: Array<Record<string, number>> = [];
  const sample = async () => {
    const p = procSample(agent.pid);
    series.push({
      t: round((Date.now() - t0) / 1000, 1),
      rssMb: round(p.rssMb, 1),
      fds: p.fds,
      sockets: p.sockets,
      watches: (await cluster.openWatches()) - watchesBefore,
      ledgerKb: round(agent.ledgerBytes() / 1024, 1),
      cpuS: round(p.cpuS, 2),
      load1: loadavg1(),
    });
    note(`sample ${JSON.stringify(series.at(-1))}`); // the series survives on stderr even if the run dies late
  };
  const changes: number[] = [];
  const heals: number[] = [];
  const failures: string[] = [];
  let nextSample = 0;
  let nextChange = CHANGE_S;
  let nextDrift = DRIFT_S;
  let k = 0;
  let d = 0;
  while (Date.now() - t0 < MINUTES * 60_000) {
    const now = (Date.now() - t0) / 1000;
    if (now >= nextSample) {
      await sample();
      nextSample += SAMPLE_S;
    }
    if (now >= nextChange) {
      nextChange += CHANGE_S;
      k++;
      const value = `v${k}`;
      git.commit("soak", { "app/config/cm-0.yaml": tree1000(ns, value)["app/config/cm-0.yaml"] as string });
      const c0 = performance.now();
      try {
        // The API's sync answers 202 at once (a 409 means no attempt can start now: ask again).
        await until("sync accepted", 30_000, () =>
          agent.api("POST", "/api/v1/apps/bench/sync").then(
            () => true,
            (err: Error) => {
              if (!/ 409 /.test(err.message)) throw err;
              return false;
            },
          ),
        );
        await until(
          `change ${k} live`,
          60_000,
          async () => (await cmValue(cluster.kube, ns, "cm-0", "version")) === value,
        );
        changes.push((performance.now() - c0) / 1000);
        note(`change ${k} live in ${round(changes.at(-1) as number)} s`);
      } catch (err) {
        failures.push(`change ${k}: ${(err as Error).message}`);
        note(failures.at(-1) as string);
      }
    }
    if (now >= nextDrift) {
      nextDrift += DRIFT_S;
      d++;
      const name = `cm-${(d * 37) % 400}`;
      const want = await cmValue(cluster.kube, ns, name, "index");
      const h0 = performance.now();
      try {
        await tamper(cluster.kube, ns, name, "index", `tampered-${d}`);
        await until(
          `edit ${d} of ${name} healed`,
          30_000,
          async () => (await cmValue(cluster.kube, ns, name, "index")) === want,
          5,
        );
        heals.push((performance.now() - h0) / 1000);
        note(`edit ${d} healed in ${round(heals.at(-1) as number)} s`);
      } catch (err) {
        failures.push(`drift ${d}: ${(err as Error).message}`);
        note(failures.at(-1) as string);
      }
    }
    if (agent.proc.child.exitCode !== null) {
      failures.push(`berth run exited ${agent.proc.child.exitCode}: ${agent.proc.output().slice(-2000)}`);
      break;
    }
    await sleep(250);
  }
  await sample();
  const entries = ledgerOutcomes(agent.ledgerPath);
  const failedEntries = entries.filter((e) => e.outcome === "Failed");
  if (failedEntries.length > 0)
    failures.push(
      `${failedEntries.length} ledger entries Failed: ${JSON.stringify(failedEntries.slice(0, 3))}`,
    );
  const stopCode = await agent.stop();
  if (stopCode !== 0) failures.push(`berth run exited ${stopCode} on SIGTERM`);
  const hours = series.map((s) => (s.t as number) / 3600);
  const secondHalf = series.filter((s) => (s.t as number) >= (MINUTES * 60) / 2);
  const fit = (key: string) => {
    const all = slope(
      hours,
      series.map((s) => s[key] as number),
    );
    const late = slope(
      secondHalf.map((s) => (s.t as number) / 3600),
      secondHalf.map((s) => s[key] as number),
    );
    return { perHour: round(all.slope), r2: round(all.r2), secondHalfPerHour: round(late.slope) };
  };
  const first = series[0] ?? {};
  const last = series.at(-1) ?? {};
  console.log(
    JSON.stringify({
      bench: "soak",
      commit: builtFrom,
      objects: 1001,
      minutes: MINUTES,
      sampleSeconds: SAMPLE_S,
      firstSyncS: round(agent.firstSyncS),
      changes: { count: changes.length, liveS: range(changes) },
      drifts: { count: heals.length, healS: range(heals) },
      ledgerEntries: entries.length,
      start: first,
      end: last,
      slopes: {
        rssMb: fit("rssMb"),
        fds: fit("fds"),
        sockets: fit("sockets"),
        watches: fit("watches"),
        ledgerKb: fit("ledgerKb"),
      },
      rssMb: range(series.map((s) => s.rssMb as number)),
      load1: range(series.map((s) => s.load1 as number)),
      failures,
      series,
    }),
  );
  if (failures.length > 0) code = 1;
} finally {
  await git.close();
  cluster.down();
}
process.exit(code);
