/**
 * The ledger's off-box replica against a real S3-compatible server (versitygw on loopback): every change reaches
 * the store within seconds, a restore rebuilds the same rows (so `verify` passes), and a store that stops
 * answering never stops the ledger — the lag grows, then drains when the store is back.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { LedgerFollower, LedgerReplica, restoreFromReplica } from "../../agent/ledger/replica.ts";
import { S3Store } from "../../agent/ledger/s3-store.ts";
import { configMap, coreRef, tempDir, withRawDb } from "../support/ledger-fixtures.ts";
import { SimApp, SimClock, simSync } from "../support/ledger-sim.ts";
import { type S3Server, startS3 } from "../support/s3.ts";

let s3: S3Server;
const tmp = tempDir("berth-replica-");

beforeAll(async () => {
  s3 = await startS3();
}, 600_000);
afterAll(async () => {
  await s3?.close();
  tmp.cleanup();
});

const store = (prefix: string) =>
  new S3Store({
    url: `s3://${s3.bucket}/${prefix}`,
    endpoint: s3.endpoint,
    accessKeyId: s3.accessKeyId,
    secretAccessKey: s3.secretAccessKey,
    timeoutMs: 2000,
  });

/** One finished sync of `n` ConfigMaps at `value`. */
async function sync(ledger: Ledger, n: number, value: string): Promise<number> {
  const objects = Array.from({ length: n }, (_, i) => configMap(`cm-${i}`, value));
  const id = ledger.begin({ app: "web", revision: `rev-${value}`, trigger: "loop" });
  const digests = await ledger.putManifests(objects);
  const items = objects.map((_o, i) => ({
    ref: coreRef("ConfigMap", `cm-${i}`),
    digest: [...digests.values()][i] ?? "",
  }));
  ledger.finish(id, {
    outcome: "Succeeded",
    reason: "Succeeded",
    message: `${n} configured`,
    objects: items.map((it) => ({ ref: it.ref, action: "configured", digest: it.digest })),
    timings: { apply: 1 },
    inventory: items,
  });
  return id;
}

/** Every row of every ledger table (replica bookkeeping aside), for an exact comparison. */
async function tables(path: string): Promise<Record<string, unknown[]>> {
  return withRawDb(path, (db) => {
    const out: Record<string, unknown[]> = {};
    for (const { name } of db.all<{ name: string }>(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'replica_%' ORDER BY name",
    ))
      out[name] = db.all(`SELECT rowid AS __rowid, * FROM "${name}" ORDER BY rowid`);
    return out;
  });
}

describe("ledger replica on S3", () => {
  test("folded no-op resyncs, compact entries and a gc reach the store: the restore is equal and verifies", async () => {
    const path = join(tmp.dir, "c.db");
    const clock = new SimClock();
    const ledger = await Ledger.open(path, { now: clock.now });
    const replica = await LedgerReplica.start(path, store("c"), { intervalMs: 200 });
    try {
      const app = new SimApp("web", 40);
      const first = await simSync(ledger, app, { first: true });
      await replica.flush();
      for (let i = 0; i < 5; i++) {
        clock.advance(60_000);
        await simSync(ledger, app);
      }
      clock.advance(86_400_000);
      const change = await simSync(ledger, app, { changed: new Set([app.change(3)]) });
      await simSync(ledger, app);
      clock.advance(400 * 86_400_000);
      expect(ledger.gc({ maxAgeMs: 86_400_000, keepLast: 1 }).entriesDropped).toBe(1);
      await replica.flush();
      const restored = join(tmp.dir, "c-restored.db");
      await restoreFromReplica(store("c"), restored);
      expect(await tables(restored)).toEqual(await tables(path));
      const copy = await Ledger.open(restored);
      try {
        expect(copy.verify().ok).toBe(true);
        expect(copy.get(first.entry)).toBeUndefined();
        expect(copy.get(change.entry)?.objects).toEqual(change.records);
        expect(copy.list()[0]?.verified?.count).toBe(1);
      } finally {
        copy.close();
      }
    } finally {
      await replica.close();
      ledger.close();
    }
  }, 60_000);

  test("a restore from the store holds exactly the ledger's rows and verifies", async () => {
    const path = join(tmp.dir, "a.db");
    const ledger = await Ledger.open(path);
    const replica = await LedgerReplica.start(path, store("a"), { intervalMs: 200 });
    try {
      await sync(ledger, 20, "v1");
      await sync(ledger, 20, "v2");
      await replica.flush();
      // Changes after the base go out as segments.
      await sync(ledger, 5, "v3");
      await replica.flush();
      expect(replica.lagSeconds()).toBe(0);
      const keys = await store("a").list("gen/");
      expect(keys.some((k) => /\/base\/\d+\.db$/.test(k))).toBe(true);
      expect(keys.some((k) => /\/seg\/\d+\.json$/.test(k))).toBe(true);

      const restored = join(tmp.dir, "a-restored.db");
      const r = await restoreFromReplica(store("a"), restored);
      expect(r.segments).toBeGreaterThan(0);
      expect(await tables(restored)).toEqual(await tables(path));
      const copy = await Ledger.open(restored);
      try {
        expect(copy.verify().ok).toBe(true);
        expect(copy.inventory("web").length).toBe(5);
        expect(copy.list({ limit: 10 }).map((e) => e.revision)).toEqual(["rev-v3", "rev-v2", "rev-v1"]);
      } finally {
        copy.close();
      }
    } finally {
      await replica.close();
      ledger.close();
    }
  }, 60_000);

  test("with the store down the ledger goes on, the lag grows; when it is back the lag drains", async () => {
    const path = join(tmp.dir, "b.db");
    const ledger = await Ledger.open(path);
    const replica = await LedgerReplica.start(path, store("b"), { intervalMs: 200 });
    try {
      await sync(ledger, 3, "v1");
      await replica.flush();
      await s3.stop();
      await sync(ledger, 3, "v2"); // recorded while the store is down
      await new Promise((r) => setTimeout(r, 2500));
      expect(replica.lagSeconds()).toBeGreaterThan(1.5);
      expect(replica.lastError).toMatch(/ledger replica/);
      await s3.start();
      await replica.flush();
      expect(replica.lagSeconds()).toBe(0);
      const restored = join(tmp.dir, "b-restored.db");
      await restoreFromReplica(store("b"), restored);
      expect(await tables(restored)).toEqual(await tables(path));
    } finally {
      if ((await fetch(s3.endpoint).catch(() => undefined)) === undefined) await s3.start();
      await replica.close();
      ledger.close();
    }
  }, 60_000);

  test("restoring from an empty prefix says so and writes nothing", async () => {
    const target = join(tmp.dir, "none.db");
    await expect(restoreFromReplica(store("nothing-here"), target)).rejects.toThrow(
      /holds no ledger replica/,
    );
    expect(existsSync(target)).toBe(false);
  });

  test("an HA standby follows the leader's replica and, taking over, continues the same chain and inventory", async () => {
    const leaderPath = join(tmp.dir, "leader.db");
    const standbyPath = join(tmp.dir, "standby.db");
    const leader = await Ledger.open(leaderPath);
    const standby = await Ledger.open(standbyPath);
    const shipping = await LedgerReplica.start(leaderPath, store("ha"), { intervalMs: 200 });
    const follower = await LedgerFollower.start(standbyPath, store("ha"), { intervalMs: 200 });
    try {
      await sync(leader, 4, "v1");
      await shipping.flush();
      await follower.catchUp();
      await sync(leader, 6, "v2");
      await shipping.flush();
      await follower.catchUp();
      expect(await tables(standbyPath)).toEqual(await tables(leaderPath));
      expect(standby.inventory("web").length).toBe(6);
    } finally {
      await shipping.close();
      leader.close(); // the leader is gone
    }
    // Takeover: stop following, ship from here on; the next entry chains onto the old leader's.
    await follower.close();
    const takeover = await LedgerReplica.start(standbyPath, store("ha"), { intervalMs: 200 });
    try {
      await sync(standby, 2, "v3");
      expect(standby.verify().ok).toBe(true);
      expect(standby.list({ limit: 10 }).map((e) => e.revision)).toEqual(["rev-v3", "rev-v2", "rev-v1"]);
      await takeover.flush();
      const restored = join(tmp.dir, "ha-restored.db");
      await restoreFromReplica(store("ha"), restored);
      const copy = await Ledger.open(restored);
      try {
        expect(copy.verify().ok).toBe(true);
        expect(copy.list({ limit: 10 }).map((e) => e.revision)).toEqual(["rev-v3", "rev-v2", "rev-v1"]);
      } finally {
        copy.close();
      }
    } finally {
      await takeover.close();
      standby.close();
    }
  }, 60_000);
});
