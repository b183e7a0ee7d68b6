/**
 * What every table module of the ledger shares: the database, the clock, the one limit clamp of list
 * queries, and guard(), which turns driver errors into errors naming the ledger file and remembers a full disk.
 */
import { BerthError, messageOf } from "../../object/errors.ts";
import type { Driver } from "../driver.ts";
import { ledgerFault } from "../storage.ts";

/** The longest page a list query returns. */
export const MAX_LIST_LIMIT = 1000;
const DEFAULT_LIST_LIMIT = 50;

/** The one clamp of every list query's limit: 1 to MAX_LIST_LIMIT, default 50 (also for a non-number). */
export function clampLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return DEFAULT_LIST_LIMIT;
  return Math.min(Math.max(Math.trunc(limit), 1), MAX_LIST_LIMIT);
}

/** The open database of one ledger and how its tables report errors; one per Ledger, shared by its tables. */
export class LedgerAccess {
  readonly subject: string;
  /** Set by a failed write of a full disk or an I/O error; cleared by the next write that succeeds. */
  fault: string | undefined;
  /** When a write last succeeded (performance.now()), or 0: a recent one proves the ledger writable. */
  lastWriteAt = 0;

  constructor(
    /** The database file. */
    readonly path: string,
    readonly db: Driver,
    /** Clock for started/finished times; tests pin it. */
    readonly now: () => Date,
  ) {
    this.subject = `ledger ${path}`;
  }

  /** guard() for a write: one that succeeds shows the ledger can record again. */
  write<T>(what: string, fn: () => T): T {
    const out = this.guard(what, fn);
    this.fault = undefined;
    this.lastWriteAt = performance.now();
    return out;
  }

  /** Options for a BerthError about this ledger. */
  err(cause?: unknown): { subject: string; cause?: unknown } {
    return cause === undefined ? { subject: this.subject } : { subject: this.subject, cause };
  }

  /**
   * Runs fn, turning a driver error into a BerthError that names the ledger file and what was being done;
   * a full disk or an I/O error is named as such ("ledger: disk full at <path>") and remembered until a
   * later call succeeds, so readiness can report it.
   */
  guard<T>(what: string, fn: () => T): T {
    try {
      const out = fn();
      return out;
    } catch (cause) {
      if (cause instanceof BerthError) throw cause;
      const fault = ledgerFault(this.path, cause);
      if (fault) {
        this.fault = fault;
        throw new BerthError(`${fault} (${what}: ${messageOf(cause)})`, { cause });
      }
      throw new BerthError(`${what}: ${messageOf(cause)}`, this.err(cause));
    }
  }
}
