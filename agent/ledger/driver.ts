/**
 * The small synchronous SQLite interface the ledger is written against, and the loader of the driver that
 * agent/runtime/sqlite.ts picks for this runtime. Each driver file is the only importer of its library, and
 * each library is imported dynamically, so a runtime never loads another runtime's SQLite.
 */
import { existsSync } from "node:fs";
import { type SqliteLibrary, sqliteLibrary } from "../runtime/sqlite.ts";

/** A value SQLite stores: TEXT, INTEGER/REAL, BLOB or NULL. */
export type SqlValue = string | number | bigint | Uint8Array | null;
/** One result row, column name to value. */
export type Row = Record<string, SqlValue>;
/** Which library backs a driver. */
export type DriverName = SqliteLibrary;

/** What `run` reports. */
export interface RunResult {
  changes: number;
  lastInsertRowid: number;
}

/** A synchronous SQLite connection; parameters are positional (`?`). */
export interface Driver {
  readonly name: DriverName;
  readonly path: string;
  /** Runs one or more statements without parameters or results. */
  exec(sql: string): void;
  /** Runs one statement and reports the rows changed and the last rowid. */
  run(sql: string, params?: readonly SqlValue[]): RunResult;
  /** The first result row, or undefined. */
  get<T = Row>(sql: string, params?: readonly SqlValue[]): T | undefined;
  /** All result rows. */
  all<T = Row>(sql: string, params?: readonly SqlValue[]): T[];
  /** Runs fn in a write transaction (a savepoint when nested); rolls back if fn throws. fn must be synchronous. */
  transaction<T>(fn: () => T): T;
  /** Writes a consistent copy of the open database to a new file (which must not exist), safe while in use. */
  backup(toPath: string): Promise<void>;
  /** Closes the connection; further calls throw. */
  close(): void;
}

/** A prepared statement as each library offers it, reduced to what the wrapper needs. */
export interface RawStatement {
  run(params: readonly SqlValue[]): RunResult;
  get(params: readonly SqlValue[]): Row | undefined;
  all(params: readonly SqlValue[]): Row[];
}

/** The per-library part of a driver; `wrapRaw` adds statement caching, transactions and backup. */
export interface RawConnection {
  exec(sql: string): void;
  prepare(sql: string): RawStatement;
  /** The library's online backup, for a driver whose SQLite cannot `VACUUM INTO` (Deno's allows no ATTACH). */
  backup?(toPath: string): Promise<void>;
  close(): void;
}

/** Builds a Driver over a library connection; shared so the three drivers behave alike. */
export function wrapRaw(name: DriverName, path: string, raw: RawConnection): Driver {
  // Prepared statements are reused: the ledger runs the same few statements over and over.
  const cache = new Map<string, RawStatement>();
  let depth = 0;
  let closed = false;
  const statement = (sql: string): RawStatement => {
    if (closed) throw new Error(`${name}: the database connection is closed`);
    let stmt = cache.get(sql);
    if (!stmt) {
      stmt = raw.prepare(sql);
      cache.set(sql, stmt);
    }
    return stmt;
  };
  const exec = (sql: string): void => {
    if (closed) throw new Error(`${name}: the database connection is closed`);
    raw.exec(sql);
  };
  return {
    name,
    path,
    exec,
    run: (sql, params = []) => statement(sql).run(params),
    get: <T>(sql: string, params: readonly SqlValue[] = []) => statement(sql).get(params) as T | undefined,
    all: <T>(sql: string, params: readonly SqlValue[] = []) => statement(sql).all(params) as T[],
    transaction<T>(fn: () => T): T {
      // IMMEDIATE takes the write lock up front, so a concurrent writer waits (busy_timeout) instead of
      // failing half-way with SQLITE_BUSY on lock upgrade.
      const savepoint = `berth_sp_${depth}`;
      exec(depth === 0 ? "BEGIN IMMEDIATE" : `SAVEPOINT ${savepoint}`);
      depth++;
      try {
        const result = fn();
        if (result instanceof Promise) throw new Error("transaction(): fn must be synchronous");
        depth--;
        exec(depth === 0 ? "COMMIT" : `RELEASE ${savepoint}`);
        return result;
      } catch (err) {
        depth--;
        try {
          if (depth === 0) exec("ROLLBACK");
          else exec(`ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`);
        } catch {
          // SQLite already rolled back on its own (SQLITE_FULL, an I/O error): report what went wrong, not
          // "no transaction is active".
        }
        throw err;
      }
    },
    async backup(toPath: string): Promise<void> {
      // VACUUM INTO refuses an existing file and the backup API would overwrite it: refuse in both.
      if (existsSync(toPath)) throw new Error(`${name}: backup target ${toPath} already exists`);
      if (raw.backup) await raw.backup(toPath);
      else statement("VACUUM INTO ?").run([toPath]);
    },
    close(): void {
      if (closed) return;
      closed = true;
      cache.clear();
      raw.close();
    },
  };
}

/** Opens a SQLite file (created if missing) with the driver of the current runtime. */
export async function openDriver(path: string): Promise<Driver> {
  // Literal specifiers keep the driver files in `bun build` bundles; the libraries inside them are
  // imported lazily, so bundling for one runtime never evaluates another runtime's import.
  switch (sqliteLibrary()) {
    case "bun:sqlite":
      return (await import("./drivers/bun-sqlite.ts")).openBunSqlite(path);
    case "node:sqlite":
      return (await import("./drivers/node-sqlite.ts")).openNodeSqlite(path);
    case "better-sqlite3":
      return (await import("./drivers/better-sqlite3.ts")).openBetterSqlite3(path);
  }
}
