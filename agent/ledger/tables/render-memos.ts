/**
 * The render_memos table: per app, the newest successful render under a durable render key, as the digests
 * of the manifests the ledger stored of it (agent/ledger/README.md, "Render memo"). A cache, not history:
 * unchained, replaced by the app's next reusable success, deleted with its entry.
 */
import type { RenderMemo } from "../../object/records.ts";
import type { LedgerAccess } from "./access.ts";

/** Render memos by app. */
export class RenderMemosTable {
  constructor(
    private readonly access: LedgerAccess,
    /** Id of the ledger's secret key (undefined without one): a memo's sealed manifests must be under it. */
    private readonly keyId?: string,
  ) {}

  private get db() {
    return this.access.db;
  }

  /** Keeps `memo` as the app's render of `entry` (caller holds the entry's transaction). */
  record(app: string, entry: number, memo: RenderMemo): void {
    // A no-op folded into the same entry under the same key: the memo is the same, and `berth run` resyncs often.
    const kept = this.db.get<{ entry_id: number; render_key: string }>(
      "SELECT entry_id, render_key FROM render_memos WHERE app = ?",
      [app],
    );
    if (kept && Number(kept.entry_id) === entry && kept.render_key === memo.key) return;
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

  /**
   * The render digest of the app's newest finished entry when that entry succeeded, kept a render memo of that
   * render, and the app's inventory holds exactly the memo's manifest digests — i.e. storing that render's
   * manifests again would return the inventory's digests. Else undefined.
   */
  lastRender(app: string): string | undefined {
    return this.access.guard("cannot read a render memo", () => {
      const row = this.db.get<{ rendered_digest: string | null; outcome: string; memo_json: string | null }>(
        "SELECT e.rendered_digest, e.outcome, m.memo_json FROM entries e LEFT JOIN render_memos m ON m.entry_id = e.id AND m.app = e.app WHERE e.app = ? AND e.outcome != 'Running' ORDER BY e.id DESC LIMIT 1",
        [app],
      );
      if (!row?.memo_json || row.outcome !== "Succeeded" || row.rendered_digest === null) return undefined;
      const memo = JSON.parse(row.memo_json) as RenderMemo;
      if (memo.digest !== row.rendered_digest) return undefined;
      const inventory = this.db.all<{ digest: string }>("SELECT digest FROM inventory WHERE app = ?", [app]);
      if (inventory.length !== memo.objects.length) return undefined;
      const want = memo.objects.map((o) => o.digest).sort();
      const have = inventory.map((i) => i.digest).sort();
      if (!want.every((d, i) => d === have[i])) return undefined;
      // Storing the manifests now must give these blobs: each there, plain or sealed with the current key (a
      // Secret stored redacted, or under a key since replaced, is stored again).
      const unique = [...new Set(want)];
      let current = 0;
      for (let i = 0; i < unique.length; i += 500) {
        const part = unique.slice(i, i + 500);
        for (const b of this.db.all<{ encoding: string; key_id: string | null }>(
          `SELECT encoding, key_id FROM blobs WHERE digest IN (${part.map(() => "?").join(",")})`,
          part,
        ))
          if (b.encoding === "plain" || (b.encoding === "aes-256-gcm" && b.key_id === (this.keyId ?? null)))
            current++;
      }
      return current === unique.length ? memo.digest : undefined;
    });
  }
}
