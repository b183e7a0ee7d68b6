/** `berth status`: the last ledger entry per app, or a running agent's view. */
import { driftSummary } from "../../api/app-view.ts";
import { fetchApps } from "../../api/client.ts";
import { loadConfig } from "../../config/config.ts";
import { readSecretFile } from "../../config/credentials.ts";
import { messageOf } from "../../object/errors.ts";
import { EXIT, type Io, type Values } from "../common.ts";
import { table } from "../format.ts";
import { type GlobalFlags, openLedger } from "../wire.ts";

export async function statusCommand(flags: GlobalFlags, values: Values, io: Io): Promise<number> {
  if (values.server) return remoteStatus(values.server, values, io);
  const config = loadConfig(flags.config);
  const ledger = await openLedger(config);
  try {
    const rows = config.apps.map((app) => {
      const pin = ledger.pinOf(app.name);
      const drift = driftSummary(ledger, app.name, false);
      return {
        app: app.name,
        last: ledger.list({ app: app.name, limit: 1 })[0],
        ...(pin ? { pin } : {}),
        ...(drift ? { drift } : {}),
      };
    });
    if (values.json) io.out(`${JSON.stringify(rows, null, 2)}\n`);
    else {
      io.out(
        table(
          ["APP", "REVISION", "OUTCOME", "REASON", "HEALTH", "DRIFT", "FINISHED", "PINNED", "MESSAGE"],
          rows.map(({ app, last, pin, drift }) => [
            app,
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
  else
    io.out(
      table(
        ["APP", "SYNC", "HEALTH", "DRIFT", "APPLIED", "IN GIT", "LAST ATTEMPT", "ERROR"],
        apps.map((a) => [
          a.name,
          a.syncStatus,
          a.healthStatus,
          String(a.drift?.recent ?? 0),
          a.revision.applied ?? "-",
          a.revision.seen ?? "-",
          a.lastAttemptAt ?? "",
          a.lastError ? `${a.lastError.reason}: ${a.lastError.message}`.slice(0, 80) : "",
        ]),
      ),
    );
  return EXIT.ok;
}
