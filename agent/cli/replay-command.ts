/**
 * The disaster-recovery commands: `replay`, `pin`/`unpin`, and `ledger verify|export|import`. Replay reads
 * the ledger only, never Git; exit codes follow cli.ts (0 ok, 1 failed, 2 an input to fix).
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { type AgentConfig, loadConfig } from "../config/config.ts";
import type { Logger } from "../engine/log.ts";
import type { AppSpec, EngineEvent } from "../engine/ports.ts";
import {
  planReplay,
  type ReplayDeps,
  type ReplayEntry,
  type ReplayResult,
  replay,
  resolveEntry,
  type Unrestored,
} from "../engine/replay.ts";
import { Ledger } from "../ledger/ledger.ts";
import { restoreFromReplica } from "../ledger/replica.ts";
import { dependencyOrder } from "../object/dependency-order.ts";
import { BerthError } from "../object/errors.ts";
import type { Plan } from "../plan/plan.ts";
import { formatPlan, formatResult } from "./format.ts";
import { type GlobalFlags, openLedger, replicaStore, wire } from "./wire.ts";

/** Exit codes, as in cli.ts (kept here so this file does not import the shell that imports it). */
const OK = 0;
const FAILED = 1;

/** The flags these commands read. */
export interface ReplayFlags {
  app?: string | undefined;
  to?: string | undefined;
  /** `ledger restore`: the replica URL (default: ledger.replica.url). */
  from?: string | undefined;
  all?: boolean | undefined;
  dryRun?: boolean | undefined;
  force?: boolean | undefined;
  json?: boolean | undefined;
}

/** Where a command writes. */
export interface ReplayIo {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** The `ledger` subcommands this file implements. */
export const LEDGER_ADMIN_COMMANDS: ReadonlySet<string> = new Set(["verify", "export", "import", "restore"]);

/** `berth replay --app NAME --to ENTRY|COMMIT|last-healthy [--dry-run]` or `berth replay --all [--dry-run]`. */
export async function replayCommand(
  flags: GlobalFlags,
  values: ReplayFlags,
  io: ReplayIo,
  log: Logger,
  emit?: (e: EngineEvent) => void,
): Promise<number> {
  if (values.all ? values.app || values.to : !values.app || !values.to)
    throw new BerthError("usage: berth replay --app NAME --to ENTRY|COMMIT|last-healthy [--dry-run] | --all");
  const w = await wire(flags, log, emit);
  try {
    const deps: ReplayDeps = { ...w.deps, ledger: w.ledger };
    const apps = values.all
      ? dependencyOrder(w.config.apps).filter((a) => !a.suspend)
      : [appNamed(w.config.apps, values.app ?? "")];
    // Resolve every target first: a typo in --to must not leave half the apps replayed.
    const targets: Array<{ app: AppSpec; entry?: ReplayEntry; problem?: string }> = apps.map((app) => {
      if (!values.all) return { app, entry: resolveEntry(w.ledger, app.name, values.to ?? "") };
      try {
        return { app, entry: resolveEntry(w.ledger, app.name, "last-healthy") };
      } catch (err) {
        return { app, problem: err instanceof Error ? err.message : String(err) };
      }
    });
    if (values.dryRun) return await dryRun(deps, targets, values, io);

    w.ledger.markInterrupted();
    const results: ReplayResult[] = [];
    const failed = new Set<string>();
    for (const { app, entry, problem } of targets) {
      const blocker = app.dependsOn.find((d) => failed.has(d));
      if (!entry || blocker) {
        failed.add(app.name);
        io.err(`✗ ${app.name}: ${problem ?? `skipped: its dependency ${blocker} was not restored`}\n`);
        continue;
      }
      const r = await replay(deps, { app, entry, trigger: "replay" });
      results.push(r);
      if (r.outcome !== "Succeeded") failed.add(app.name);
      if (!values.json) {
        // Applied but with Secrets left out is not a success: the line says so, as the exit code does.
        io.out(
          r.outcome === "Succeeded" && r.unrestored.length > 0
            ? `✗ ${r.app} ${r.revision}: incomplete — applied, but ${r.unrestored.length} Secret(s) could not be restored  [entry ${r.entry}]\n`
            : formatResult(r),
        );
        io.out(formatUnrestored(r.unrestored));
      }
    }
    if (values.json)
      io.out(
        `${JSON.stringify(
          results.map(({ plan: _p, ...r }) => r),
          null,
          2,
        )}\n`,
      );
    // A Secret that could not be restored makes the restore incomplete: say so in the exit code too.
    const incomplete = results.some((r) => r.unrestored.length > 0);
    return failed.size === 0 && !incomplete ? OK : FAILED;
  } finally {
    w.close();
  }
}

async function dryRun(
  deps: ReplayDeps,
  targets: Array<{ app: AppSpec; entry?: ReplayEntry; problem?: string }>,
  values: ReplayFlags,
  io: ReplayIo,
): Promise<number> {
  let failed = false;
  const plans: Array<{ source: number; plan: Plan; unrestored: Unrestored[] }> = [];
  for (const { app, entry, problem } of targets) {
    if (!entry) {
      failed = true;
      io.err(`✗ ${app.name}: ${problem}\n`);
      continue;
    }
    const { plan, unrestored } = await planReplay(deps, app, entry);
    if (plan.errors.length > 0) failed = true;
    plans.push({ source: entry.id, plan, unrestored });
    if (!values.json) {
      io.out(`replay of entry ${entry.id} (dry run, nothing written):\n${formatPlan(plan)}`);
      io.out(formatUnrestored(unrestored));
    }
  }
  if (values.json) {
    const slim = plans.map((p) => ({
      ...p,
      plan: { ...p.plan, changes: p.plan.changes.map(({ desired: _d, live: _l, ...c }) => c) },
      unrestored: p.unrestored.map(({ subject, why }) => ({ subject, why })),
    }));
    io.out(`${JSON.stringify(slim, null, 2)}\n`);
  }
  return failed ? FAILED : OK;
}

/** `berth pin --app NAME --to ENTRY`: records the pin, then replays the entry now. */
export async function pinCommand(
  flags: GlobalFlags,
  values: ReplayFlags,
  io: ReplayIo,
  log: Logger,
): Promise<number> {
  if (!values.app || !values.to)
    throw new BerthError("usage: berth pin --app NAME --to ENTRY|COMMIT|last-healthy");
  const w = await wire(flags, log);
  try {
    const app = appNamed(w.config.apps, values.app);
    const entry = resolveEntry(w.ledger, app.name, values.to);
    w.ledger.pin(app.name, entry.id);
    io.err(
      `pinned ${app.name} at entry ${entry.id} (${entry.revision}); Git changes wait until berth unpin\n`,
    );
    const r = await replay({ ...w.deps, ledger: w.ledger }, { app, entry, trigger: "pin" });
    if (values.json) {
      const { plan: _p, ...rest } = r;
      io.out(`${JSON.stringify({ pinned: w.ledger.pinOf(app.name), result: rest }, null, 2)}\n`);
    } else {
      io.out(formatResult(r));
      io.out(formatUnrestored(r.unrestored));
    }
    return r.outcome === "Succeeded" && r.unrestored.length === 0 ? OK : FAILED;
  } finally {
    w.close();
  }
}

/** `berth unpin --app NAME`: releases the pin; the run loop's next attempt syncs Git again. */
export async function unpinCommand(flags: GlobalFlags, values: ReplayFlags, io: ReplayIo): Promise<number> {
  if (!values.app) throw new BerthError("usage: berth unpin --app NAME");
  const config = loadConfig(flags.config);
  const app = appNamed(config.apps, values.app);
  const ledger = await openLedger(config);
  try {
    const pin = ledger.pinOf(app.name);
    ledger.unpin(app.name);
    io.out(
      pin
        ? `unpinned ${app.name} (was at entry ${pin.entry}${pin.pendingRevision ? `; pending ${pin.pendingRevision}` : ""}); the next sync catches up to Git\n`
        : `${app.name} was not pinned\n`,
    );
    return OK;
  } finally {
    ledger.close();
  }
}

/** `berth ledger verify|export FILE|import FILE [--force]`. */
export async function ledgerAdminCommand(
  flags: GlobalFlags,
  values: ReplayFlags,
  rest: string[],
  io: ReplayIo,
): Promise<number> {
  const [sub, file] = rest;
  const config = loadConfig(flags.config);
  if (sub === "verify") {
    const ledger = await openLedger(config);
    try {
      return report(ledger, config.ledger.path, values, io);
    } finally {
      ledger.close();
    }
  }
  if (sub === "restore") return restoreLedger(config, values, io);
  if (!file) throw new BerthError(`usage: berth ledger ${sub} FILE`);
  if (sub === "export") {
    const ledger = await openLedger(config);
    try {
      // SQLite's online backup: a consistent snapshot even while `berth run` keeps writing.
      await ledger.backup(file);
    } finally {
      ledger.close();
    }
    const copy = await Ledger.open(file);
    try {
      io.err(`exported ${config.ledger.path} to ${file}\n`);
      return report(copy, file, values, io);
    } finally {
      copy.close();
    }
  }
  return importLedger(config.ledger.path, file, values, io);
}

/** Rebuilds the ledger from its replica into a scratch file, then installs it as `ledger import` does. */
async function restoreLedger(config: AgentConfig, values: ReplayFlags, io: ReplayIo): Promise<number> {
  const store = replicaStore(config, values.from);
  if (!store)
    throw new BerthError("set ledger.replica in the config, or pass --from s3://BUCKET/PREFIX", {
      subject: "ledger restore",
    });
  mkdirSync(dirname(config.ledger.path), { recursive: true });
  const scratch = mkdtempSync(join(dirname(config.ledger.path), ".berth-restore-"));
  try {
    const file = join(scratch, "restored.db");
    const r = await restoreFromReplica(store, file);
    io.err(
      `restored from ${store.where} (generation ${r.generation}, base ${r.base}, ${r.segments} segment(s))\n`,
    );
    return await importLedger(config.ledger.path, file, values, io);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Verifies a backup file, then installs it as the configured ledger (refusing to replace history unforced). */
async function importLedger(
  target: string,
  file: string,
  values: ReplayFlags,
  io: ReplayIo,
): Promise<number> {
  if (!existsSync(file)) throw new BerthError("no such file", { subject: file });
  if (existsSync(target)) {
    const existing = await Ledger.open(target);
    const entries = existing.list({ limit: 1 }).length;
    existing.close();
    if (entries > 0 && !values.force)
      throw new BerthError("already holds ledger entries; refusing to replace them (use --force)", {
        subject: `ledger.path ${target}`,
      });
  }
  mkdirSync(dirname(target), { recursive: true });
  // Verify a private copy (opening may migrate it), so neither the export nor the target is touched first.
  const scratch = mkdtempSync(join(dirname(target), ".berth-import-"));
  try {
    const copyPath = join(scratch, "import.db");
    copyFileSync(file, copyPath);
    const copy = await Ledger.open(copyPath);
    try {
      const v = copy.verify();
      if (!v.ok) {
        io.err(`berth: ${file}: refusing to import: ${badEntryMessage(copy, v)}\n`);
        return FAILED;
      }
      for (const suffix of ["", "-wal", "-shm"]) rmSync(`${target}${suffix}`, { force: true });
      await copy.backup(target);
      io.out(`imported ${file} into ${target}: ${v.entries} entries and ${v.blobs} blobs verified\n`);
      return OK;
    } finally {
      copy.close();
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Prints a verification result; exit 1 naming the first bad entry. */
function report(ledger: Ledger, path: string, values: ReplayFlags, io: ReplayIo): number {
  const v = ledger.verify();
  const affected = v.blob ? ledger.entriesWithBlob(v.blob) : [];
  if (values.json) io.out(`${JSON.stringify({ path, ...v, ...(v.blob ? { affected } : {}) }, null, 2)}\n`);
  if (v.ok) {
    if (!values.json) io.out(`${path}: ok — ${v.entries} entries and ${v.blobs} blobs verified\n`);
    return OK;
  }
  if (!values.json) io.err(`berth: ${path}: verification failed: ${badEntryMessage(ledger, v)}\n`);
  return FAILED;
}

/** The verification problem, naming the entry: a bad blob is named by the entries that recorded it. */
function badEntryMessage(ledger: Ledger, v: { firstBad?: number; blob?: string; message?: string }): string {
  if (v.firstBad !== undefined || !v.blob) return v.message ?? "unknown problem";
  const [first, ...others] = ledger.entriesWithBlob(v.blob);
  if (first === undefined) return `${v.message} (no entry references it)`;
  const also = others.length > 0 ? ` (also used by entries ${others.join(", ")})` : "";
  return `entry ${first}: its manifest ${v.message}${also}`;
}

function appNamed(apps: AppSpec[], name: string): AppSpec {
  const app = apps.find((a) => a.name === name);
  if (!app)
    throw new BerthError(`no such app (apps: ${apps.map((a) => a.name).join(", ")})`, {
      subject: `--app ${name}`,
    });
  return app;
}

function formatUnrestored(unrestored: readonly Unrestored[]): string {
  return unrestored.map((u) => `  ! not restored: ${u.subject}: ${u.why}\n`).join("");
}
