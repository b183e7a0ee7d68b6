/**
 * Which SQLite library each runtime uses. The ledger loads the driver of that name (agent/ledger/driver.ts);
 * the drivers stay beside the ledger so one conformance suite covers all three.
 */
import { currentRuntime, type Runtime } from "./detect.ts";

/** Which library backs a ledger driver. */
export type SqliteLibrary = "bun:sqlite" | "node:sqlite" | "better-sqlite3";

/** better-sqlite3 loads neither in Bun nor in Deno, and Node 20 has no node:sqlite. */
const LIBRARY: Record<Runtime, SqliteLibrary> = {
  bun: "bun:sqlite",
  deno: "node:sqlite",
  node: "better-sqlite3",
};

/** The SQLite library of the given runtime (default: this process's). */
export function sqliteLibrary(runtime: Runtime = currentRuntime()): SqliteLibrary {
  return LIBRARY[runtime];
}
