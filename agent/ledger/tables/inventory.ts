/** The inventory table: which objects each app owns (state, not history), read by prune and replay. */
import { type ObjectRef, objectId } from "../../object/object.ts";
import type { InventoryItem } from "../entry.ts";
import { refJson } from "../snapshot.ts";
import type { LedgerAccess } from "./access.ts";

/** Each app's owned objects. */
export class InventoryTable {
  constructor(private readonly access: LedgerAccess) {}

  private get db() {
    return this.access.db;
  }

  /**
   * Adds objects to the app's inventory before they are written, so a crash mid-apply leaves them owned
   * (and prunable) rather than orphaned; the next finish replaces the inventory as usual.
   */
  claim(app: string, items: readonly InventoryItem[]): void {
    this.access.write(`cannot claim inventory for app ${app}`, () =>
      this.db.transaction(() => this.insert(app, items)),
    );
  }

  /**
   * Makes the app's inventory equal `items`, writing only the rows that differ (a resync rewrites nothing).
   * The caller holds the transaction (the entry's finish).
   */
  replace(app: string, items: readonly InventoryItem[]): void {
    const current = new Map(
      this.db
        .all<{ object_id: string; ref_json: string; digest: string; source: string | null }>(
          "SELECT object_id, ref_json, digest, source FROM inventory WHERE app = ?",
          [app],
        )
        .map((r) => [r.object_id, `${r.ref_json}\n${r.digest}\n${r.source ?? ""}`]),
    );
    const changed: InventoryItem[] = [];
    for (const item of items) {
      const id = objectId(item.ref);
      if (current.get(id) !== `${refJson(item.ref)}\n${item.digest}\n${item.source ?? ""}`)
        changed.push(item);
      current.delete(id);
    }
    for (const id of current.keys())
      this.db.run("DELETE FROM inventory WHERE app = ? AND object_id = ?", [app, id]);
    this.insert(app, changed);
  }

  // Upserts, never INSERT OR REPLACE, here and in the other tables: REPLACE deletes the row without a delete
  // trigger and inserts it under a new rowid, which the replica (agent/ledger/replica.ts, rows by rowid)
  // cannot follow.
  private insert(app: string, items: readonly InventoryItem[]): void {
    for (const item of items) {
      this.db.run(
        "INSERT INTO inventory (app, object_id, ref_json, digest, source) VALUES (?, ?, ?, ?, ?) ON CONFLICT (app, object_id) DO UPDATE SET ref_json = excluded.ref_json, digest = excluded.digest, source = excluded.source",
        [app, objectId(item.ref), refJson(item.ref), item.digest, item.source ?? null],
      );
    }
  }

  /** The app's inventory as of its last finish that carried one, ordered by object id. */
  of(app: string): InventoryItem[] {
    return this.access.guard("cannot read the inventory", () =>
      this.db
        .all<{ ref_json: string; digest: string; source: string | null }>(
          "SELECT ref_json, digest, source FROM inventory WHERE app = ? ORDER BY object_id",
          [app],
        )
        .map(itemOf),
    );
  }

  /** One object of the app's inventory (a drift event asks about one object, not the app's thousands). */
  item(app: string, ref: ObjectRef): InventoryItem | undefined {
    return this.access.guard("cannot read the inventory", () => {
      const r = this.db.get<{ ref_json: string; digest: string; source: string | null }>(
        "SELECT ref_json, digest, source FROM inventory WHERE app = ? AND object_id = ?",
        [app, objectId(ref)],
      );
      return r ? itemOf(r) : undefined;
    });
  }

  /** Object id → app for every object in another app's inventory (one app per object, the first by name). */
  ownersBesides(app: string): Map<string, string> {
    return this.access.guard("cannot read the inventory", () => {
      const rows = this.db.all<{ app: string; object_id: string }>(
        "SELECT app, object_id FROM inventory WHERE app != ? ORDER BY app DESC",
        [app],
      );
      return new Map(rows.map((r) => [r.object_id, r.app]));
    });
  }
}

/** An inventory row as the item it stores. */
function itemOf(r: { ref_json: string; digest: string; source: string | null }): InventoryItem {
  return {
    ref: JSON.parse(r.ref_json),
    digest: r.digest,
    ...(r.source !== null ? { source: r.source } : {}),
  };
}
