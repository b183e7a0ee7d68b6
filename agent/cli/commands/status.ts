/** `berth status`: the last ledger entry per app, or a running agent's view. */
import { driftSummary } from "../../api/app-view.ts";
import { fetchApps } from "../../api/client.ts";
import { DEFAULT_SOURCE, loadConfig } from "../../config/config.ts";
import { readSecretFile } from "../../config/credentials.ts";
import { appNames, type Ctx, EXIT, type Io, printData, selectApps, type Values } from "../common.ts";
import { ago, shortRevision, table, tableFitting } from "../format.ts";
import { type GlobalFlags, openLedger } from "../wire.ts";

export async function statusCommand(flags: GlobalFlags, ctx: Ctx, io: Io): Promise<number> {
  const values = ctx.values;
  if (values.server) return remoteStatus(values.server, ctx, io);
  const config = loadConfig(flags.config);
  const names = appNames(ctx);
  if (config.generate.length === 0) selectApps(config.apps, names);
  const ledger = await openLedger(config);
  try {
    // A generated app is in no config list: a name the ledger has entries for is one (as approve takes it).
    const generated = names
      .filter((n) => !config.apps.some((a) => a.name === n))
      .flatMap((n) => {
        const last = config.generate.length > 0 ? ledger.list({ app: n, limit: 1 })[0] : undefined;
        return last ? [{ name: n, source: last.source ?? DEFAULT_SOURCE }] : [];
      });
    const apps = selectApps([...config.apps, ...generated], names);
    const rows = apps.map((app) => {
      const pin = ledger.pinOf(app.name);
      const drift = driftSummary(ledger, app.name, false);
      const last = ledger.list({ app: app.name, limit: 1 })[0];
      return {
        app: app.name,
        // The source of the newest entry's revision (the configured one before the first sync).
        source: last?.source ?? app.source,
        last,
        ...(pin ? { pin } : {}),
        ...(drift ? { drift } : {}),
      };
    });
    // The SOURCE column only where there is more than the one source to tell apart.
    printStatus(io, ctx.output, rows, sourceColumn(Object.keys(config.sources).length > 1), {
      // 100 columns: short revisions, relative times, the message cut to what is left.
      narrow: ["APP", "SOURCE", "REVISION", "STATUS", "HEALTH", "DRIFT", "AGE", "MESSAGE"],
      narrowCells: ({ app, source, last, pin, drift }, now) => [
        app,
        source,
        last ? `${shortRevision(last.revision)}${pin ? " (pinned)" : ""}` : "-",
        last ? (last.outcome === "Succeeded" ? "Succeeded" : (last.reason ?? last.outcome)) : "never synced",
        last?.health ?? "",
        String(drift?.recent ?? 0),
        ago(last?.verified?.lastAt ?? last?.finishedAt, now),
        last?.message ?? "",
      ],
      wide: [
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
      ],
      wideCells: ({ app, source, last, pin, drift }) => [
        app,
        source,
        last?.revision ?? "-",
        last?.outcome ?? "never synced",
        last?.reason ?? "",
        last?.health ?? "",
        String(drift?.recent ?? 0),
        // A folded no-op resync finished later than the entry it verified.
        last?.verified?.lastAt ?? last?.finishedAt ?? "",
        pin ? `entry ${pin.entry}${pin.pendingRevision ? ` (Git: ${pin.pendingRevision})` : ""}` : "",
        (last?.message ?? "").slice(0, 80),
      ],
    });
    return EXIT.ok;
  } finally {
    ledger.close();
  }
}

/** `berth status --server`: the running agent's view; exit 1 when it cannot be asked. */
async function remoteStatus(server: string, ctx: Ctx, io: Io): Promise<number> {
  const values: Values = ctx.values;
  const tokenFile = values["token-file"];
  const token = tokenFile ? readSecretFile(tokenFile, "API token").trim() : process.env.BERTH_TOKEN;
  // An agent that cannot be asked is exit 1: its error's reason is Unavailable (the shell's table).
  let apps = await fetchApps(server, token);
  // The local config is not read here: the agent's list names the known apps.
  const names = appNames(ctx);
  if (names.length > 0) apps = selectApps(apps, names);
  // The SOURCE column only where some app reads a named source.
  printStatus(
    io,
    ctx.output,
    apps,
    sourceColumn(apps.some((a) => (a.source ?? DEFAULT_SOURCE) !== DEFAULT_SOURCE)),
    {
      narrow: ["APP", "SOURCE", "SYNC", "HEALTH", "DRIFT", "APPLIED", "AGE", "ERROR"],
      narrowCells: (a, now) => [
        a.name,
        a.source ?? DEFAULT_SOURCE,
        a.syncStatus,
        a.healthStatus,
        String(a.drift?.recent ?? 0),
        a.revision.applied ? shortRevision(a.revision.applied) : "-",
        ago(a.lastAttemptAt ?? undefined, now),
        a.lastError ? `${a.lastError.reason}: ${a.lastError.message}` : "",
      ],
      wide: ["APP", "SOURCE", "SYNC", "HEALTH", "DRIFT", "APPLIED", "IN GIT", "LAST ATTEMPT", "ERROR"],
      wideCells: (a) => [
        a.name,
        a.source ?? DEFAULT_SOURCE,
        a.syncStatus,
        a.healthStatus,
        String(a.drift?.recent ?? 0),
        a.revision.applied ?? "-",
        a.revision.seen ?? "-",
        a.lastAttemptAt ?? "",
        a.lastError ? `${a.lastError.reason}: ${a.lastError.message}`.slice(0, 80) : "",
      ],
    },
  );
  return EXIT.ok;
}

/** The columns of both table forms and how a row fills them. */
interface Columns<R> {
  narrow: string[];
  narrowCells: (row: R, now: number) => string[];
  wide: string[];
  wideCells: (row: R) => string[];
}

/** Rows as JSON/YAML, a table that fits 100 columns, or (`-o wide`) every column in full. */
function printStatus<R>(
  io: Io,
  output: Ctx["output"],
  rows: R[],
  cut: <T>(row: T[]) => T[],
  c: Columns<R>,
): void {
  if (output === "json" || output === "yaml") printData(io, output, rows);
  else if (output === "wide")
    io.out(
      table(
        cut(c.wide),
        rows.map((r) => cut(c.wideCells(r))),
      ),
    );
  else {
    const now = Date.now();
    io.out(
      tableFitting(
        cut(c.narrow),
        rows.map((r) => cut(c.narrowCells(r, now))),
        100,
      ),
    );
  }
}

/** Keeps a row's second cell (SOURCE) only when `several` sources are there to tell apart. */
function sourceColumn(several: boolean): <T>(row: T[]) => T[] {
  return (row) => (several ? row : [row[0] as (typeof row)[number], ...row.slice(2)]);
}
