/** The write status of each object row (schema version 6): stored, chained, and harmless to older ledgers. */
import { describe, expect, test } from "bun:test";
import type { EntryRow } from "../../agent/ledger/entry.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { MIGRATIONS, SCHEMA_VERSION } from "../../agent/ledger/schema.ts";
import { canonicalJson, sha256Hex } from "../../agent/object/canonical.ts";
import { coreRef, undoApprovalSeq, useLedgerPath, withRawDb } from "../support/ledger-fixtures.ts";

/** The index of the migration that added entry_objects.status (the schema version before it). */
const STATUS_MIGRATION = MIGRATIONS.findIndex((m) => m.includes("ADD COLUMN status"));

const ledgerFile = useLedgerPath();

const finishOne = (ledger: Ledger, statuses: Array<"applied" | "failed" | "not-attempted" | undefined>) => {
  const id = ledger.begin({ app: "web", revision: "r1", trigger: "poll" });
  ledger.finish(id, {
    outcome: "Failed",
    reason: "ApplyFailed",
    message: "partially applied: 1 of 3 (1 failed, 1 not attempted): ConfigMap/default/b: boom",
    timings: {},
    objects: statuses.map((status, i) => ({
      ref: coreRef("ConfigMap", String.fromCharCode(97 + i)),
      action: "created" as const,
      ...(status ? { status } : {}),
      ...(status === "failed" ? { message: "boom" } : {}),
    })),
  });
  return id;
};

describe("write status of entry objects", () => {
  test("each object's status is stored, read back and covered by the hash chain", async () => {
    const ledger = await Ledger.open(ledgerFile.path);
    const id = finishOne(ledger, ["applied", "failed", "not-attempted", undefined]);
    expect(ledger.get(id)?.objects.map((o) => o.status ?? "-")).toEqual([
      "applied",
      "failed",
      "not-attempted",
      "-",
    ]);
    expect(ledger.verify()).toMatchObject({ ok: true, entries: 1 });
    ledger.close();
    await withRawDb(ledgerFile.path, (db) =>
      db.run("UPDATE entry_objects SET status = 'applied' WHERE status = 'not-attempted'"),
    );
    const reopened = await Ledger.open(ledgerFile.path);
    expect(reopened.verify()).toMatchObject({ ok: false, firstBad: id });
    reopened.close();
  });

  test("the column refuses other values", async () => {
    (await Ledger.open(ledgerFile.path)).close();
    await withRawDb(ledgerFile.path, (db) => {
      expect(() =>
        db.run(
          "INSERT INTO entries (app, revision, trigger, outcome, started_at) VALUES ('a', 'r', 't', 'Running', 'x')",
        ),
      ).not.toThrow();
      expect(() =>
        db.run(
          "INSERT INTO entry_objects (entry_id, seq, object_id, ref_json, action, status) VALUES (1, 0, 'x', '{}', 'created', 'done')",
        ),
      ).toThrow(/CHECK/i);
    });
  });

  test("a ledger written before the column existed migrates, verifies and keeps its hashes", async () => {
    // Build entries without statuses, then turn the file back into the schema before the column (as the previous
    // release wrote it).
    let ledger = await Ledger.open(ledgerFile.path);
    const old = [finishOne(ledger, [undefined, undefined]), finishOne(ledger, [undefined])];
    ledger.close();
    await withRawDb(ledgerFile.path, (db) => {
      db.exec("ALTER TABLE entry_objects DROP COLUMN status");
      // The migrations after the status column's are undone too (they run again on open).
      db.exec("DROP TABLE render_memos");
      undoApprovalSeq(db);
      db.exec(`PRAGMA user_version = ${STATUS_MIGRATION}`);
      // The content hash is the formula from before the column, computed here independently of agent/ledger/chain.ts.
      for (const id of old) {
        const row = db.get<EntryRow>("SELECT * FROM entries WHERE id = ?", [id]) as EntryRow;
        const objects = db.all<Record<string, unknown>>(
          "SELECT * FROM entry_objects WHERE entry_id = ? ORDER BY seq",
          [id],
        );
        const entry = [
          row.id,
          row.app,
          row.revision,
          row.commit_json,
          row.trigger,
          row.outcome,
          row.reason,
          row.message,
          row.rendered_digest,
          row.health,
          row.timings_json,
          row.started_at,
          row.finished_at,
          row.chain_seq,
        ];
        const rows = objects.map((o) => [
          o.seq,
          o.object_id,
          o.ref_json,
          o.action,
          o.health,
          o.message,
          o.digest,
        ]);
        // The bounded-growth fields (an earlier migration) join the hash when set, as they did before the column.
        const hashed: Record<string, unknown> = { entry, objects: rows };
        const extra = row as EntryRow & { inventory_root?: string | null; sealed_json?: string | null };
        if (extra.inventory_root) hashed.inventory = extra.inventory_root;
        if (extra.sealed_json) hashed.sealed = extra.sealed_json;
        expect(row.content_hash).toBe(sha256Hex(canonicalJson(hashed)));
      }
    });
    ledger = await Ledger.open(ledgerFile.path);
    try {
      expect(await withRawDb(ledgerFile.path, (db) => db.get("PRAGMA user_version"))).toEqual({
        user_version: SCHEMA_VERSION,
      });
      expect(ledger.verify()).toMatchObject({ ok: true, entries: 2 });
      expect(ledger.get(old[0] ?? 0)?.objects.every((o) => o.status === undefined)).toBe(true);
      finishOne(ledger, ["applied", "failed"]);
      expect(ledger.verify()).toMatchObject({ ok: true, entries: 3 });
    } finally {
      ledger.close();
    }
  });
});
