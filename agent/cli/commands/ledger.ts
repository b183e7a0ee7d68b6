/** `berth ledger list|show|gc`: reading and collecting the ledger (verify/export/import/restore: replay-command.ts). */
import { loadConfig } from "../../config/config.ts";
import { type Ctx, EXIT, type Io, printData, UsageError } from "../common.ts";
import { describeVerified, formatGc, formatVerdicts, table } from "../format.ts";
import { type GlobalFlags, openLedger } from "../wire.ts";

const USAGE = "usage: berth ledger list|show ID|gc [--dry-run]|verify|export FILE|import FILE|restore";

/** A positive whole number from a flag or argument, or a usage error naming it. */
function positive(value: string, what: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new UsageError(`${what} ${value}: expected a whole number ≥ 1`);
  return Number(value);
}

export async function ledgerCommand(flags: GlobalFlags, ctx: Ctx, io: Io): Promise<number> {
  const values = ctx.values;
  const [sub, arg] = ctx.args;
  // Bad arguments are usage errors before the ledger opens.
  if (sub !== "list" && sub !== "gc" && sub !== "show") throw new UsageError(USAGE);
  if (sub === "show" && arg === undefined) throw new UsageError("usage: berth ledger show ID");
  const id = sub === "show" ? positive(arg ?? "", "entry") : 0;
  const query: { app?: string; limit?: number; before?: number } = {};
  if (values.app) query.app = values.app;
  if (values.limit !== undefined) query.limit = positive(values.limit, "--limit");
  if (values.before !== undefined) query.before = positive(values.before, "--before");
  const machine = ctx.output === "json" || ctx.output === "yaml" ? ctx.output : undefined;
  const config = loadConfig(flags.config);
  const ledger = await openLedger(config);
  try {
    if (sub === "list") {
      const entries = ledger.list(query);
      if (machine) printData(io, machine, entries);
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
      if (machine) printData(io, machine, report);
      else io.out(formatGc(report));
      return EXIT.ok;
    }
    if (sub === "show") {
      const entry = ledger.get(id);
      if (!entry) {
        io.err(`berth: ledger entry ${arg} not found\n`);
        return EXIT.failed;
      }
      if (machine) printData(io, machine, entry);
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
    throw new UsageError(USAGE);
  } finally {
    ledger.close();
  }
}
