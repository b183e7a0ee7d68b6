/** Naming storage faults of the ledger: a full disk or an I/O error is the ledger's problem, not the caller's. */
import { statfsSync } from "node:fs";
import { dirname } from "node:path";
import { messageOf } from "../object/errors.ts";

const FULL = /SQLITE_FULL|database or disk is full|ENOSPC|no space left on device|disk full/i;
const IO = /SQLITE_IOERR|disk I\/O error|EIO\b|EROFS|read-only file system/i;

/**
 * "ledger: disk full at <path>" or "ledger: I/O error at <path>" when `cause` is such an error, or (without a
 * cause) when the file system holding the ledger has less than `minFree` bytes free; undefined otherwise.
 */
export function ledgerFault(path: string, cause?: unknown, minFree?: number): string | undefined {
  if (cause !== undefined) {
    const text = `${messageOf(cause)} ${String((cause as { code?: unknown })?.code ?? "")}`;
    if (FULL.test(text)) return `ledger: disk full at ${path}`;
    if (IO.test(text)) return `ledger: I/O error at ${path}`;
    return undefined;
  }
  if (minFree === undefined) return undefined;
  const free = freeBytes(dirname(path));
  if (free !== undefined && free < minFree)
    return `ledger: disk full at ${path} (${Math.floor(free / 1024)} KiB free, ${Math.ceil(minFree / 1024)} KiB needed)`;
  return undefined;
}

/** Bytes available to this process on the file system holding dir; undefined where statfs is missing. */
export function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return undefined;
  }
}
