/** `berth run`: sync every app continuously, with the API, drift detection and notifications. */
import { startApi } from "../../api/start.ts";
import {
  type AnySourceConfig,
  type AppConfig,
  type RetentionConfig,
  sourceRefOf,
} from "../../config/config.ts";
import { expandGenerators } from "../../config/generate.ts";
import { LeaderElector, leaderIdentity } from "../../engine/leader.ts";
import type { Logger } from "../../engine/log.ts";
import { SyncLoop } from "../../engine/loop.ts";
import { KubeLeases } from "../../kube/lease.ts";
import type { Ledger } from "../../ledger/ledger.ts";
import { LedgerFollower, LedgerReplica } from "../../ledger/replica.ts";
import { messageOf } from "../../object/errors.ts";
import type { Served } from "../../runtime/serve.ts";
import { type Ctx, EXIT, type Io, primarySource, progress } from "../common.ts";
import { type GlobalFlags, replicaStore, wire, wireDrift, wireNotify, wirePreviews } from "../wire.ts";

export async function runCommand(flags: GlobalFlags, ctx: Ctx, io: Io): Promise<number> {
  const log = ctx.log;
  const w = await wire(flags, log, progress(io, ctx));
  // The off-box replica ships what the ledger records; its store being down never stops a sync. With HA only
  // the Lease holder ships (from its first term on), so the replica's newest generation is the leader's.
  const store = replicaStore(w.config);
  let replica: Promise<LedgerReplica> | undefined;
  const startReplica = () => {
    if (!store || replica) return;
    replica = LedgerReplica.start(w.config.ledger.path, store, {
      intervalMs: w.config.ledger.replica?.interval ?? 2000,
      log: logTo(log),
    });
    replica.then(
      (r) => {
        w.metrics.replicaLag = () => r.lagSeconds();
      },
      (err) => log.log("error", "the ledger replica could not start", { error: messageOf(err) }),
    );
  };
  const interrupted = w.ledger.markInterrupted();
  if (interrupted > 0)
    log.log("warn", "marked sync attempts left unfinished by a previous run as Interrupted", {
      count: interrupted,
    });
  const appIntervals = Object.fromEntries(w.config.apps.map((a) => [a.name, a.interval]));
  // Watches feed the plan (no GET per object) and drift detection (heal or alert within a second).
  // Notifications: secrets read and `when` compiled before anything runs (a bad receiver is exit 2).
  const notify = await wireNotify(w, log);
  // The loop's apps, generated ones included, once it exists (it is made below).
  let loopApps: (() => readonly AppConfig[]) | undefined;
  const apps = () => loopApps?.() ?? w.config.apps;
  const drift = wireDrift(w, log, notify?.onDrift, apps);
  // HA: only the Lease holder applies (the loop stands by, the client refuses writes); the read API stays up.
  const ha = w.config.ha;
  const identity = leaderIdentity();
  const leader = ha
    ? new LeaderElector(new KubeLeases(w.kube, ha.namespace, ha.lease), {
        identity,
        duration: ha.duration,
        log,
        onChange: (isLeader) => {
          if (isLeader) void takeOver().then(() => loop.trigger());
        },
      })
    : undefined;
  // A standby with a replica follows the leader's ledger; taking over, it catches up, stops following and ships:
  // the same chain and inventory go on (it prunes what the old leader applied). Until then it applies nothing.
  let following =
    ha && store ? LedgerFollower.start(w.config.ledger.path, store, { log: logTo(log) }) : undefined;
  following?.catch((err) => log.log("error", "cannot follow the ledger replica", { error: messageOf(err) }));
  let tookOver = following === undefined;
  const takeOver = async () => {
    const f = following;
    following = undefined;
    if (f) await (await f.catch(() => undefined))?.close();
    if (f) w.ledger.markInterrupted(); // the old leader's attempts in flight
    startReplica();
    tookOver = true;
  };
  if (leader) {
    w.kube.userAgent = `berth (${identity})`;
    w.kube.mayWrite = () => leader.isLeader() && tookOver;
  }
  // Previews of unmerged heads run in a lane of their own: reads and dry-runs only, never delaying a sync.
  const previews = wirePreviews(w, log, {
    ...(ha ? { active: () => leader?.isLeader() === true } : {}),
    ...(notify?.previewReporter ? { reporters: [notify.previewReporter] } : {}),
  });
  // Apps whose drift policy is not a plain `heal` leave drift to the watcher's policy between commits.
  const commitOnly = {
    has: (name: string) => {
      const a = apps().find((x) => x.name === name);
      return a?.drift !== undefined && (a.drift.action !== "heal" || a.drift.rules.length > 0);
    },
  };
  const sourceIntervals = Object.fromEntries(
    Object.entries(w.config.sources).map(([name, s]) => [name, s.interval]),
  );
  const loop = new SyncLoop(w.deps, w.config.apps, {
    interval: Math.min(...Object.values(sourceIntervals)),
    sourceIntervals,
    ...(w.config.generate.length > 0 ? { expand: (of) => expandGenerators(w.config, of) } : {}),
    concurrency: w.config.concurrency,
    appIntervals,
    commitOnly,
    ...(leader ? { mayApply: () => leader.isLeader() && tookOver } : {}),
  });
  loopApps = () => loop.appSpecs() as AppConfig[];
  let server: Served;
  try {
    server = await startApi({
      api: w.config.api,
      apps: w.config.apps,
      sourceRef: sourceRefOf(primarySource(w.config)),
      sources: w.config.sources,
      loop,
      ledger: w.ledger,
      metrics: w.metrics,
      kubeCodes: () => w.kube.codes,
      events: w.events,
      log,
      ...(previews ? { previews } : {}),
      ...(notify
        ? { onApproved: notify.onApproved, failingDeliveries: () => notify.notifier.failing() }
        : {}),
    });
  } catch (err) {
    w.close();
    throw err;
  }
  if (!ha) startReplica();
  notify?.watchSource(loop);
  leader?.start();
  const stop = (signal: string) => {
    log.log("info", `received ${signal}; stopping after the current step`);
    drift.stopping();
    void loop.stop();
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  log.log("info", "berth is running", {
    sources: Object.fromEntries(
      [...w.sources].map(([name, s]) => [
        name,
        `${s.url}@${sourceRefOf(w.config.sources[name] as AnySourceConfig)}`,
      ]),
    ),
    apps: w.config.apps.map((a) => a.name),
    ...(w.config.generate.length > 0 ? { generators: w.config.generate.length } : {}),
    ledger: w.config.ledger.path,
    api: `http://${w.config.api.listen.replace(/:\d+$/, "")}:${server.port}`,
  });
  const gc = scheduleGc(w.ledger, w.config.ledger.retention, log);
  previews?.start();
  await loop.start();
  gc.stop();
  await previews?.stop();
  await leader?.stop();
  await server.close();
  await drift.close();
  await notify?.close();
  await replica?.then((r) => r.close()).catch(() => {});
  await following?.then((f) => f.close()).catch(() => {});
  w.close();
  log.log("info", "stopped");
  return EXIT.ok;
}

/** The replica's log callback over the agent's logger. */
function logTo(log: Logger) {
  return (level: "info" | "warn", message: string, fields?: Record<string, unknown>) =>
    log.log(level, message, fields ?? {});
}

/** `berth run` collects the ledger's garbage once a day (checked hourly; the last run is kept in the ledger). */
function scheduleGc(ledger: Ledger, retention: RetentionConfig, log: Logger): { stop(): void } {
  const DAY = 86_400_000;
  const check = () => {
    try {
      const last = ledger.lastGcAt();
      if (last !== undefined && Date.now() - Date.parse(last) < DAY) return;
      const report = ledger.gc(retention);
      log.log("info", "ledger gc", { ...report });
    } catch (err) {
      log.log("error", "ledger gc failed", { error: messageOf(err) });
    }
  };
  // First look a minute after start-up, so gc never competes with the first syncs.
  const first = setTimeout(check, 60_000);
  const hourly = setInterval(check, 3_600_000);
  for (const t of [first, hourly]) (t as { unref?: () => void }).unref?.();
  return {
    stop: () => {
      clearTimeout(first);
      clearInterval(hourly);
    },
  };
}
