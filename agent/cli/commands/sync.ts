/** `berth sync [APP...]`: one sync pass over every app or the ones named. */
import { syncPass } from "../../engine/loop.ts";
import type { ReconcileResult } from "../../engine/reconcile.ts";
import {
  appsAt,
  type Ctx,
  EXIT,
  fetchSnapshots,
  type Io,
  namedApps,
  printData,
  progress,
} from "../common.ts";
import { formatResult } from "../format.ts";
import { type GlobalFlags, wire, wireLiveView } from "../wire.ts";

export async function syncCommand(flags: GlobalFlags, ctx: Ctx, io: Io): Promise<number> {
  const names = namedApps(flags.config, ctx);
  const w = await wire(flags, ctx.log, progress(io, ctx));
  const live = wireLiveView(w);
  try {
    w.ledger.markInterrupted();
    // Each source fetched once (an unreachable one: its apps fetch again and record why not).
    const snapshots = await fetchSnapshots(w);
    const { selected: apps } = await appsAt(w.config, snapshots, names);
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
    if (ctx.output === "json" || ctx.output === "yaml")
      printData(
        io,
        ctx.output,
        results.map(({ plan: _p, ...r }) => r),
      );
    else for (const r of results) io.out(formatResult(r, io.color === true));
    return syncExit(results, apps.filter((a) => !a.suspend).length - results.length);
  } finally {
    await live.close();
    w.close();
  }
}

/** 0 all synced; 3 when the only ones that did not are held or deferred; 1 when one failed or was skipped. */
export function syncExit(results: readonly ReconcileResult[], skipped: number): number {
  if (skipped > 0) return EXIT.failed;
  const notSynced = results.filter((r) => r.outcome !== "Succeeded");
  if (notSynced.length === 0) return EXIT.ok;
  return notSynced.every((r) => r.held) ? EXIT.held : EXIT.failed;
}
