/** The pins table: apps held at an entry (replayed instead of Git) until unpinned; state, so unchained. */
import { BerthError } from "../../object/errors.ts";
import type { LedgerAccess } from "./access.ts";

/** An app held at a ledger entry; `pendingRevision` is the Git revision it is not applying. */
export interface Pin {
  app: string;
  entry: number;
  pinnedAt: string;
  pendingRevision?: string;
}

/** Pinned apps. */
export class PinsTable {
  constructor(private readonly access: LedgerAccess) {}

  private get db() {
    return this.access.db;
  }

  /** Holds an app at a finished entry of its own: the run loop replays that entry instead of Git until unpin. */
  pin(app: string, entryId: number): Pin {
    return this.access.guard(`cannot pin app ${app}`, () =>
      this.db.transaction(() => {
        const row = this.db.get<{ app: string; outcome: string }>(
          "SELECT app, outcome FROM entries WHERE id = ?",
          [entryId],
        );
        if (!row) throw new BerthError(`entry ${entryId} does not exist`, this.access.err());
        if (row.app !== app)
          throw new BerthError(`entry ${entryId} belongs to app ${row.app}, not ${app}`, this.access.err());
        if (row.outcome === "Running")
          throw new BerthError(`entry ${entryId} is still Running`, this.access.err());
        const pinnedAt = this.access.now().toISOString();
        this.db.run(
          "INSERT INTO pins (app, entry_id, pinned_at, pending_revision) VALUES (?, ?, ?, NULL) ON CONFLICT (app) DO UPDATE SET entry_id = excluded.entry_id, pinned_at = excluded.pinned_at, pending_revision = NULL",
          [app, entryId, pinnedAt],
        );
        return { app, entry: entryId, pinnedAt };
      }),
    );
  }

  /** Releases an app's pin; returns whether it was pinned. */
  unpin(app: string): boolean {
    return this.access.guard(
      `cannot unpin app ${app}`,
      () => this.db.run("DELETE FROM pins WHERE app = ?", [app]).changes > 0,
    );
  }

  /** The app's pin, or undefined. */
  of(app: string): Pin | undefined {
    const row = this.access.guard("cannot read pins", () =>
      this.db.get<PinRow>("SELECT * FROM pins WHERE app = ?", [app]),
    );
    return row ? pinOfRow(row) : undefined;
  }

  /** Every pin by app, in one query (a status of many apps would otherwise read one per app). */
  all(): Map<string, Pin> {
    const rows = this.access.guard("cannot read pins", () => this.db.all<PinRow>("SELECT * FROM pins"));
    return new Map(rows.map((row) => [row.app, pinOfRow(row)]));
  }

  /** Records the Git revision a pinned app is not applying (shown as pending). */
  notePending(app: string, revision: string): void {
    this.access.guard(`cannot update the pin of app ${app}`, () =>
      this.db.run("UPDATE pins SET pending_revision = ? WHERE app = ?", [revision, app]),
    );
  }
}

interface PinRow {
  app: string;
  entry_id: number;
  pinned_at: string;
  pending_revision: string | null;
}

function pinOfRow(row: PinRow): Pin {
  const pin: Pin = { app: row.app, entry: row.entry_id, pinnedAt: row.pinned_at };
  if (row.pending_revision !== null) pin.pendingRevision = row.pending_revision;
  return pin;
}
