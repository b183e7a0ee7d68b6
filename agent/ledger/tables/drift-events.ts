/** The drift_events table: out-of-band changes of fields berth owns, who made them and what berth did. */
import { canonicalJson } from "../../object/canonical.ts";
import { objectId } from "../../object/object.ts";
import type { DriftEvent } from "../entry.ts";
import { clampLimit, type LedgerAccess } from "./access.ts";

/** Recorded drift, not chained. */
export class DriftEventsTable {
  constructor(private readonly access: LedgerAccess) {}

  private get db() {
    return this.access.db;
  }

  /** Records one drift event; returns its id. */
  record(event: Omit<DriftEvent, "id" | "detectedAt"> & { detectedAt?: string }): number {
    return this.access.guard(`cannot record drift of app ${event.app}`, () =>
      Number(
        this.db.run(
          "INSERT INTO drift_events (app, object_id, ref_json, manager, fields_json, action, message, detected_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
          [
            event.app,
            objectId(event.ref),
            canonicalJson(event.ref),
            event.manager,
            JSON.stringify(event.fields),
            event.action,
            event.message ?? null,
            event.detectedAt ?? this.access.now().toISOString(),
          ],
        ).lastInsertRowid,
      ),
    );
  }

  /** Drift events newest first, optionally of one app. */
  list(query: { app?: string; limit?: number } = {}): DriftEvent[] {
    const limit = clampLimit(query.limit);
    const rows = this.access.guard("cannot list drift events", () =>
      this.db.all<{
        id: number;
        app: string;
        ref_json: string;
        manager: string;
        fields_json: string;
        action: DriftEvent["action"];
        message: string | null;
        detected_at: string;
      }>(
        `SELECT * FROM drift_events ${query.app !== undefined ? "WHERE app = ?" : ""} ORDER BY id DESC LIMIT ?`,
        query.app !== undefined ? [query.app, limit] : [limit],
      ),
    );
    return rows.map((r) => ({
      id: r.id,
      app: r.app,
      ref: JSON.parse(r.ref_json),
      manager: r.manager,
      fields: JSON.parse(r.fields_json),
      action: r.action,
      ...(r.message !== null ? { message: r.message } : {}),
      detectedAt: r.detected_at,
    }));
  }
}
