/**
 * The ledger's preflight before each pass: a write that succeeded recently stands for the test write (one fewer
 * fsync per resync), and the test write happens again once that write is older than the age given, or always
 * when no age is given (the apply step's check right before writing).
 */
import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ledger } from "../../agent/ledger/ledger.ts";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

test("a recent write stands for the test write; an old one or no age given does not", async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-preflight-"));
  dirs.push(dir);
  let clock = Date.parse("2026-11-29T10:00:00Z");
  const path = join(dir, "ledger.db");
  const ledger = await Ledger.open(path, { now: () => new Date(clock) });
  const checked = () => {
    const db = new Database(path, { readonly: true });
    try {
      return (
        db.query("SELECT value FROM meta WHERE key = 'last_write_check'").get() as { value: string } | null
      )?.value;
    } finally {
      db.close();
    }
  };
  try {
    ledger.preflight();
    expect(checked()).toBe("2026-11-29T10:00:00.000Z");
    clock += 1000;
    ledger.preflight({ writeCheckAgeMs: 30_000 }); // the write just made counts
    expect(checked()).toBe("2026-11-29T10:00:00.000Z");
    ledger.preflight({ writeCheckAgeMs: 0 }); // too old: writes again
    expect(checked()).toBe("2026-11-29T10:00:01.000Z");
    clock += 1000;
    ledger.preflight(); // the apply step's: always a write
    expect(checked()).toBe("2026-11-29T10:00:02.000Z");
  } finally {
    ledger.close();
  }
});
