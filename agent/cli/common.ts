/** What every command shares: the flags, where output goes, exit codes and app selection. */
import type { parseArgs } from "node:util";
import { stringify } from "yaml";
import {
  type AgentConfig,
  type AnySourceConfig,
  type AppConfig,
  DEFAULT_SOURCE,
  loadConfig,
} from "../config/config.ts";
import { expandGenerators } from "../config/generate.ts";
import type { Logger } from "../engine/log.ts";
import type { EngineEvent } from "../engine/ports.ts";
import { BerthError, type ErrorReason, messageOf } from "../object/errors.ts";
import type { Snapshot } from "../object/snapshot.ts";
import { Progress } from "./progress.ts";
import type { Wired } from "./wire.ts";

/** Exit codes: documented in agent/cli/README.md. */
export const EXIT = { ok: 0, failed: 1, usage: 2, held: 3 } as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/**
 * A BerthError's reason → exit code: the one table of the CLI shell (the API's is STATUS_OF in
 * agent/api/http-error.ts). Fetch and build failures thrown out of a command are inputs: a secret file, a chart
 * path, a repository the config names.
 */
export const EXIT_OF: Readonly<Record<ErrorReason, ExitCode>> = {
  InvalidInput: EXIT.usage,
  NotFound: EXIT.usage,
  FetchFailed: EXIT.usage,
  BuildFailed: EXIT.usage,
  Conflict: EXIT.failed,
  Unavailable: EXIT.failed,
  PlanRejected: EXIT.failed,
  ApplyFailed: EXIT.failed,
  PruneFailed: EXIT.failed,
  HealthCheckFailed: EXIT.failed,
  Interrupted: EXIT.failed,
  Succeeded: EXIT.failed,
  Held: EXIT.held,
};

/** A programming error: JavaScript's own error types (and non-errors thrown), not a refusal of bad input. */
function isBug(err: unknown): boolean {
  return (
    !(err instanceof Error) ||
    err instanceof TypeError ||
    err instanceof ReferenceError ||
    err instanceof RangeError ||
    err instanceof EvalError ||
    err instanceof URIError
  );
}

/**
 * How a command that threw ends: its exit code and the line for stderr. A BerthError goes by EXIT_OF (without a
 * reason: an input error); a bug is exit 1, "internal error" (its stack is for --debug); any other error (a
 * library's or the system's: a kubeconfig, a missing file) is an input to fix, exit 2.
 */
export function failure(err: unknown): { code: ExitCode; line: string; bug: boolean } {
  if (err instanceof BerthError)
    return { code: (err.reason && EXIT_OF[err.reason]) || EXIT.usage, line: err.message, bug: false };
  if (isBug(err)) return { code: EXIT.failed, line: `internal error: ${messageOf(err)}`, bug: true };
  return { code: EXIT.usage, line: messageOf(err), bug: false };
}

/** Where a command writes. */
export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Standard error is a terminal: human logs and progress lines. */
  tty: boolean;
  /** Standard output is a terminal: symbols in colour (unless NO_COLOR is set). */
  color?: boolean;
}

/** A mistake in what was typed (flag, argument, app name): exit 2, one line. */
export class UsageError extends BerthError {}

import { OPTIONS } from "./options.ts";

export { OPTIONS };

export type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>["values"];

/** What a command was asked for beyond its flags: the app names given (positional or --app). */
export interface Ctx {
  values: Values;
  /** Positional arguments after the command (app names for sync, plan, diff, status). */
  args: string[];
  log: Logger;
  /** json|yaml|wide from -o (or --json), "text" otherwise. */
  output: "text" | "json" | "yaml" | "wide";
  /** Logs are JSON lines (--log-format json, or stderr is not a terminal). */
  logJson: boolean;
}

/** The apps named on the command line (positional names and --app), or all; an unknown name is exit 2. */
export function selectApps<T extends { name: string }>(apps: T[], names: readonly string[]): T[] {
  if (names.length === 0) return apps;
  const known = new Set(apps.map((a) => a.name));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length > 0)
    throw new UsageError(
      `unknown app${unknown.length > 1 ? "s" : ""} ${unknown.map((n) => `"${n}"`).join(", ")} (known apps: ${[...known].join(", ") || "none"})`,
    );
  const wanted = new Set(names);
  return apps.filter((a) => wanted.has(a.name));
}

/** The app names a command line gives: positional names, then --app. */
export function appNames(ctx: Ctx): string[] {
  return [...ctx.args, ...(ctx.values.app ? [ctx.values.app] : [])];
}

/** Prints data as JSON or YAML (the -o formats every read command shares). */
export function printData(io: Io, format: "json" | "yaml", data: unknown): void {
  io.out(format === "yaml" ? stringify(data) : `${JSON.stringify(data, null, 2)}\n`);
}

/**
 * Progress lines for sync, run and replay: none with --quiet or -o json|yaml (a script reads stdout), log
 * records with --log-format json (stderr stays one format), plain lines otherwise.
 */
export function progress(io: Io, ctx: Ctx): ((e: EngineEvent) => void) | undefined {
  if (ctx.values.quiet || ctx.output === "json" || ctx.output === "yaml") return undefined;
  const write = ctx.logJson
    ? (text: string) => {
        for (const line of text.split("\n")) if (line.trim()) ctx.log.log("info", line.trim());
      }
    : io.err;
  return new Progress(write).onEvent;
}

/** The `default` source, or the first named one: what single-source settings fall back to. */
export function primarySource(config: AgentConfig): AnySourceConfig {
  return (config.sources[DEFAULT_SOURCE] ?? Object.values(config.sources)[0]) as AnySourceConfig;
}

/**
 * Every source's newest snapshot, fetched in parallel; a source that cannot be fetched is left out (its apps
 * then fetch on their own and record why not), unless `strict`: then the error names the source.
 */
export async function fetchSnapshots(w: Wired, strict = false): Promise<Map<string, Snapshot>> {
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

/**
 * The configured apps and, when generators are configured, the apps they make from the snapshots (`all`), and
 * of those the named ones (`selected`; all when none).
 */
export async function appsAt(
  config: AgentConfig,
  snapshots: Map<string, Snapshot>,
  names: readonly string[],
): Promise<{ all: AppConfig[]; selected: AppConfig[] }> {
  const generated =
    config.generate.length === 0 ? [] : await expandGenerators(config, (name) => snapshots.get(name));
  const all = [...config.apps, ...generated];
  return { all, selected: selectApps(all, names) };
}

/**
 * The app names a command line gives, checked against the config before anything connects (unknown: exit 2);
 * with generators, a name may be a generated app only the source listing knows, so the check waits for
 * appsAt over the expanded list.
 */
export function namedApps(configPath: string, ctx: Ctx): string[] {
  const names = appNames(ctx);
  const config = loadConfig(configPath);
  if (config.generate.length === 0) selectApps(config.apps, names);
  return names;
}
