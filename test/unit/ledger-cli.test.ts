/**
 * `berth ledger list` collapses folded no-op resyncs into one line; `berth ledger gc [--dry-run]` applies
 * ledger.retention from the config (in process, against a real ledger file).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { runCli } from "../support/berth.ts";
import { tempDir } from "../support/ledger-fixtures.ts";
import { SimApp, SimClock, simSync } from "../support/ledger-sim.ts";

let dir: string;
let cleanup: () => void;
let config: string;

const run = (...argv: string[]) => runCli(["--config", config, ...argv]);

beforeAll(async () => {
  ({ dir, cleanup } = tempDir());
  config = join(dir, "berth.yaml");
  writeFileSync(
    config,
    "apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: { url: http://git/x.git }\napps: []\nledger: { path: l.db, retention: { maxAge: 1d, keepLast: 1 } }\n",
  );
  const clock = new SimClock(Date.parse("2020-01-01T09:00:00Z"));
  const ledger = await Ledger.open(join(dir, "l.db"), { now: clock.now });
  const app = new SimApp("web", 10);
  await simSync(ledger, app, { first: true });
  for (let i = 0; i < 1440; i++) {
    clock.advance(60_000);
    await simSync(ledger, app, { storeChangedOnly: true });
  }
  await simSync(ledger, app, { changed: new Set([app.change(2)]) });
  ledger.close();
});
afterAll(() => cleanup());

describe("berth ledger list and gc", () => {
  test("list shows the change and one line for 1,440 no-op resyncs", async () => {
    const r = await run("ledger", "list");
    expect(r.code).toBe(0);
    const lines = r.out.trim().split("\n");
    expect(lines).toHaveLength(4); // header, the change, the first sync and its verified line
    expect(r.out).toContain("↳ verified 1,440× since 2020-01-01 09:01, healthy");
    const json = JSON.parse((await run("ledger", "list", "--json")).out);
    expect(json[1].verified).toEqual({
      count: 1440,
      firstAt: "2020-01-01T09:01:00.000Z",
      lastAt: "2020-01-02T09:00:00.000Z",
      health: "Current",
    });
  });

  test("gc --dry-run reports and keeps; gc drops, and verify passes", async () => {
    const dry = await run("ledger", "gc", "--dry-run");
    expect(dry.code).toBe(0);
    expect(dry.out).toContain("would drop 1 entries");
    expect(JSON.parse((await run("ledger", "list", "--json")).out)).toHaveLength(2);
    const gc = await run("ledger", "gc");
    expect(gc.out).toContain("dropped 1 entries");
    expect(gc.out).toContain("chain checkpoint at position 1");
    expect(JSON.parse((await run("ledger", "list", "--json")).out)).toHaveLength(1);
    const verify = await run("ledger", "verify");
    expect(verify.code).toBe(0);
  });
});
