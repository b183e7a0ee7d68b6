import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { SCHEMA_VERSION } from "../../agent/ledger/schema.ts";
import { BerthError } from "../../agent/object/errors.ts";
import { tempDir, withRawDb } from "../support/ledger-fixtures.ts";

let dir: string;
let cleanup: () => void;

beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

async function openError(path: string): Promise<BerthError> {
  const err = await Ledger.open(path).then(
    (l) => {
      l.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BerthError);
  return err as BerthError;
}

describe("opening", () => {
  test("a new file gets WAL mode, foreign keys and the current schema version", async () => {
    const path = join(dir, "new.db");
    const ledger = await Ledger.open(path);
    ledger.close();
    await withRawDb(path, (db) => {
      expect(db.get("PRAGMA journal_mode")).toEqual({ journal_mode: "wal" });
      expect(db.get("PRAGMA user_version")).toEqual({ user_version: SCHEMA_VERSION });
      const tables = db.all<{ name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
      );
      expect(tables.map((t) => t.name)).toEqual([
        "approvals",
        "blobs",
        "checkpoints",
        "drift_events",
        "entries",
        "entry_objects",
        "entry_verdicts",
        "inventory",
        "meta",
        "pins",
        "render_memos",
        "snapshots",
        "sqlite_sequence",
        "verifications",
      ]);
      // A new file returns freed pages to the file system on gc (incremental vacuum).
      expect(db.get("PRAGMA auto_vacuum")).toEqual({ auto_vacuum: 2 });
    });
  });

  test("foreign keys are enforced on the ledger's connection", async () => {
    const path = join(dir, "fk.db");
    const ledger = await Ledger.open(path);
    ledger.close();
    await withRawDb(path, (db) => {
      db.exec("PRAGMA foreign_keys = ON");
      expect(() =>
        db.run(
          "INSERT INTO entry_objects (entry_id, seq, object_id, ref_json, action) VALUES (99, 0, 'x', '{}', 'created')",
        ),
      ).toThrow(/FOREIGN KEY/i);
    });
  });

  test("a corrupt file gives an error naming the path", async () => {
    const path = join(dir, "corrupt.db");
    writeFileSync(path, Buffer.alloc(8192, "garbage! "));
    const err = await openError(path);
    expect(err.subject).toBe(`ledger ${path}`);
    expect(err.message).toStartWith(`ledger ${path}: not a usable ledger database`);
    expect(err.message).toMatch(/not a database|encrypted/i);
    expect(err.cause).toBeDefined();
  });

  test("a path in a missing directory gives an error naming the path", async () => {
    const path = join(dir, "no/such/dir/ledger.db");
    const err = await openError(path);
    expect(err.message).toStartWith(`ledger ${path}: cannot open the database:`);
  });

  test("a directory in place of the file gives an error naming the path", async () => {
    const path = join(dir, "a-directory");
    mkdirSync(path);
    expect((await openError(path)).message).toStartWith(`ledger ${path}: `);
  });

  test("a SQLite file of another program is refused, not adopted", async () => {
    const path = join(dir, "foreign.db");
    await withRawDb(path, (db) => db.exec("CREATE TABLE entries (x TEXT)"));
    expect((await openError(path)).message).toContain("table entries already exists");
  });

  test("a ledger from a newer berth is refused", async () => {
    const path = join(dir, "future.db");
    await withRawDb(path, (db) => db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 1}`));
    expect((await openError(path)).message).toContain(`schema version ${SCHEMA_VERSION + 1} is newer`);
  });

  test("use after close is a BerthError naming the ledger", async () => {
    const path = join(dir, "closed.db");
    const ledger = await Ledger.open(path);
    ledger.close();
    expect(() => ledger.list({})).toThrow(`ledger ${path}: cannot list entries`);
  });
});
