/**
 * The render_memos table: per app, the newest successful render under a durable render key, as the digests
 * of the manifests the ledger stored of it (agent/ledger/README.md, "Render memo"). A cache, not history:
 * unchained, replaced by the app's next reusable success, deleted with its entry.
 */
import type { RenderMemo } from "../../object/records.ts";
import type { LedgerAccess } from "./access.ts";

/** Render memos by app. */
export class RenderMemosTable {
  constructor(private readonly access: LedgerAccess) {}

  private get db() {
    return this.access.db;
  }

  /** Keeps `memo` as the app's render of `entry` (caller holds the entry's transaction). */
  record(app: string, entry: number, memo: RenderMemo): void {
    this.db.run(
      "INSERT INTO render_memos (app, entry_id, render_key, memo_json) VALUES (?, ?, ?, ?) ON CONFLICT (app) DO UPDATE SET entry_id = excluded.entry_id, render_key = excluded.render_key, memo_json = excluded.memo_json",
      [app, entry, memo.key, JSON.stringify(memo)],
    );
  }

  /** The app's memo made under `key` by an entry that succeeded, with that entry's id, or undefined. */
  of(app: string, key: string): { entry: number; memo: RenderMemo } | undefined {
    const row = this.access.guard("cannot read a render memo", () =>
      this.db.get<{ entry_id: number; memo_json: string }>(
        "SELECT m.entry_id, m.memo_json FROM render_memos m JOIN entries e ON e.id = m.entry_id WHERE m.app = ? AND m.render_key = ? AND e.outcome = 'Succeeded' AND e.app = m.app",
        [app, key],
      ),
    );
    if (!row) return undefined;
    const memo = JSON.parse(row.memo_json) as RenderMemo;
    return memo.key === key ? { entry: row.entry_id, memo } : undefined;
  }
}
