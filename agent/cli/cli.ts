/** The command-line shell: parses flags, runs a command over the engine, decides the exit code. */
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { driftSummary } from "../api/app-view.ts";
import { fetchApps } from "../api/client.ts";
import { startApi } from "../api/start.ts";
import {
  type AgentConfig,
  type AppConfig,
  DEFAULT_SOURCE,
  loadConfig,
  type RetentionConfig,
  type SourceConfig,
} from "../config/config.ts";
import { readSecretFile } from "../config/credentials.ts";
import { dependenciesOf } from "../config/dependency-order.ts";
import { expandGenerators } from "../config/generate.ts";
import { LeaderElector, leaderIdentity } from "../engine/leader.ts";
import { createLogger, type Logger, silentLogger } from "../engine/log.ts";
import { SyncLoop, syncPass } from "../engine/loop.ts";
import type { EngineEvent } from "../engine/ports.ts";
import type { ReconcileResult } from "../engine/reconcile.ts";
import { KubeLeases } from "../kube/lease.ts";
import type { Ledger } from "../ledger/ledger.ts";
import { LedgerFollower, LedgerReplica } from "../ledger/replica.ts";
import { BerthError, messageOf } from "../object/errors.ts";
import { objectId } from "../object/object.ts";
import type { Snapshot } from "../object/snapshot.ts";
import { fromDependencies } from "../plan/dependencies.ts";
import { plan } from "../plan/plan.ts";
import { FsSnapshot } from "../render/fs-snapshot.ts";
import { sharedParsePool } from "../render/parse-pool.ts";
import type { Served } from "../runtime/serve.ts";
import { buildInfo } from "../version.ts";
import {
  describeVerified,
  formatGc,
  formatPlan,
  formatResult,
  formatSkipped,
  formatVerdicts,
  table,
} from "./format.ts";
import { importCommand } from "./import-command.ts";
import { installCommand } from "./install-command.ts";
import { Progress } from "./progress.ts";
import {
  LEDGER_ADMIN_COMMANDS,
  ledgerAdminCommand,
  pinCommand,
  type ReplayFlags,
  replayCommand,
  unpinCommand,
} from "./replay-command.ts";
import { approveCommand, type RulesFlags, rulesCommand } from "./rules-command.ts";
import {
  type GlobalFlags,
  gitSourceFor,
  openLedger,
  renderPortFor,
  replicaStore,
  type Wired,
  wire,
  wireDrift,
  wireLiveView,
  wireNotify,
  wirePreviews,
} from "./wire.ts";

/** Exit codes: documented in the README. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Where a command writes. */
export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Standard error is a terminal: human logs and progress lines. */
  tty: boolean;
}

const USAGE = `berth — a GitOps agent for small teams

usage: berth <command> [flags]

commands:
  run                       sync every app continuously (Ctrl-C or SIGTERM stops after the current step)
  sync [--app NAME]         one sync pass; exit code 1 if any app failed
  plan [--app NAME] [--ref REF]
                            show what a sync would change, without writing (--ref: of REF's head, e.g. refs/pull/7/head)
  status                    last ledger entry per app
  status --server URL       ask a running agent (token: --token-file FILE or $BERTH_TOKEN)
  ledger list [--app NAME] [--limit N] [--before ID]
  ledger show ID            one entry with its objects
  ledger verify             check the hash chain and every stored manifest; exit 1 naming the first bad entry
  ledger gc [--dry-run]     drop entries past ledger.retention (kept: last healthy, pinned, approved), collect blobs
  ledger export FILE        consistent backup of the ledger, safe while berth runs
  ledger import FILE [--force]   verify a backup and install it at ledger.path
  ledger restore [--from s3://BUCKET/PREFIX] [--force]
                            rebuild the ledger at ledger.path from its off-box replica (ledger.replica)
  replay --app NAME --to ENTRY|COMMIT|last-healthy [--dry-run]
                            re-apply the manifests an entry recorded, without Git
  replay --all [--dry-run]  restore every app at its last healthy entry, in dependsOn order
  pin --app NAME --to ENTRY hold an app at an entry (replayed instead of Git) until unpin
  unpin --app NAME          release the pin; the next sync catches up to Git
  validate [--dir DIR]      check the config, and render every app (from DIR instead of Git)
  rules check [FILE|DIR...] compile rule files (default: the config's rules); exit 1 naming file:line and rule
  rules test [DIR|FILE...]  run rule fixtures (*.test.yaml); exit 1 if a case fails
  rules eval EXPR --object FILE   evaluate a CEL expression over an object
  approve --app NAME [--revision REV] [--expires 1h] [--override-window] [--by WHO]
                            let a sync held by a hold rule through (with --override-window: also a deferred one)
  install manifests [--namespaced] [--namespace NS] [--image IMAGE]
                            in-cluster manifests with least-privilege RBAC for what the apps render
  import flux FILE|DIR [--dir REPO_ROOT] [--out DIR] [--force]
                            convert Flux Kustomizations, HelmReleases and sources into a berth.yaml
  version                   print the version, commit and runtime

flags:
  --config FILE             default ./berth.yaml
  --kubeconfig FILE         default: $KUBECONFIG, ~/.kube/config, then in-cluster
  --context NAME            kubeconfig context
  --json                    machine-readable output (read commands)
`;

const OPTIONS = {
  config: { type: "string", default: "berth.yaml" },
  kubeconfig: { type: "string" },
  context: { type: "string" },
  json: { type: "boolean", default: false },
  app: { type: "string" },
  limit: { type: "string" },
  before: { type: "string" },
  to: { type: "string" },
  from: { type: "string" },
  all: { type: "boolean", default: false },
  "dry-run": { type: "boolean", default: false },
  force: { type: "boolean", default: false },
  dir: { type: "string" },
  out: { type: "string" },
  server: { type: "string" },
  "token-file": { type: "string" },
  object: { type: "string" },
  revision: { type: "string" },
  ref: { type: "string" },
  expires: { type: "string" },
  "override-window": { type: "boolean", default: false },
  by: { type: "string" },
  namespace: { type: "string" },
  namespaced: { type: "boolean", default: false },
  image: { type: "string" },
  verbose: { type: "boolean", short: "v", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>["values"];

/** Runs one command line; resolves to the exit code. */
export async function cli(argv: string[], io: Io): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    io.err(`berth: ${messageOf(err)}\n\n${USAGE}`);
    return EXIT.usage;
  }
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === "help") {
    io.out(USAGE);
    return EXIT.ok;
  }
  const flags: GlobalFlags = { config: values.config };
  if (values.kubeconfig) flags.kubeconfig = values.kubeconfig;
  if (values.context) flags.context = values.context;
  const log = values.json ? silentLogger : createLogger({ human: io.tty, write: io.err });
  try {
    switch (command) {
      case "version": {
        const info = buildInfo();
        io.out(
          values.json
            ? `${JSON.stringify(info)}\n`
            : `berth ${info.version} (commit ${info.commit}, ${info.runtime})\n`,
        );
        return EXIT.ok;
      }
      case "sync":
        return await syncCommand(flags, values, io, log);
      case "plan":
        return await planCommand(flags, values, io);
      case "run":
        return await runCommand(flags, io, log);
      case "status":
        return await statusCommand(flags, values, io);
      case "ledger":
        if (LEDGER_ADMIN_COMMANDS.has(rest[0] ?? ""))
          return await ledgerAdminCommand(flags, replayFlags(values), rest, io);
        return await ledgerCommand(flags, values, rest, io);
      case "replay":
        return await replayCommand(
          flags,
          replayFlags(values),
          io,
          log,
          values.json ? undefined : progress(io),
        );
      case "pin":
        return await pinCommand(flags, replayFlags(values), io, log);
      case "unpin":
        return await unpinCommand(flags, replayFlags(values), io);
      case "validate":
        return await validateCommand(flags, values, io);
      case "rules":
        return await rulesCommand(flags, rulesFlags(values), rest, io);
      case "approve":
        return await approveCommand(flags, rulesFlags(values), io);
      case "import":
        return await importCommand(rest, { dir: values.dir, out: values.out, force: values.force }, io);
      case "install":
        return await installCommand(
          flags,
          { namespace: values.namespace, namespaced: values.namespaced, image: values.image },
          rest,
          io,
        );
      default:
        io.err(`berth: unknown command "${command}"\n\n${USAGE}`);
        return EXIT.usage;
    }
  } catch (err) {
    // Config, kubeconfig and ledger problems: the user must fix an input.
    io.err(`berth: ${messageOf(err)}\n`);
    return EXIT.usage;
  }
}

function replayFlags(values: Values): ReplayFlags {
  return {
    app: values.app,
    to: values.to,
    from: values.from,
    all: values.all,
    dryRun: values["dry-run"],
    force: values.force,
    json: values.json,
  };
}

function rulesFlags(values: Values): RulesFlags {
  return {
    json: values.json,
    object: values.object,
    app: values.app,
    revision: values.revision,
    expires: values.expires,
    overrideWindow: values["override-window"],
    by: values.by,
  };
}

function selectApps<T extends { name: string }>(apps: T[], name: string | undefined): T[] {
  if (!name) return apps;
  const found = apps.filter((a) => a.name === name);
  if (found.length === 0)
    throw new Error(`--app ${name}: no such app (apps: ${apps.map((a) => a.name).join(", ")})`);
  return found;
}

function progress(io: Io): (e: EngineEvent) => void {
  return new Progress(io.err).onEvent;
}

async function syncCommand(flags: GlobalFlags, values: Values, io: Io, log: Logger): Promise<number> {
  const w = await wire(flags, log, values.json ? undefined : progress(io));
  const live = wireLiveView(w);
  try {
    w.ledger.markInterrupted();
    // Each source fetched once (an unreachable one: its apps fetch again and record why not).
    const snapshots = await fetchSnapshots(w);
    const apps = selectApps(await appsWithGenerated(w.config, snapshots), values.app);
    // SIGTERM/Ctrl-C: health waits end (recorded as Interrupted), nothing more starts, the watches close.
    const stopping = new AbortController();
    const stop = () => stopping.abort();
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
    let results: ReconcileResult[];
    try {
      results = await syncPass(w.deps, apps, {
        concurrency: w.config.concurrency,
        trigger: "cli",
        signal: stopping.signal,
        snapshots,
        onSkip: (app, why) => io.err(`  skipped ${app}: ${why}\n`),
      });
    } finally {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
    }
    if (values.json)
      io.out(
        `${JSON.stringify(
          results.map(({ plan: _p, ...r }) => r),
          null,
          2,
        )}\n`,
      );
    else for (const r of results) io.out(formatResult(r));
    const skipped = apps.filter((a) => !a.suspend).length - results.length;
    return results.every((r) => r.outcome === "Succeeded") && skipped === 0 ? EXIT.ok : EXIT.failed;
  } finally {
    await live.close();
    w.close();
  }
}

async function planCommand(flags: GlobalFlags, values: Values, io: Io): Promise<number> {
  const w = await wire(flags, silentLogger);
  try {
    const snapshots = await fetchSnapshots(w, true);
    // --ref: another ref of the default source's repository (a pull request's head), planned as if merged.
    if (values.ref) {
      const name = snapshots.has(DEFAULT_SOURCE) ? DEFAULT_SOURCE : [...snapshots.keys()][0];
      const other = w.repository(name).withRef(values.ref);
      if (name !== undefined) snapshots.set(name, await other.snapshot(await other.resolve()));
    }
    const allApps = await appsWithGenerated(w.config, snapshots);
    const snapshotOf = (app: AppConfig) => snapshots.get(app.source) as Snapshot;
    await w.kube.discover();
    let failed = false;
    const plans = [];
    // Each app renders once; dependencies render too, even when not selected, for what they create.
    const renders = new Map<string, ReturnType<typeof w.deps.render>>();
    const renderOf = (app: AppConfig) => {
      const cached = renders.get(app.name) ?? w.deps.render(snapshotOf(app), app);
      renders.set(app.name, cached);
      return cached;
    };
    for (const app of selectApps(allApps, values.app)) {
      const snapshot = snapshotOf(app);
      const rendered = await renderOf(app);
      if (rendered.errors.length > 0) {
        failed = true;
        io.err(rendered.errors.map((e) => `✗ ${app.name}: ${e.path}: ${e.message}\n`).join(""));
        continue;
      }
      const owners = w.ledger.inventoryOwners(app.name);
      // Nothing is applied between plans: what an earlier app in dependsOn order creates is validated after it.
      const dependencies = dependenciesOf(app, allApps);
      const after = fromDependencies(
        await Promise.all(
          dependencies.map(async (d) => ({
            app: d.name,
            objects: (await renderOf(d)).objects.map((o) => o.object),
          })),
        ),
      );
      const p = await plan(
        {
          app,
          revision: snapshot.revision,
          desired: rendered.objects,
          inventory: w.ledger.inventory(app.name),
          ownerOf: (ref) => owners.get(objectId(ref)),
          fileExists: async (path) => (await snapshot.stat(path)) !== undefined,
          after,
        },
        w.clientFor(app.name),
      );
      if (p.errors.length > 0) failed = true;
      // Sync rules judge the plan as a sync would: their verdicts show, and a blocked plan fails.
      const judged =
        p.errors.length === 0 && w.deps.policy
          ? w.deps.policy.judge({ app, plan: p, commit: snapshot.commit })
          : undefined;
      if (judged?.blocked) failed = true;
      plans.push({
        ...(judged?.plan ?? p),
        skipped: rendered.skipped.map((x) => ({ path: x.path, message: x.message })),
        verdicts: [...(judged?.verdicts ?? [])],
        ...(judged?.blocked ? { blocked: judged.blocked.message } : {}),
      });
    }
    if (values.json) {
      // Live objects and manifests stay out of the JSON; the diff carries what changes (Secret values redacted).
      const slim = plans.map((p) => ({
        ...p,
        changes: p.changes.map(({ desired: _d, live: _l, ...c }) => c),
      }));
      io.out(`${JSON.stringify(slim, null, 2)}\n`);
    } else
      for (const p of plans)
        io.out(
          `${formatPlan(p, values.verbose)}${formatSkipped(p.skipped)}${formatVerdicts(p.verdicts)}${p.blocked ? `  ✗ blocked: ${p.blocked}\n` : ""}`,
        );
    return failed ? EXIT.failed : EXIT.ok;
  } finally {
    w.close();
  }
}

async function runCommand(flags: GlobalFlags, io: Io, log: Logger): Promise<number> {
  const w = await wire(flags, log, progress(io));
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
  const drift = wireDrift(w, log, notify?.onDrift);
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
  const commitOnly = new Set(
    w.config.apps
      .filter((a) => a.drift && (a.drift.action !== "heal" || a.drift.rules.length > 0))
      .map((a) => a.name),
  );
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
  let server: Served;
  try {
    server = await startApi({
      api: w.config.api,
      apps: w.config.apps,
      sourceRef: primarySource(w.config).ref,
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
    void loop.stop();
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  log.log("info", "berth is running", {
    sources: Object.fromEntries(
      [...w.sources].map(([name, s]) => [name, `${s.url}@${w.config.sources[name]?.ref}`]),
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

/** The `default` source, or the first named one: what single-source settings fall back to. */
function primarySource(config: AgentConfig): SourceConfig {
  return (config.sources[DEFAULT_SOURCE] ?? Object.values(config.sources)[0]) as SourceConfig;
}

/** The replica's log callback over the agent's logger. */
function logTo(log: Logger) {
  return (level: "info" | "warn", message: string, fields?: Record<string, unknown>) =>
    log.log(level, message, fields ?? {});
}

async function statusCommand(flags: GlobalFlags, values: Values, io: Io): Promise<number> {
  if (values.server) return remoteStatus(values.server, values, io);
  const config = loadConfig(flags.config);
  const ledger = await openLedger(config);
  try {
    const rows = config.apps.map((app) => {
      const pin = ledger.pinOf(app.name);
      const drift = driftSummary(ledger, app.name, false);
      return {
        app: app.name,
        source: app.source,
        last: ledger.list({ app: app.name, limit: 1 })[0],
        ...(pin ? { pin } : {}),
        ...(drift ? { drift } : {}),
      };
    });
    if (values.json) io.out(`${JSON.stringify(rows, null, 2)}\n`);
    else {
      // The SOURCE column only where there is more than the one source to tell apart.
      const several = Object.keys(config.sources).length > 1;
      const cut = <T>(row: T[]): T[] => (several ? row : [row[0] as T, ...row.slice(2)]);
      io.out(
        table(
          cut([
            "APP",
            "SOURCE",
            "REVISION",
            "OUTCOME",
            "REASON",
            "HEALTH",
            "DRIFT",
            "FINISHED",
            "PINNED",
            "MESSAGE",
          ]),
          rows.map(({ app, source, last, pin, drift }) =>
            cut([
              app,
              // The source of the newest entry's revision (the configured one before the first sync).
              last?.source ?? source,
              last?.revision ?? "-",
              last?.outcome ?? "never synced",
              last?.reason ?? "",
              last?.health ?? "",
              String(drift?.recent ?? 0),
              // A folded no-op resync finished later than the entry it verified.
              last?.verified?.lastAt ?? last?.finishedAt ?? "",
              pin ? `entry ${pin.entry}${pin.pendingRevision ? ` (Git: ${pin.pendingRevision})` : ""}` : "",
              (last?.message ?? "").slice(0, 80),
            ]),
          ),
        ),
      );
    }
    return EXIT.ok;
  } finally {
    ledger.close();
  }
}

/** `berth status --server`: the running agent's view; exit 1 when it cannot be asked. */
async function remoteStatus(server: string, values: Values, io: Io): Promise<number> {
  const tokenFile = values["token-file"];
  const token = tokenFile ? readSecretFile(tokenFile, "API token").trim() : process.env.BERTH_TOKEN;
  let apps: Awaited<ReturnType<typeof fetchApps>>;
  try {
    apps = await fetchApps(server, token);
  } catch (err) {
    io.err(`berth: ${messageOf(err)}\n`);
    return EXIT.failed;
  }
  if (values.json) io.out(`${JSON.stringify(apps, null, 2)}\n`);
  else {
    // The SOURCE column only where some app reads a named source.
    const several = apps.some((a) => (a.source ?? "default") !== "default");
    const cut = <T>(row: T[]): T[] => (several ? row : [row[0] as T, ...row.slice(2)]);
    io.out(
      table(
        cut(["APP", "SOURCE", "SYNC", "HEALTH", "DRIFT", "APPLIED", "IN GIT", "LAST ATTEMPT", "ERROR"]),
        apps.map((a) =>
          cut([
            a.name,
            a.source ?? "default",
            a.syncStatus,
            a.healthStatus,
            String(a.drift?.recent ?? 0),
            a.revision.applied ?? "-",
            a.revision.seen ?? "-",
            a.lastAttemptAt ?? "",
            a.lastError ? `${a.lastError.reason}: ${a.lastError.message}`.slice(0, 80) : "",
          ]),
        ),
      ),
    );
  }
  return EXIT.ok;
}

async function ledgerCommand(flags: GlobalFlags, values: Values, rest: string[], io: Io): Promise<number> {
  const [sub, arg] = rest;
  const config = loadConfig(flags.config);
  const ledger = await openLedger(config);
  try {
    if (sub === "list") {
      const query: { app?: string; limit?: number; before?: number } = {};
      if (values.app) query.app = values.app;
      if (values.limit) query.limit = Number(values.limit);
      if (values.before) query.before = Number(values.before);
      const entries = ledger.list(query);
      if (values.json) io.out(`${JSON.stringify(entries, null, 2)}\n`);
      else
        io.out(
          table(
            ["ID", "APP", "REVISION", "OUTCOME", "REASON", "STARTED", "MESSAGE"],
            entries.flatMap((e) => {
              const row = [
                String(e.id),
                e.app,
                e.revision,
                e.outcome,
                e.reason ?? "",
                e.startedAt,
                (e.message ?? "").slice(0, 70),
              ];
              // The no-op resyncs folded into the entry: one line for the whole run.
              return e.verified
                ? [row, ["", "", "", "", "", "", `↳ ${describeVerified(e.verified, e.outcome)}`]]
                : [row];
            }),
          ),
        );
      return EXIT.ok;
    }
    if (sub === "gc") {
      const dryRun = values["dry-run"] === true;
      const report = ledger.gc({ ...config.ledger.retention, dryRun });
      if (values.json) io.out(`${JSON.stringify(report, null, 2)}\n`);
      else io.out(formatGc(report));
      return EXIT.ok;
    }
    if (sub === "show" && arg) {
      const entry = ledger.get(Number(arg));
      if (!entry) {
        io.err(`berth: ledger entry ${arg} not found\n`);
        return EXIT.failed;
      }
      if (values.json) io.out(`${JSON.stringify(entry, null, 2)}\n`);
      else {
        io.out(
          `entry ${entry.id}: ${entry.app} ${entry.revision} — ${entry.outcome} ${entry.reason ?? ""}\n`,
        );
        if (entry.commit)
          io.out(
            `commit ${entry.commit.sha} by ${entry.commit.author} at ${entry.commit.time}\n  ${entry.commit.message.trim()}\n`,
          );
        if (entry.message) io.out(`message: ${entry.message}\n`);
        io.out(formatVerdicts(entry.verdicts ?? []));
        io.out(
          table(
            ["ACTION", "OBJECT", "WRITE", "HEALTH", "NOTE"],
            entry.objects.map((o) => [
              o.action,
              `${o.ref.kind}/${o.ref.namespace ? `${o.ref.namespace}/` : ""}${o.ref.name}`,
              o.status ?? "",
              o.health ?? "",
              o.message ?? "",
            ]),
          ),
        );
      }
      return EXIT.ok;
    }
    io.err("berth: usage: berth ledger list|show ID|gc [--dry-run]|verify|export FILE|import FILE\n");
    return EXIT.usage;
  } finally {
    ledger.close();
  }
}

async function validateCommand(flags: GlobalFlags, values: Values, io: Io): Promise<number> {
  const config = loadConfig(flags.config);
  io.out(`${flags.config}: valid (${config.apps.length} apps)\n`);
  // Generated apps need a listing: the directory given (for every source), else each generator's source.
  let generated: AppConfig[] = [];
  if (config.generate.length > 0) {
    const dir = values.dir;
    const snapshots = new Map<string, Snapshot>();
    for (const g of config.generate) {
      if (snapshots.has(g.source)) continue;
      if (dir) {
        snapshots.set(g.source, new FsSnapshot(dir));
        continue;
      }
      const source = config.sources[g.source] as SourceConfig;
      const port = gitSourceFor(source, join(dirname(config.ledger.path), "git-cache"));
      try {
        snapshots.set(g.source, await port.snapshot(await port.resolve()));
      } catch (err) {
        io.err(`✗ generate[${g.index}]: cannot list source ${g.source}: ${messageOf(err)}\n`);
        return EXIT.failed;
      }
    }
    generated = await expandGenerators(config, (name) => snapshots.get(name));
    for (const g of config.generate) {
      const mine = generated.filter((a) => a.generated?.index === g.index);
      io.out(
        `generate[${g.index}] (source ${g.source}, dirs ${g.dirs}): ${mine.length} apps${mine.length > 0 ? `: ${mine.map((a) => `${a.name} (${a.path})`).join(", ")}` : ""}\n`,
      );
    }
  }
  if (!values.dir) return EXIT.ok;
  const snapshot = new FsSnapshot(values.dir);
  // Offline: Kustomize, Helm, SOPS and file/config variables render; variables from the cluster cannot.
  const renderApp = renderPortFor(config);
  let failed = false;
  for (const app of [...config.apps, ...generated]) {
    const r = await renderApp(snapshot, app);
    for (const e of r.errors) io.err(`✗ ${app.name}: ${e.path}: ${e.message}\n`);
    for (const s of r.skipped) io.err(`  ${app.name}: skipped ${s.path}: ${s.message}\n`);
    if (r.errors.length > 0) failed = true;
    else io.out(`✓ ${app.name}: ${r.objects.length} objects from ${app.path || "."}\n`);
  }
  const inline = sharedParsePool().fallback;
  if (inline) io.err(`note: manifests were parsed in the main thread: ${inline}\n`);
  return failed ? EXIT.failed : EXIT.ok;
}

/**
 * Every source's newest snapshot, fetched in parallel; a source that cannot be fetched is left out (its apps
 * then fetch on their own and record why not), unless `strict`: then the error names the source.
 */
async function fetchSnapshots(w: Wired, strict = false): Promise<Map<string, Snapshot>> {
  const out = new Map<string, Snapshot>();
  await Promise.all(
    [...w.sources].map(async ([name, port]) => {
      try {
        out.set(name, await port.snapshot(await port.resolve()));
      } catch (err) {
        if (strict) throw new BerthError(messageOf(err), { subject: `source ${name}`, cause: err });
      }
    }),
  );
  return out;
}

/** The configured apps and, when generators are configured, the apps they make from the snapshots. */
async function appsWithGenerated(
  config: AgentConfig,
  snapshots: Map<string, Snapshot>,
): Promise<AppConfig[]> {
  if (config.generate.length === 0) return config.apps;
  return [...config.apps, ...(await expandGenerators(config, (name) => snapshots.get(name)))];
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
