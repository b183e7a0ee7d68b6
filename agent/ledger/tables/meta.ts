/**
 * The meta table and upkeep of the whole file: garbage collection with the space it returns, when it last
 * ran, the preflight write that proves the ledger can record, and small agent state kept across restarts.
 */
import { BerthError } from "../../object/errors.ts";
import { collectGarbage, type GcOptions, type GcReport } from "../retention.ts";
import { ledgerFault } from "../storage.ts";
import type { LedgerAccess } from "./access.ts";

/** Small state of the ledger (last gc, last write check) and the file's upkeep. */
export class MetaTable {
  constructor(private readonly access: LedgerAccess) {}

  private get db() {
    return this.access.db;
  }

  /** Drops old entries (keeping protected ones behind a chain checkpoint), collects unreferenced blobs and returns space. */
  gc(options: GcOptions): GcReport {
    const report = this.access.guard("cannot collect garbage", () =>
      collectGarbage(this.db, options, this.access.now()),
    );
    if (!options.dryRun) {
      this.access.guard("cannot return space to the file system", () => {
        // An older file has no incremental vacuum yet: one full VACUUM switches it over — unless a replica
        // ships rows by rowid (agent/ledger/replica.ts): VACUUM may renumber rowids, so such a file keeps
        // its freed pages for reuse instead.
        const mode = Number(this.db.get<{ auto_vacuum: number }>("PRAGMA auto_vacuum")?.auto_vacuum ?? 0);
        const replicated = this.db.get(
          "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'replica_log'",
        );
        if (mode === 2) this.db.exec("PRAGMA incremental_vacuum");
        else if (!replicated) this.db.exec("PRAGMA auto_vacuum = INCREMENTAL; VACUUM");
        this.db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
        // A gc that could not collect blobs (a sync was running) is not the day's gc: `run` tries again.
        if (!report.blobsSkipped)
          this.db.run(
            "INSERT INTO meta (key, value) VALUES ('last_gc_at', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [this.access.now().toISOString()],
          );
      });
    }
    return report;
  }

  /** When gc last ran (ISO 8601), or undefined. */
  lastGcAt(): string | undefined {
    return this.access.guard(
      "cannot read ledger state",
      () => this.db.get<{ value: string }>("SELECT value FROM meta WHERE key = 'last_gc_at'")?.value,
    );
  }

  /** A small piece of the agent's own state kept across restarts (JSON text), or undefined. */
  state(key: string): string | undefined {
    return this.access.guard(
      "cannot read ledger state",
      () => this.db.get<{ value: string }>("SELECT value FROM meta WHERE key = ?", [`state:${key}`])?.value,
    );
  }

  /** Keeps (or, with undefined, drops) a piece of the agent's own state across restarts. */
  setState(key: string, value: string | undefined): void {
    this.access.write("cannot write agent state", () => {
      if (value === undefined) this.db.run("DELETE FROM meta WHERE key = ?", [`state:${key}`]);
      else
        this.db.run(
          "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
          [`state:${key}`, value],
        );
    });
  }

  /**
   * Checks that the ledger can record a sync before one starts: enough free space beside the file and a
   * write that succeeds. Throws "ledger: disk full at <path>" (or the I/O error) otherwise, so nothing is
   * applied that could not be recorded. `minFree` is in bytes. With `writeCheckAgeMs`, a write that succeeded
   * that recently stands for the test write (free space is still checked every time).
   */
  preflight(minFree: number, writeCheckAgeMs?: number): void {
    const fault = ledgerFault(this.access.path, undefined, minFree);
    if (fault) {
      this.access.fault = fault;
      throw new BerthError(fault);
    }
    const { lastWriteAt } = this.access;
    if (writeCheckAgeMs !== undefined && lastWriteAt > 0 && performance.now() - lastWriteAt < writeCheckAgeMs)
      return;
    this.access.write("cannot write", () =>
      this.db.run(
        "INSERT INTO meta (key, value) VALUES ('last_write_check', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [this.access.now().toISOString()],
      ),
    );
  }
}
