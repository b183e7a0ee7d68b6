/** The `bun:sqlite` driver: used under Bun and inside the compiled binary. */
import { type Driver, type DriverName, type Row, type SqlValue, wrapRaw } from "../driver.ts";

const NAME: DriverName = "bun:sqlite";

/** Opens (creating if missing) a database file with bun:sqlite. */
export async function openBunSqlite(path: string): Promise<Driver> {
  const { Database } = await import("bun:sqlite");
  const db = new Database(path, { create: true, readwrite: true });
  return wrapRaw(NAME, path, {
    exec: (sql) => {
      db.exec(sql);
    },
    prepare: (sql) => {
      const stmt = db.prepare<Row, SqlValue[]>(sql);
      return {
        run: (params) => {
          const r = stmt.run(...params);
          return { changes: r.changes, lastInsertRowid: Number(r.lastInsertRowid) };
        },
        // bun:sqlite answers "no row" with null; the interface says undefined.
        get: (params) => stmt.get(...params) ?? undefined,
        all: (params) => stmt.all(...params),
      };
    },
    close: () => db.close(),
  });
}
