/** `berth ledger list|show|gc`: reading and collecting the ledger (verify/export/import/restore: replay-command.ts). */
import { loadConfig } from "../../config/config.ts";
import { EXIT, type Io, type Values } from "../common.ts";
import { describeVerified, formatGc, formatVerdicts, table } from "../format.ts";
import { type GlobalFlags, openLedger } from "../wire.ts";

export async function ledgerCommand(
  flags: GlobalFlags,
  values: Values,
  rest: string[],
  io: Io,
): Promise<number> {
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
