/** The `node:sqlite` driver: used under Deno (Node 20 has no node:sqlite). */
import { type Driver, type DriverName, type Row, type SqlValue, wrapRaw } from "../driver.ts";

const NAME: DriverName = "node:sqlite";
// A computed specifier: @types/node 20 has no node:sqlite types, and `bun build` must not try to resolve it.
const MODULE = ["node", "sqlite"].join(":");

/** The part of node:sqlite this driver uses. */
interface NodeSqliteModule {
  DatabaseSync: new (
    path: string,
  ) => {
    exec(sql: string): void;
    prepare(sql: string): {
      run(...params: SqlValue[]): { changes: number | bigint; lastInsertRowid: number | bigint };
      get(...params: SqlValue[]): Row | undefined;
      all(...params: SqlValue[]): Row[];
    };
    close(): void;
  };
  /** Online backup (Deno has it; Node added it in 22.16). */
  backup?: (db: unknown, path: string) => Promise<number>;
}

/** Opens (creating if missing) a database file with node:sqlite. */
export async function openNodeSqlite(path: string): Promise<Driver> {
  const { DatabaseSync, backup } = (await import(MODULE)) as NodeSqliteModule;
  const db = new DatabaseSync(path);
  return wrapRaw(NAME, path, {
    exec: (sql) => db.exec(sql),
    prepare: (sql) => {
      const stmt = db.prepare(sql);
      return {
        run: (params) => {
          const r = stmt.run(...params);
          return { changes: Number(r.changes), lastInsertRowid: Number(r.lastInsertRowid) };
        },
        // Rows come with a null prototype; copy them so they behave like the other drivers' rows.
        get: (params) => {
          const row = stmt.get(...params);
          return row === undefined ? undefined : { ...row };
        },
        all: (params) => stmt.all(...params).map((row) => ({ ...row })),
      };
    },
    ...(backup && {
      backup: async (toPath: string) => {
        await backup(db, toPath);
      },
    }),
    close: () => db.close(),
  });
}
