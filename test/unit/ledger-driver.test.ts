import { describe, expect, test } from "bun:test";
import { chainHashOf, contentHashOf } from "../../agent/ledger/chain.ts";
import { type RawConnection, wrapRaw } from "../../agent/ledger/driver.ts";
import type { EntryRow, ObjectRow } from "../../agent/ledger/entry.ts";

/** A fake connection that records the SQL it is given. */
function recording(): { raw: RawConnection; log: string[] } {
  const log: string[] = [];
  const raw: RawConnection = {
    exec: (sql) => {
      log.push(sql);
    },
    prepare: (sql) => ({
      run: () => {
        log.push(sql);
        return { changes: 1, lastInsertRowid: 1 };
      },
      get: () => undefined,
      all: () => [],
    }),
    close: () => {
      log.push("close");
    },
  };
  return { raw, log };
}

describe("wrapRaw transactions", () => {
  test("commit, rollback and nested savepoints issue the right statements", () => {
    const { raw, log } = recording();
    const db = wrapRaw("bun:sqlite", ":memory:", raw);
    db.transaction(() => {
      db.run("A");
      expect(() =>
        db.transaction(() => {
          db.run("B");
          throw new Error("inner");
        }),
      ).toThrow("inner");
    });
    expect(() =>
      db.transaction(() => {
        throw new Error("outer");
      }),
    ).toThrow("outer");
    expect(log).toEqual([
      "BEGIN IMMEDIATE",
      "A",
      "SAVEPOINT berth_sp_1",
      "B",
      "ROLLBACK TO berth_sp_1; RELEASE berth_sp_1",
      "COMMIT",
      "BEGIN IMMEDIATE",
      "ROLLBACK",
    ]);
  });

  test("an async fn is refused and rolled back; a closed driver refuses work", () => {
    const { raw, log } = recording();
    const db = wrapRaw("node:sqlite", "x.db", raw);
    expect(() => db.transaction(async () => 1)).toThrow("must be synchronous");
    expect(log).toEqual(["BEGIN IMMEDIATE", "ROLLBACK"]);
    db.close();
    db.close();
    expect(log.filter((l) => l === "close")).toHaveLength(1);
    expect(() => db.run("X")).toThrow("closed");
  });
});

describe("chain hashes", () => {
  const row: EntryRow = {
    id: 1,
    app: "web",
    revision: "r",
    commit_json: null,
    trigger: "poll",
    outcome: "Succeeded",
    reason: "Succeeded",
    message: "ok",
    rendered_digest: null,
    health: null,
    timings_json: "{}",
    started_at: "t0",
    finished_at: "t1",
    chain_seq: 1,
    prev_hash: null,
    content_hash: null,
    hash: null,
  };
  const obj: ObjectRow = {
    entry_id: 1,
    seq: 0,
    object_id: "a_b__C",
    ref_json: "{}",
    action: "created",
    health: null,
    message: null,
    digest: null,
  };

  test("the content hash covers every entry field and object row, but not the stored hashes", () => {
    const base = contentHashOf(row, [obj]);
    expect(contentHashOf({ ...row, hash: "x", prev_hash: "y", content_hash: "z" }, [obj])).toBe(base);
    expect(contentHashOf({ ...row, message: "ok!" }, [obj])).not.toBe(base);
    expect(contentHashOf({ ...row, chain_seq: 2 }, [obj])).not.toBe(base);
    expect(contentHashOf(row, [{ ...obj, action: "deleted" }])).not.toBe(base);
    expect(contentHashOf(row, [])).not.toBe(base);
  });

  test("the chain hash depends on both links", () => {
    expect(chainHashOf("a", "b")).not.toBe(chainHashOf("a", "c"));
    expect(chainHashOf("a", "b")).not.toBe(chainHashOf("x", "b"));
    expect(chainHashOf("a", "b")).toMatch(/^[0-9a-f]{64}$/);
  });
});
