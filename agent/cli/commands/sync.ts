/** `berth sync`: one sync pass over the selected apps. */
import type { Logger } from "../../engine/log.ts";
import { syncPass } from "../../engine/loop.ts";
import type { ReconcileResult } from "../../engine/reconcile.ts";
import { EXIT, type Io, progress, selectApps, type Values } from "../common.ts";
import { formatResult } from "../format.ts";
import { type GlobalFlags, wire, wireLiveView } from "../wire.ts";

export async function syncCommand(flags: GlobalFlags, values: Values, io: Io, log: Logger): Promise<number> {
  const w = await wire(flags, log, values.json ? undefined : progress(io));
  const live = wireLiveView(w);
  try {
    w.ledger.markInterrupted();
    const apps = selectApps(w.config.apps, values.app);
    const snapshot = await w.source.snapshot(await w.source.resolve()).catch(() => undefined);
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
        ...(snapshot ? { snapshot } : {}),
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
