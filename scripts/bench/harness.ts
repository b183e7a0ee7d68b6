/**
 * What the long-running benchmarks (scale, soak, apply limit, vs Flux) share: a control plane of their own, the
 * compiled binary copied aside (so a rebuild in the worktree cannot change it mid-run), `berth run` with its API
 * on a known port, /proc sampling of a process (RSS, file descriptors, sockets), the machine's load, and checks
 * that a sync really succeeded. Every failed check throws: a bench must never measure a failed sync.
 */
import { Database } from "bun:sqlite";
import { execFileSync, spawn } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeClient } from "../../agent/kube/client.ts";
import { inBackground } from "../../test/support/binary.ts";
import { freePort } from "../../test/support/ports.ts";

export const ROOT = join(import.meta.dir, "..", "..");
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const commitOfTree = () =>
  execFileSync("git", ["rev-parse", "--short=12", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();

/** Cleanups run when the bench is stopped by a signal (children must not outlive it, nor clusters linger). */
const cleanups: Array<() => void> = [];
export const onStop = (fn: () => void) => cleanups.push(fn);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
  process.on(sig, () => {
    for (const fn of cleanups.reverse())
      try {
        fn();
      } catch {
        // best effort
      }
    process.exit(130);
  });

/** A progress line on stderr (stdout carries only the JSON result). */
export const note = (msg: string) =>
  console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** The value after `flag`, or undefined. */
export function stringFlag(flag: string): string | undefined {
  const i = process.argv.indexOf(flag);
  return i > 0 ? process.argv[i + 1] : undefined;
}

export const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};
export const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;
export const range = (xs: number[]) =>
  xs.length
    ? { min: round(Math.min(...xs)), median: round(median(xs)), max: round(Math.max(...xs)), n: xs.length }
    : null;

/** Least-squares slope of ys over xs (per unit of x), and the fit's r². */
export function slope(xs: number[], ys: number[]): { slope: number; r2: number } {
  const n = Math.min(xs.length, ys.length);
  if (n < 2) return { slope: Number.NaN, r2: Number.NaN };
  const mx = xs.slice(0, n).reduce((a, b) => a + b, 0) / n;
  const my = ys.slice(0, n).reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (xs[i] as number) - mx;
    const dy = (ys[i] as number) - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  const b = sxx === 0 ? 0 : sxy / sxx;
  return { slope: b, r2: sxx === 0 || syy === 0 ? 0 : (sxy * sxy) / (sxx * syy) };
}

/** The 1-minute load average, now. */
export const loadavg1 = () => Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]);

/** Samples /proc/loadavg every `ms` until stop(); summary() gives min/median/max of the 1-minute figure. */
export function loadSampler(ms = 5000) {
  const xs: number[] = [loadavg1()];
  const timer = setInterval(() => xs.push(loadavg1()), ms);
  return {
    stop: () => clearInterval(timer),
    summary: () => ({ ...range(xs), cores: navigator.hardwareConcurrency }),
  };
}

/** RSS (MB), high-water RSS (MB), open file descriptors and sockets of a process, from /proc. */
export function procSample(pid: number): {
  rssMb: number;
  hwmMb: number;
  fds: number;
  sockets: number;
  cpuS: number;
} {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? Number.NaN);
  let fds = 0;
  let sockets = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    fds++;
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:")) sockets++;
    } catch {
      // closed between readdir and readlink
    }
  }
  return { rssMb: kb("VmRSS") / 1024, hwmMb: kb("VmHWM") / 1024, fds, sockets, cpuS: cpuSeconds(pid) };
}

/** User + system CPU seconds a process has used (its own, not its children's). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

/** A control plane of the bench's own (never the shared test cluster); down() removes it. */
export function ownCluster(name: string) {
  const dir = process.env.BENCH_CLUSTER_DIR ?? mkdtempSync(join(tmpdir(), `berth-${name}-cluster-`));
  const env = { ...process.env, BERTH_CLUSTER_DIR: dir };
  const sh = (cmd: string) =>
    execFileSync("bash", [join(ROOT, "scripts/cluster/cluster.sh"), cmd], {
      env,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    });
  const kubeconfig = /^KUBECONFIG=(.+)$/m.exec(sh("up"))?.[1] ?? "";
  const bin = /^BERTH_CLUSTER_BIN=(.+)$/m.exec(sh("env"))?.[1] ?? "";
  const kube = KubeClient.connect({ kubeconfig });
  kube.userAgent = "bench-client"; // not "berth…": audit counts tell berth by its User-Agent
  onStop(() => {
    if (!process.env.BENCH_CLUSTER_DIR) sh("down");
  });
  const pids = () =>
    Object.fromEntries(
      ["etcd", "kube-apiserver"].map((c) => [c, Number(readFileSync(join(dir, `${c}.pid`), "utf8").trim())]),
    );
  return {
    dir,
    kubeconfig,
    kube,
    kubectl: (...args: string[]) =>
      execFileSync(join(bin, "kubectl"), ["--kubeconfig", kubeconfig, ...args], {
        encoding: "utf8",
        maxBuffer: 1 << 28,
      }),
    /** CPU seconds used so far by the API server and etcd together. */
    serverCpu: () => {
      const p = pids();
      return cpuSeconds(p.etcd as number) + cpuSeconds(p["kube-apiserver"] as number);
    },
    /** Requests in the audit log since `since`, by user agent prefix: writes, dry-runs, reads, watches. */
    audit: (since: Date, agentPrefix: string) => auditCounts(join(dir, "audit.log"), since, agentPrefix),
    /** Watches the API server holds open now (all clients), from its own metrics. */
    openWatches: async () => {
      const text = (await kube.request("metrics", "GET", "/metrics", undefined, {
        Accept: "text/plain",
      })) as {
        message?: string;
      };
      let n = 0;
      for (const line of (text.message ?? "").split("\n"))
        if (line.startsWith("apiserver_longrunning_requests{") && line.includes('verb="WATCH"'))
          n += Number(line.slice(line.lastIndexOf(" ") + 1));
      return n;
    },
    down: () => {
      if (!process.env.BENCH_CLUSTER_DIR) sh("down");
    },
  };
}
export type OwnCluster = ReturnType<typeof ownCluster>;

/** Counts audit-log requests of clients whose User-Agent starts with `agentPrefix`, since `since`. */
export function auditCounts(path: string, since: Date, agentPrefix: string) {
  const c = { writes: 0, dryRuns: 0, reads: 0, watches: 0, total: 0 };
  let text = "";
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return c;
  }
  for (const line of text.split("\n")) {
    if (!line) continue;
    const e = JSON.parse(line) as {
      verb: string;
      requestURI: string;
      userAgent?: string;
      requestReceivedTimestamp: string;
    };
    if (!e.userAgent?.startsWith(agentPrefix) || new Date(e.requestReceivedTimestamp) < since) continue;
    c.total++;
    const dry = /[?&]dryRun=All/.test(e.requestURI);
    if (["create", "update", "patch", "delete", "deletecollection"].includes(e.verb)) {
      if (dry) c.dryRuns++;
      else c.writes++;
    } else if (e.verb === "watch") c.watches++;
    else c.reads++;
  }
  return c;
}

/** dist/berth built from the worktree, copied to `dir` so the run keeps the binary it started with. */
export function binaryCopy(dir: string): string {
  const built = join(
    ROOT,
    execFileSync("bash", [join(ROOT, "scripts/build.sh")], { cwd: ROOT, encoding: "utf8" })
      .trim()
      .split("\n")
      .at(-1) ?? "",
  );
  mkdirSync(dir, { recursive: true });
  const copy = join(dir, "berth");
  copyFileSync(built, copy);
  execFileSync("chmod", ["+x", copy]);
  return copy;
}

export interface AgentApp {
  name: string;
  path: string;
}

/**
 * `berth run` with the API on a free loopback port and an operate token; `ready` resolves once every app's
 * first sync succeeded (read from the API: syncStatus Synced and health Current), and throws if one failed.
 */
export async function startAgent(opts: {
  binary: string;
  kubeconfig: string;
  url: string;
  apps: AgentApp[];
  interval?: string;
  concurrency?: number;
  extra?: string;
  firstSyncTimeoutMs?: number;
  /** Added to the agent's environment (e.g. BERTH_JIT=on). */
  env?: Record<string, string>;
}) {
  const ws = mkdtempSync(join(tmpdir(), "berth-bench-agent-"));
  const port = await freePort();
  const token = `bench-${Math.random().toString(16).slice(2)}`;
  writeFileSync(join(ws, "token"), token);
  const apps = opts.apps
    .map((a) => `  - {name: ${a.name}, path: ${a.path}, timeout: 10m, drift: heal}`)
    .join("\n");
  writeFileSync(
    join(ws, "berth.yaml"),
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${opts.url}", interval: ${opts.interval ?? "1h"}}\n` +
      `apps:\n${apps}\nledger: {path: ledger.db}\n${opts.concurrency ? `concurrency: ${opts.concurrency}\n` : ""}` +
      `api: {listen: "127.0.0.1:${port}", tokenFile: token}\n${opts.extra ?? ""}`,
  );
  const t0 = performance.now();
  const proc = inBackground(
    spawn(opts.binary, ["run", "--config", join(ws, "berth.yaml"), "--kubeconfig", opts.kubeconfig], {
      stdio: ["ignore", "pipe", "pipe"],
      cwd: ws,
      ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
    }),
  );
  const pid = proc.child.pid as number;
  onStop(() => proc.child.kill("SIGKILL"));
  let peakMb = 0;
  const sampler = setInterval(() => {
    try {
      peakMb = Math.max(peakMb, procSample(pid).hwmMb);
    } catch {
      // exited
    }
  }, 200);
  const base = `http://127.0.0.1:${port}`;
  const api = async (method: string, path: string) => {
    const res = await fetch(`${base}${path}`, { method, headers: { Authorization: `Bearer ${token}` } });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 500)}`);
    return text;
  };
  const views = async () =>
    (JSON.parse(await api("GET", "/api/v1/apps")) as { apps: Array<Record<string, unknown>> }).apps;
  const alive = () => {
    if (proc.child.exitCode !== null)
      throw new Error(`berth run exited ${proc.child.exitCode}:\n${proc.output().slice(-3000)}`);
  };
  /** Waits until every app is Synced and Healthy at `revision` (a commit SHA prefix, if given). */
  const allSynced = async (timeoutMs: number, revision?: string) => {
    const started = Date.now();
    const deadline = started + timeoutMs;
    let nextNote = Date.now() + 15_000;
    for (;;) {
      alive();
      const vs = await views().catch(() => undefined); // the API is not up yet
      if (vs) {
        const failed = vs.find((v) => v.syncStatus === "Failed");
        if (failed) throw new Error(`app ${failed.name} failed: ${JSON.stringify(failed).slice(0, 1500)}`);
        const at = (v: Record<string, unknown>) =>
          String((v.revision as { applied?: string } | undefined)?.applied ?? "");
        const done = vs.every(
          (v) =>
            v.syncStatus === "Synced" &&
            v.healthStatus === "Current" &&
            (!revision || at(v).includes(revision.slice(0, 12))),
        );
        if (done && vs.length === opts.apps.length) return;
      }
      if (Date.now() >= nextNote) {
        nextNote = Date.now() + 15_000;
        const counts: Record<string, number> = {};
        for (const v of vs ?? [])
          counts[`${v.syncStatus}/${v.healthStatus}`] =
            (counts[`${v.syncStatus}/${v.healthStatus}`] ?? 0) + 1;
        note(`waiting for ${opts.apps.length} apps: ${vs ? JSON.stringify(counts) : "API not up"}`);
      }
      if (Date.now() > deadline)
        throw new Error(
          `apps not Synced+Current within ${timeoutMs} ms: ${JSON.stringify(vs ?? []).slice(0, 3000)}\n${proc.output().slice(-2000)}`,
        );
      // A twentieth of the wait so far (0.1–1 s): each answer builds every app's view, and at 100 apps polls
      // every 100 ms took a third of the agent's CPU during a minute-long first sync. The time read is late
      // by at most 5 % (+0.1 s).
      await sleep(Math.min(1000, Math.max(100, (Date.now() - started) / 20)));
    }
  };
  /** Prometheus samples of the agent's /metrics whose name starts with `prefix`, summed per name+labels. */
  const metrics = async (prefix: string) => {
    const out = new Map<string, number>();
    for (const line of (await api("GET", "/metrics")).split("\n"))
      if (line.startsWith(prefix))
        out.set(line.slice(0, line.lastIndexOf(" ")), Number(line.slice(line.lastIndexOf(" ") + 1)));
    return out;
  };
  await allSynced(opts.firstSyncTimeoutMs ?? 20 * 60_000);
  const firstSyncS = (performance.now() - t0) / 1000;
  return {
    ws,
    pid,
    proc,
    api,
    views,
    metrics,
    allSynced,
    firstSyncS,
    ledgerPath: join(ws, "ledger.db"),
    peakMb: () => {
      try {
        peakMb = Math.max(peakMb, procSample(pid).hwmMb);
      } catch {
        // exited: the last sample stands
      }
      return peakMb;
    },
    ledgerBytes: () => ledgerBytes(join(ws, "ledger.db")),
    stop: async () => {
      clearInterval(sampler);
      proc.child.kill("SIGTERM");
      const code = await proc.exited;
      return code;
    },
  };
}
export type Agent = Awaited<ReturnType<typeof startAgent>>;

/** Bytes of a SQLite ledger with its WAL and shared-memory files. */
export function ledgerBytes(path: string): number {
  let n = 0;
  for (const f of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      n += statSync(f).size;
    } catch {
      // absent
    }
  }
  return n;
}

/** The ledger's newest entries, to check outcomes independently of the agent's API. */
export function ledgerOutcomes(path: string): Array<{ app: string; outcome: string; reason: string | null }> {
  return readLedger(
    path,
    (db) =>
      db.query("SELECT app, outcome, reason FROM entries ORDER BY id").all() as Array<{
        app: string;
        outcome: string;
        reason: string | null;
      }>,
  );
}

/** Reads an agent's ledger file, read-only, and closes it again. */
export function readLedger<T>(path: string, read: (db: Database) => T): T {
  const db = new Database(path, { readonly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

/**
 * The newest time (epoch ms) any attempt of `apps` finished, as the agent recorded it: an entry's finish or a
 * no-op folded into an entry (its verified record's last time). Read right after a poll sees every attempt
 * done, it lies between the last attempt's real end and that poll, so a figure from it does not carry the
 * poll's interval.
 */
export function lastFinishedAt(path: string, apps: readonly string[]): number {
  const marks = apps.map(() => "?").join(",");
  const row = readLedger(
    path,
    (db) =>
      db
        .query(
          `SELECT MAX(t) AS t FROM (SELECT MAX(finished_at) AS t FROM entries WHERE app IN (${marks}) UNION ALL SELECT MAX(v.last_at) AS t FROM verifications v JOIN entries e ON e.id = v.entry_id WHERE e.app IN (${marks}))`,
        )
        .get(...apps, ...apps) as { t: string | null } | null,
  );
  if (!row?.t) throw new Error("no finished attempt in the ledger");
  return Date.parse(row.t);
}

/** Polls `check` every `everyMs` until true; returns the elapsed seconds, or throws naming `what`. */
export async function until(
  what: string,
  timeoutMs: number,
  check: () => Promise<boolean> | boolean,
  everyMs = 20,
) {
  const t0 = performance.now();
  for (;;) {
    if (await check()) return (performance.now() - t0) / 1000;
    if (performance.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(everyMs);
  }
}

/** A ConfigMap's data field, read directly from the API server. */
export async function cmValue(
  kube: KubeClient,
  ns: string,
  name: string,
  key: string,
): Promise<string | undefined> {
  await kube.discover(); // once; later calls return at once
  const live = await kube.get({ group: "", version: "v1", kind: "ConfigMap", namespace: ns, name });
  return (live?.data as Record<string, string> | undefined)?.[key];
}

/** Edits a ConfigMap as another field manager (an out-of-band change berth should heal). */
export async function tamper(kube: KubeClient, ns: string, name: string, key: string, value: string) {
  await kube.discover();
  await kube.request(
    "patch",
    "PATCH",
    `${kube.objectPath({ group: "", version: "v1", kind: "ConfigMap", namespace: ns, name })}?fieldManager=bench-editor`,
    JSON.stringify({ data: { [key]: value } }),
    { "Content-Type": "application/merge-patch+json" },
  );
}
