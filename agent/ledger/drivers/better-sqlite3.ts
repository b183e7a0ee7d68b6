/** The `better-sqlite3` driver: used under Node 20 (it loads neither in Bun nor in Deno). */
import type BetterSqlite3 from "better-sqlite3";
import { type Driver, type DriverName, type Row, type SqlValue, wrapRaw } from "../driver.ts";

const NAME: DriverName = "better-sqlite3";
// A computed specifier keeps `bun build --compile` from bundling the native addon, which it cannot load.
const MODULE = ["better", "sqlite3"].join("-");

/** Opens (creating if missing) a database file with better-sqlite3. */
export async function openBetterSqlite3(path: string): Promise<Driver> {
  const mod = (await import(MODULE)) as { default: typeof BetterSqlite3 };
  const db = new mod.default(path);
  return wrapRaw(NAME, path, {
    exec: (sql) => {
      db.exec(sql);
    },
    prepare: (sql) => {
      const stmt = db.prepare<SqlValue[], Row>(sql);
      // Statements without result columns (DDL, INSERT) reject get/all in better-sqlite3.
      const reader = stmt.reader;
      return {
        run: (params) => {
          const r = stmt.run(...params);
          return { changes: r.changes, lastInsertRowid: Number(r.lastInsertRowid) };
        },
        get: (params) => {
          if (reader) return stmt.get(...params);
          stmt.run(...params);
          return undefined;
        },
        all: (params) => {
          if (reader) return stmt.all(...params);
          stmt.run(...params);
          return [];
        },
      };
    },
    close: () => db.close(),
  });
}
