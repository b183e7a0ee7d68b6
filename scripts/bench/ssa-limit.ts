/**
 * Apply at the limit: the API server's raw server-side-apply throughput on this machine, and berth's first sync
 * of the same objects against it, on a control plane of the bench's own.
 *
 * Raw: PATCH application/apply-patch+yaml of `--objects` (default 1,000) small ConfigMaps into a fresh, existing
 * namespace, no berth: N workers over HTTP/1.1 keep-alive connections (one connection each), and N concurrent
 * streams over one HTTP/2 connection, for N in `--sweep` (default 1,2,4,8,16,32). Every answer must be 200/201.
 * berth: the compiled binary's `berth sync` of a repository holding the Namespace and the same ConfigMaps (a
 * first sync: nothing exists yet); its exit code and ledger outcome are checked, and its apply stage's time is
 * read from the ledger entry's timings.
 * Runs are interleaved (`--runs`, default 3: a raw sweep, then berth, per run). Prints one JSON object:
 * per-N objects/s (range over runs), the best, berth's first sync and apply stage, and the ratios
 * berth first sync ÷ raw best and berth apply stage ÷ raw best (both as times for the same object count).
 * Usage: bun scripts/bench/ssa-limit.ts [--runs 3] [--objects 1000] [--sweep 1,2,4,8,16,32] [--no-h2]
 *        [--alt-binary PATH]   (a second build, synced after the worktree's in every run, reported beside it)
 *        [--cpu-prof DIR]      (each berth sync writes a Markdown CPU profile into DIR: Bun's --cpu-prof-md)
 *        [--existing-namespace] (the bench creates the namespace and the repository holds only the ConfigMaps:
 *                               berth's plan then validates each one by a dry-run first, as in most first syncs)
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http2 from "node:http2";
import https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runToEnd } from "../../test/support/binary.ts";
import { GitFixture } from "../../test/support/git.ts";
import { numberFlag } from "./flags.ts";
import {
  binaryCopy,
  commitOfTree,
  loadSampler,
  note,
  ownCluster,
  range,
  readLedger,
  round,
  stringFlag,
} from "./harness.ts";

const RUNS = numberFlag("--runs", 3);
const OBJECTS = numberFlag("--objects", 1000);
const SWEEP = (stringFlag("--sweep") ?? "1,2,4,8,16,32").split(",").map(Number);
const H2 = !process.argv.includes("--no-h2");

const cluster = ownCluster("ssa-limit");
const load = loadSampler();
const pki = join(cluster.dir, "pki");
const tls = {
  ca: readFileSync(join(pki, "ca.crt")),
  cert: readFileSync(join(pki, "admin.crt")),
  key: readFileSync(join(pki, "admin.key")),
};
const server = new URL(
  /server: (\S+)/.exec(readFileSync(cluster.kubeconfig, "utf8"))?.[1] ?? "https://127.0.0.1",
);

const cm = (ns: string, i: number) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\n  namespace: ${ns}\ndata:\n  index: "${i}"\n  value: "v${i}"\n`;
const cmPath = (ns: string, i: number) =>
  `/api/v1/namespaces/${ns}/configmaps/cm-${i}?fieldManager=ssa-limit&force=true`;
const applyHeaders = {
  "Content-Type": "application/apply-patch+yaml",
  Accept: "application/json",
  "User-Agent": "bench-ssa",
};

async function freshNamespace(prefix: string): Promise<string> {
  const ns = `${prefix}-${Math.random().toString(16).slice(2, 8)}`;
  cluster.kubectl("create", "namespace", ns);
  return ns;
}

/** Runs `one(i)` for i in [0, OBJECTS) with `n` workers; resolves to objects per second. */
async function drive(n: number, one: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < OBJECTS) await one(next++);
    }),
  );
  return OBJECTS / ((performance.now() - t0) / 1000);
}

async function rawHttp1(n: number): Promise<number> {
  const ns = await freshNamespace("raw1");
  const agent = new https.Agent({ keepAlive: true, maxSockets: n, ...tls });
  try {
    return await drive(n, (i) => {
      const body = cm(ns, i);
      return new Promise<void>((resolve, reject) => {
        const req = https.request(
          {
            host: server.hostname,
            port: server.port,
            path: cmPath(ns, i),
            method: "PATCH",
            agent,
            headers: { ...applyHeaders, "Content-Length": Buffer.byteLength(body) },
          },
          (res) => {
            let text = "";
            res.on("data", (d) => {
              text += d;
            });
            res.on("end", () =>
              res.statusCode === 200 || res.statusCode === 201
                ? resolve()
                : reject(new Error(`HTTP/1.1 apply cm-${i}: ${res.statusCode} ${text.slice(0, 300)}`)),
            );
          },
        );
        req.on("error", reject);
        req.end(body);
      });
    });
  } finally {
    agent.destroy();
  }
}

async function rawHttp2(n: number): Promise<number> {
  const ns = await freshNamespace("raw2");
  const session = http2.connect(server.origin, tls);
  await new Promise<void>((resolve, reject) => {
    session.once("connect", () => resolve());
    session.once("error", reject);
  });
  try {
    return await drive(n, (i) => {
      const body = cm(ns, i);
      return new Promise<void>((resolve, reject) => {
        const req = session.request({ ":method": "PATCH", ":path": cmPath(ns, i), ...applyHeaders });
        let status = 0;
        let text = "";
        req.on("response", (h) => {
          status = Number(h[":status"]);
        });
        req.on("data", (d) => {
          text += d;
        });
        req.on("end", () =>
          status === 200 || status === 201
            ? resolve()
            : reject(new Error(`HTTP/2 apply cm-${i}: ${status} ${text.slice(0, 300)}`)),
        );
        req.on("error", reject);
        req.end(body);
      });
    });
  } finally {
    session.close();
  }
}

const git = await GitFixture.start();
const binary = binaryCopy(mkdtempSync(join(tmpdir(), "berth-ssa-bin-")));
// Another build to compare (e.g. a different apply concurrency): synced after the worktree's binary in each run.
const ALT = stringFlag("--alt-binary");
const CPU_PROF = stringFlag("--cpu-prof");
const EXISTING_NS = process.argv.includes("--existing-namespace");

/** berth sync of a fresh namespace with the same ConfigMaps; seconds, apply-stage seconds. */
async function berthFirstSync(
  run: number,
  bin = binary,
): Promise<{ seconds: number; applyS: number; planS: number; timings: Record<string, number> }> {
  const ns = `berth-${run}-${Math.random().toString(16).slice(2, 8)}`;
  const repo = `ssa${run}`;
  const url = git.createRepo(repo);
  const files: Record<string, string> = {};
  // A namespace the app creates cannot be dry-run into: its objects are applied unvalidated.
  if (EXISTING_NS) cluster.kubectl("create", "namespace", ns);
  else files["app/ns.yaml"] = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`;
  for (let i = 0; i < OBJECTS; i++) files[`app/cm-${i}.yaml`] = cm(ns, i);
  git.commit(repo, files);
  const ws = mkdtempSync(join(tmpdir(), "berth-ssa-"));
  // An app name per run: the plan lists its app's live objects, and a shared name would list every run's.
  writeFileSync(
    join(ws, "berth.yaml"),
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}"}\napps:\n  - {name: bench-${run}, path: app, timeout: 5m}\nledger: {path: ledger.db}\n`,
  );
  const t0 = performance.now();
  const { code, stdout, stderr } = await runToEnd(
    spawn(bin, ["sync", "--config", join(ws, "berth.yaml"), "--kubeconfig", cluster.kubeconfig], {
      stdio: ["ignore", "pipe", "pipe"],
      cwd: ws,
      ...(CPU_PROF
        ? { env: { ...process.env, BUN_OPTIONS: `--cpu-prof-md --cpu-prof-dir ${CPU_PROF}` } }
        : {}),
    }),
    600_000,
  );
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`berth sync exited ${code}:\n${(stdout + stderr).slice(-2000)}`);
  const row = readLedger(
    join(ws, "ledger.db"),
    (db) =>
      db.query("SELECT outcome, timings_json FROM entries ORDER BY id DESC LIMIT 1").get() as {
        outcome: string;
        timings_json: string | null;
      } | null,
  );
  if (row?.outcome !== "Succeeded") throw new Error(`berth sync's ledger entry is ${row?.outcome}`);
  const timings = JSON.parse(row.timings_json ?? "{}") as Record<string, number>;
  const live = cluster
    .kubectl("get", "configmaps", "-n", ns, "-o", "name")
    .split("\n")
    .filter((l) => l.includes("cm-"));
  if (live.length !== OBJECTS) throw new Error(`berth sync left ${live.length} of ${OBJECTS} ConfigMaps`);
  return {
    seconds,
    applyS: (timings.apply ?? Number.NaN) / 1000,
    planS: (timings.plan ?? Number.NaN) / 1000,
    timings,
  };
}

const raw: Record<string, number[]> = {};
const add = (key: string, x: number) => {
  raw[key] = [...(raw[key] ?? []), x];
};
const berth = {
  first: [] as number[],
  apply: [] as number[],
  plan: [] as number[],
  stagesMs: [] as Array<Record<string, number>>,
};
const alt = { first: [] as number[], apply: [] as number[] };
let h2Problem: string | undefined;
try {
  for (let run = 0; run < RUNS; run++) {
    for (const n of SWEEP) {
      const r1 = await rawHttp1(n);
      add(`http1/${n}`, r1);
      let r2 = Number.NaN;
      if (H2 && !h2Problem) {
        try {
          r2 = await rawHttp2(n);
          add(`http2/${n}`, r2);
        } catch (err) {
          h2Problem = (err as Error).message;
        }
      }
      note(`run ${run} N=${n}: http1 ${round(r1, 0)}/s http2 ${round(r2, 0)}/s`);
    }
    const b = await berthFirstSync(run);
    berth.first.push(b.seconds);
    berth.apply.push(b.applyS);
    berth.plan.push(b.planS);
    berth.stagesMs.push(b.timings);
    note(`run ${run} berth first sync ${round(b.seconds)} s (apply ${round(b.applyS)} s)`);
    if (ALT) {
      const a = await berthFirstSync(run + 1000, ALT);
      alt.first.push(a.seconds);
      alt.apply.push(a.applyS);
      note(`run ${run} alt binary first sync ${round(a.seconds)} s (apply ${round(a.applyS)} s)`);
    }
  }
} finally {
  load.stop();
  await git.close();
  cluster.down();
}
// The limit: the best median throughput over every protocol and N.
const perN = Object.fromEntries(Object.entries(raw).map(([k, xs]) => [k, range(xs)]));
const [bestKey, bestRange] = Object.entries(perN).sort(
  (a, b) => (b[1]?.median ?? 0) - (a[1]?.median ?? 0),
)[0] ?? ["none", null];
const bestRate = bestRange?.median ?? Number.NaN;
const rawSeconds = OBJECTS / bestRate;
const med = (xs: number[]) => range(xs)?.median ?? Number.NaN;
console.log(
  JSON.stringify({
    bench: "ssa-limit",
    commit: commitOfTree(),
    objects: OBJECTS,
    runs: RUNS,
    namespace: EXISTING_NS ? "existing: every object dry-run by the plan" : "created by the app",
    rawObjectsPerSecond: perN,
    limit: { at: bestKey, objectsPerSecond: round(bestRate, 1), secondsFor: round(rawSeconds) },
    berth: {
      firstSyncS: range(berth.first),
      planS: range(berth.plan),
      applyS: range(berth.apply),
      applyObjectsPerSecond: round(OBJECTS / med(berth.apply), 1),
      stagesMs: berth.stagesMs,
    },
    ratio: {
      firstSyncVsLimit: round(med(berth.first) / rawSeconds),
      applyStageVsLimit: round(med(berth.apply) / rawSeconds),
    },
    ...(ALT
      ? {
          altBinary: {
            path: ALT,
            firstSyncS: range(alt.first),
            applyS: range(alt.apply),
            firstSyncVsLimit: round(med(alt.first) / rawSeconds),
            applyStageVsLimit: round(med(alt.apply) / rawSeconds),
          },
        }
      : {}),
    ...(h2Problem ? { http2: `not measured: ${h2Problem}` } : {}),
    load1: load.summary(),
  }),
);
