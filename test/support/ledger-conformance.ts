/**
 * The driver conformance suite, free of any test framework so the same cases run under Bun (bun:test),
 * Deno (node:sqlite) and Node 20 (better-sqlite3); see ledger-runtime-check.ts.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Driver } from "../../agent/ledger/driver.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import type { KubeObject } from "../../agent/object/object.ts";

/** Opens a driver on a file. */
export type OpenDriver = (path: string) => Promise<Driver>;

/** One conformance case: it gets a fresh directory and throws on failure. */
export interface ConformanceCase {
  name: string;
  run(open: OpenDriver, dir: string): Promise<void>;
}

/** Throws with message unless cond holds. */
export function check(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(`check failed: ${message}`);
}

/** Throws unless actual and expected are structurally equal (bytes compared by value). */
export function checkEqual(actual: unknown, expected: unknown, what: string): void {
  const a = JSON.stringify(plain(actual));
  const e = JSON.stringify(plain(expected));
  if (a !== e) throw new Error(`check failed: ${what}: got ${a}, expected ${e}`);
}

function plain(value: unknown): unknown {
  if (value instanceof Uint8Array) return { bytes: Array.from(value) };
  if (typeof value === "bigint") return { bigint: value.toString() };
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => [k, plain(v)]),
    );
  }
  return value;
}

function throwsMatching(fn: () => unknown, pattern: RegExp, what: string): void {
  try {
    fn();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    check(pattern.test(message), `${what}: error "${message}" does not match ${pattern}`);
    return;
  }
  throw new Error(`check failed: ${what}: did not throw`);
}

async function withDb(
  open: OpenDriver,
  path: string,
  fn: (db: Driver) => void | Promise<void>,
): Promise<void> {
  const db = await open(path);
  try {
    await fn(db);
  } finally {
    db.close();
  }
}

/** The cases every driver must pass. */
export const CONFORMANCE: ConformanceCase[] = [
  {
    name: "exec runs several statements; run reports changes and the last rowid",
    run: (open, dir) =>
      withDb(open, join(dir, "a.db"), (db) => {
        db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); CREATE TABLE u (x INTEGER)");
        checkEqual(
          db.run("INSERT INTO t (v) VALUES (?)", ["a"]),
          { changes: 1, lastInsertRowid: 1 },
          "first insert",
        );
        checkEqual(db.run("INSERT INTO t (v) VALUES (?)", ["b"]).lastInsertRowid, 2, "second rowid");
        checkEqual(db.run("UPDATE t SET v = 'z'").changes, 2, "update changes");
        checkEqual(db.run("DELETE FROM t WHERE id = ?", [99]).changes, 0, "delete of nothing");
      }),
  },
  {
    name: "get returns the first row or undefined; all returns rows in order or []",
    run: (open, dir) =>
      withDb(open, join(dir, "b.db"), (db) => {
        db.exec("CREATE TABLE t (n INTEGER)");
        for (const n of [3, 1, 2]) db.run("INSERT INTO t VALUES (?)", [n]);
        checkEqual(db.get("SELECT n FROM t ORDER BY n"), { n: 1 }, "get first");
        check(db.get("SELECT n FROM t WHERE n > ?", [10]) === undefined, "get of nothing is undefined");
        checkEqual(db.all("SELECT n FROM t ORDER BY n DESC"), [{ n: 3 }, { n: 2 }, { n: 1 }], "all ordered");
        checkEqual(db.all("SELECT n FROM t WHERE n < 0"), [], "all of nothing");
        // Rows are plain objects the caller can spread and compare.
        const row = db.get<{ n: number }>("SELECT n FROM t WHERE n = 2");
        checkEqual({ ...row }, { n: 2 }, "spread row");
      }),
  },
  {
    name: "values round-trip: text, integer, real, null, blob, bigint parameter",
    run: (open, dir) =>
      withDb(open, join(dir, "c.db"), (db) => {
        db.exec("CREATE TABLE v (t TEXT, i INTEGER, r REAL, n TEXT, b BLOB, big INTEGER)");
        const bytes = new Uint8Array([0, 1, 2, 250, 255]);
        db.run("INSERT INTO v VALUES (?, ?, ?, ?, ?, ?)", [
          "héllo ✓ 🚢",
          42,
          1.5,
          null,
          bytes,
          9007199254740991n,
        ]);
        const row = db.get<Record<string, unknown>>("SELECT * FROM v");
        check(row, "row exists");
        checkEqual(row.t, "héllo ✓ 🚢", "text");
        checkEqual(row.i, 42, "integer");
        checkEqual(row.r, 1.5, "real");
        check(row.n === null, "null comes back as null");
        check(row.b instanceof Uint8Array, "blob is a Uint8Array");
        checkEqual(new Uint8Array(row.b as Uint8Array), bytes, "blob bytes");
        checkEqual(Number(row.big), 9007199254740991, "bigint parameter");
        checkEqual(
          db.get("SELECT typeof(b) AS tb, typeof(i) AS ti FROM v"),
          { tb: "blob", ti: "integer" },
          "types",
        );
      }),
  },
  {
    name: "transaction commits, rolls back on throw and rethrows, nests as savepoints",
    run: (open, dir) =>
      withDb(open, join(dir, "d.db"), (db) => {
        db.exec("CREATE TABLE t (n INTEGER)");
        checkEqual(
          db.transaction(() => {
            db.run("INSERT INTO t VALUES (1)");
            return "done";
          }),
          "done",
          "transaction result",
        );
        throwsMatching(
          () =>
            db.transaction(() => {
              db.run("INSERT INTO t VALUES (2)");
              throw new Error("boom");
            }),
          /boom/,
          "rethrows",
        );
        checkEqual(db.all("SELECT n FROM t"), [{ n: 1 }], "rolled back");
        db.transaction(() => {
          db.run("INSERT INTO t VALUES (3)");
          throwsMatching(
            () =>
              db.transaction(() => {
                db.run("INSERT INTO t VALUES (4)");
                throw new Error("inner");
              }),
            /inner/,
            "inner rethrows",
          );
          db.run("INSERT INTO t VALUES (5)");
        });
        checkEqual(
          db.all("SELECT n FROM t ORDER BY n"),
          [{ n: 1 }, { n: 3 }, { n: 5 }],
          "inner rolled back only",
        );
        // After all that, no transaction is left open: a fresh one still works.
        db.transaction(() => db.run("INSERT INTO t VALUES (6)"));
        checkEqual(db.get("SELECT count(*) AS c FROM t"), { c: 4 }, "count");
      }),
  },
  {
    name: "pragmas: get reads results, and works on statements that return nothing",
    run: (open, dir) =>
      withDb(open, join(dir, "e.db"), (db) => {
        checkEqual(db.get("PRAGMA journal_mode = WAL"), { journal_mode: "wal" }, "WAL");
        check(db.get("PRAGMA user_version = 7") === undefined, "setting returns no row");
        checkEqual(db.get("PRAGMA user_version"), { user_version: 7 }, "user_version");
        checkEqual(db.all("CREATE TABLE t (n INTEGER)"), [], "all on DDL");
      }),
  },
  {
    name: "constraint violations and SQL errors throw Errors carrying SQLite's message",
    run: (open, dir) =>
      withDb(open, join(dir, "f.db"), (db) => {
        db.exec("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER CHECK (n > 0))");
        db.run("INSERT INTO t VALUES ('a', 1)");
        throwsMatching(() => db.run("INSERT INTO t VALUES ('a', 2)"), /UNIQUE/i, "duplicate key");
        throwsMatching(() => db.run("INSERT INTO t VALUES ('b', -1)"), /CHECK/i, "check constraint");
        throwsMatching(() => db.all("SELECT nope FROM t"), /no such column/i, "bad column");
        checkEqual(db.all("SELECT k FROM t"), [{ k: "a" }], "table unchanged");
      }),
  },
  {
    name: "WAL: a second connection sees committed writes; backup copies a live database",
    run: (open, dir) =>
      withDb(open, join(dir, "g.db"), async (db) => {
        db.get("PRAGMA journal_mode = WAL");
        db.exec("CREATE TABLE t (n INTEGER)");
        db.run("INSERT INTO t VALUES (1)");
        await withDb(open, join(dir, "g.db"), (other) => {
          checkEqual(other.all("SELECT n FROM t"), [{ n: 1 }], "visible to the second connection");
        });
        check(existsSync(join(dir, "g.db-wal")), "a -wal file exists");
        const copy = join(dir, "g-copy.db");
        await db.backup(copy);
        await db.backup(copy).then(
          () => check(false, "backup over an existing file must fail"),
          (err) => check(/exists/.test(String(err)), "refuses an existing target"),
        );
        await withDb(open, copy, (c) => checkEqual(c.all("SELECT n FROM t"), [{ n: 1 }], "backup content"));
      }),
  },
  {
    name: "close makes further calls throw; a garbage file fails with an error",
    run: async (open, dir) => {
      const db = await open(join(dir, "h.db"));
      db.close();
      throwsMatching(() => db.get("SELECT 1"), /./, "use after close");
      db.close(); // closing twice is harmless
      const junk = join(dir, "junk.db");
      writeFileSync(junk, "this is not a database, just text long enough to fill a header ".repeat(20));
      let failed = false;
      try {
        const bad = await open(junk);
        try {
          bad.get("SELECT * FROM sqlite_master");
        } finally {
          bad.close();
        }
      } catch (err) {
        failed = /not a database|file is encrypted|malformed/i.test(String(err));
      }
      check(failed, "a garbage file fails to open or to read, with SQLite's reason");
    },
  },
  {
    name: "Ledger works end to end on this driver (encrypted Secret, chain, reopen)",
    run: async (_open, dir) => {
      const path = join(dir, "ledger.db");
      const secretKey = new Uint8Array(32).fill(7);
      const secret: KubeObject = {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "creds", namespace: "prod" },
        stringData: { password: "hunter2-conformance" },
      };
      const cm: KubeObject = {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: "cfg" },
        data: { a: "1" },
      };
      const ledger = await Ledger.open(path, { secretKey });
      const id = ledger.begin({ app: "web", revision: "main@sha1:abc", trigger: "poll" });
      const digests = await ledger.putManifests([secret, cm]);
      const secretDigest = digests.get("prod_creds__Secret");
      check(secretDigest?.startsWith("hmac-sha256:"), "secret digest is keyed");
      ledger.finish(id, {
        outcome: "Succeeded",
        reason: "Succeeded",
        message: "ok",
        objects: [
          {
            ref: { group: "", version: "v1", kind: "Secret", namespace: "prod", name: "creds" },
            action: "created",
          },
        ],
        timings: { apply: 5 },
      });
      ledger.close();
      const again = await Ledger.open(path, { secretKey });
      try {
        checkEqual(await again.getManifest(secretDigest ?? ""), secret, "decrypted secret");
        checkEqual(again.get(id)?.outcome, "Succeeded", "entry outcome");
        checkEqual(again.verify().ok, true, "chain verifies");
      } finally {
        again.close();
      }
    },
  },
  {
    name: "compact entries, folded no-ops, gc with a checkpoint and incremental vacuum work on this driver",
    run: async (_open, dir) => {
      let t = Date.parse("2026-01-01T00:00:00Z");
      const ledger = await Ledger.open(join(dir, "compact.db"), { now: () => new Date(t) });
      try {
        const objects: KubeObject[] = ["a", "b", "c"].map((name) => ({
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name, namespace: "default" },
          data: { v: name },
        }));
        const sync = async (action: "created" | "unchanged", trigger = "loop") => {
          const id = ledger.begin({ app: "web", revision: "main@sha1:abc", trigger });
          const digests = await ledger.putManifests(objects);
          const records = objects.map((o) => ({
            ref: { group: "", version: "v1", kind: "ConfigMap", namespace: "default", name: o.metadata.name },
            action,
            digest: digests.get(`default_${o.metadata.name}__ConfigMap`) ?? "",
          }));
          return {
            id: ledger.finish(id, {
              outcome: "Succeeded",
              reason: "Succeeded",
              message: "m",
              objects: records,
              timings: {},
            }),
            records,
          };
        };
        const first = await sync("created");
        t += 60_000;
        checkEqual((await sync("unchanged")).id, first.id, "a no-op folds into the entry before it");
        checkEqual(ledger.list()[0]?.verified?.count, 1, "verified count");
        const second = await sync("unchanged", "cli");
        checkEqual(ledger.get(second.id)?.objects, second.records, "records rebuilt from the snapshot");
        t += 400 * 86_400_000;
        const report = ledger.gc({ maxAgeMs: 86_400_000, keepLast: 1 });
        checkEqual(report.entriesDropped, 1, "gc dropped the older entry");
        checkEqual(ledger.verify().ok, true, "verifies after gc");
      } finally {
        ledger.close();
      }
    },
  },
  {
    name: "render memos: kept with a success, read back exactly (a sealed Secret too), gone with a missing blob",
    run: async (_open, dir) => {
      const path = join(dir, "memo.db");
      const secretKey = new Uint8Array(32).fill(9);
      const objects: KubeObject[] = [
        {
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "cfg", namespace: "prod" },
          data: { a: "1" },
        },
        {
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: "s", namespace: "prod" },
          stringData: { p: "x" },
        },
      ];
      const ledger = await Ledger.open(path, { secretKey });
      const id = ledger.begin({ app: "web", revision: "main@sha1:abc", trigger: "cli" });
      const digests = await ledger.putManifests(objects);
      const memoObjects = ["prod_cfg__ConfigMap", "prod_s__Secret"].map((oid, i) => ({
        digest: digests.get(oid) ?? "",
        source: `f${i}.yaml`,
      }));
      const memo = { key: "k1", digest: "sha256:d", objects: memoObjects, skipped: [], files: 2 };
      ledger.finish(id, {
        outcome: "Succeeded",
        reason: "Succeeded",
        message: "ok",
        objects: [],
        timings: {},
        renderMemo: memo,
      });
      ledger.close();
      const again = await Ledger.open(path, { secretKey });
      try {
        const found = await again.renderMemo("web", "k1");
        checkEqual(found?.memo, memo, "the memo as recorded");
        checkEqual(found?.objects, objects, "its manifests, the Secret decrypted");
        checkEqual(await again.renderMemo("web", "k2"), undefined, "another key finds nothing");
        await withDb(_open, path, (db) => {
          db.run("DELETE FROM blobs WHERE digest = ?", [memoObjects[0]?.digest ?? ""]);
        });
        checkEqual(await again.renderMemo("web", "k1"), undefined, "a missing manifest: no memo");
      } finally {
        again.close();
      }
    },
  },
];

/** Runs every case, each in its own subdirectory; never throws. */
export async function runConformance(
  open: OpenDriver,
  dir: string,
): Promise<{ name: string; ok: boolean; error?: string }[]> {
  const { mkdirSync } = await import("node:fs");
  const results: { name: string; ok: boolean; error?: string }[] = [];
  for (const [i, c] of CONFORMANCE.entries()) {
    const caseDir = join(dir, `case-${i}`);
    mkdirSync(caseDir, { recursive: true });
    try {
      await c.run(open, caseDir);
      results.push({ name: c.name, ok: true });
    } catch (err) {
      results.push({
        name: c.name,
        ok: false,
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      });
    }
  }
  return results;
}
