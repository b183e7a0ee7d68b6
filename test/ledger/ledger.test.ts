import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { GENESIS_HASH } from "../../agent/ledger/chain.ts";
import { clampLimit, Ledger, MAX_LIST_LIMIT } from "../../agent/ledger/ledger.ts";
import { BerthError } from "../../agent/object/errors.ts";
import type { Action } from "../../agent/object/object.ts";
import { configMap, coreRef, deploymentRef, tempDir } from "../support/ledger-fixtures.ts";

const COMMIT = {
  sha: "a".repeat(40),
  author: "Ada <ada@example.com>",
  message: "bump",
  time: "2026-11-01T10:00:00Z",
};

let dir: string;
let cleanup: () => void;
let path: string;
let ledger: Ledger;
let clock: number;

beforeEach(async () => {
  ({ dir, cleanup } = tempDir());
  path = join(dir, "ledger.db");
  clock = Date.parse("2026-11-01T12:00:00Z");
  // A clock that ticks one second per reading, so start and finish times differ predictably.
  const tick = () => {
    clock += 1000;
    return new Date(clock);
  };
  ledger = await Ledger.open(path, { now: tick });
});

afterEach(() => {
  ledger.close();
  cleanup();
});

function succeed(id: number, extra: Partial<Parameters<Ledger["finish"]>[1]> = {}): void {
  ledger.finish(id, {
    outcome: "Succeeded",
    reason: "Succeeded",
    message: "synced",
    objects: [],
    timings: {},
    ...extra,
  });
}

describe("begin / finish / get", () => {
  test("begin records a Running entry; finish records the outcome, objects and timings", () => {
    const id = ledger.begin({ app: "web", revision: "main@sha1:aaa", commit: COMMIT, trigger: "poll" });
    expect(ledger.get(id)).toEqual({
      id,
      app: "web",
      revision: "main@sha1:aaa",
      commitSha: COMMIT.sha,
      commit: COMMIT,
      trigger: "poll",
      outcome: "Running",
      startedAt: "2026-11-01T12:00:01.000Z",
      timings: {},
      objects: [],
    });
    ledger.finish(id, {
      outcome: "Failed",
      reason: "HealthCheckFailed",
      message: "Deployment/default/api did not become ready",
      renderedDigest: "sha256:abc",
      health: "Failed",
      timings: { fetch: 12, apply: 340 },
      objects: [
        {
          ref: deploymentRef("api"),
          action: "configured",
          health: "Failed",
          message: "timeout",
          digest: "sha256:d1",
        },
        { ref: coreRef("ConfigMap", "cfg"), action: "unchanged" },
      ],
    });
    const entry = ledger.get(id);
    expect(entry).toMatchObject({
      outcome: "Failed",
      reason: "HealthCheckFailed",
      message: "Deployment/default/api did not become ready",
      renderedDigest: "sha256:abc",
      health: "Failed",
      timings: { fetch: 12, apply: 340 },
      startedAt: "2026-11-01T12:00:01.000Z",
      finishedAt: "2026-11-01T12:00:02.000Z",
      prevHash: GENESIS_HASH,
    });
    expect(entry?.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(entry?.objects).toEqual([
      {
        ref: deploymentRef("api"),
        action: "configured",
        health: "Failed",
        message: "timeout",
        digest: "sha256:d1",
      },
      { ref: coreRef("ConfigMap", "cfg"), action: "unchanged" },
    ]);
  });

  test("entries chain: each prevHash is the hash of the entry finished before it", () => {
    const a = ledger.begin({ app: "web", revision: "r1", trigger: "poll" });
    const b = ledger.begin({ app: "db", revision: "r1", trigger: "poll" });
    succeed(b); // finished out of id order: the chain follows finish order
    succeed(a);
    expect(ledger.get(b)?.prevHash).toBe(GENESIS_HASH);
    expect(ledger.get(a)?.prevHash).toBe(ledger.get(b)?.hash as string);
    expect(ledger.verify()).toMatchObject({ ok: true, entries: 2 });
  });

  test("get of an unknown id is undefined; finishing it or finishing twice is an error naming the ledger", () => {
    expect(ledger.get(42)).toBeUndefined();
    expect(() => succeed(42)).toThrow(`ledger ${path}: entry 42 does not exist`);
    const id = ledger.begin({ app: "web", revision: "r", trigger: "manual" });
    succeed(id);
    expect(() => succeed(id)).toThrow(BerthError);
    expect(() => succeed(id)).toThrow(`entry ${id} is already Succeeded`);
  });
});

describe("list", () => {
  test("every list query clamps its limit the same way: 1 to the maximum, default 50", () => {
    expect([undefined, Number.NaN, Infinity, -5, 0, 2.9, 7, 10_000].map(clampLimit)).toEqual([
      50,
      50,
      50,
      1,
      1,
      2,
      7,
      MAX_LIST_LIMIT,
    ]);
    for (let i = 0; i < 3; i++) ledger.begin({ app: "web", revision: `r${i}`, trigger: "poll" });
    expect(ledger.list({ limit: 0 })).toHaveLength(1);
    expect(ledger.list({ limit: Number.NaN })).toHaveLength(3);
  });

  test("newest first, filtered by app, paged by the id cursor, limited", () => {
    const ids = [0, 1, 2, 3, 4].map((i) =>
      ledger.begin({ app: i % 2 ? "db" : "web", revision: `r${i}`, trigger: "poll" }),
    );
    const [id0 = 0, id1 = 0, id2 = 0, id3 = 0, id4 = 0] = ids;
    succeed(id0);
    expect(ledger.list({}).map((e) => e.id)).toEqual([...ids].reverse());
    expect(ledger.list({ app: "web" }).map((e) => e.revision)).toEqual(["r4", "r2", "r0"]);
    expect(ledger.list({ limit: 2 }).map((e) => e.id)).toEqual([id4, id3]);
    expect(ledger.list({ limit: 2, before: id3 }).map((e) => e.id)).toEqual([id2, id1]);
    expect(ledger.list({ app: "web", before: id2 }).map((e) => e.id)).toEqual([id0]);
    expect(ledger.list({ app: "nope" })).toEqual([]);
    const first = ledger.list({ app: "web" }).at(-1);
    expect(first).toEqual({
      id: id0,
      app: "web",
      revision: "r0",
      trigger: "poll",
      outcome: "Succeeded",
      reason: "Succeeded",
      message: "synced",
      startedAt: "2026-11-01T12:00:01.000Z",
      finishedAt: "2026-11-01T12:00:06.000Z",
    });
  });
});

describe("inventory", () => {
  test("finish with an inventory replaces the app's inventory; without one leaves it alone", () => {
    const first = ledger.begin({ app: "web", revision: "r1", trigger: "poll" });
    succeed(first, {
      inventory: [
        { ref: deploymentRef("api"), digest: "sha256:1" },
        { ref: coreRef("ConfigMap", "cfg"), digest: "sha256:2" },
      ],
    });
    const other = ledger.begin({ app: "db", revision: "r1", trigger: "poll" });
    succeed(other, { inventory: [{ ref: coreRef("Service", "pg"), digest: "sha256:9" }] });
    // Ordered by object id (namespace_name_group_kind).
    expect(ledger.inventory("web")).toEqual([
      { ref: deploymentRef("api"), digest: "sha256:1" },
      { ref: coreRef("ConfigMap", "cfg"), digest: "sha256:2" },
    ]);

    const second = ledger.begin({ app: "web", revision: "r2", trigger: "poll" });
    succeed(second, { inventory: [{ ref: deploymentRef("api"), digest: "sha256:3" }] });
    expect(ledger.inventory("web")).toEqual([{ ref: deploymentRef("api"), digest: "sha256:3" }]);

    const failed = ledger.begin({ app: "web", revision: "r3", trigger: "poll" });
    ledger.finish(failed, {
      outcome: "Failed",
      reason: "FetchFailed",
      message: "no route",
      objects: [],
      timings: {},
    });
    expect(ledger.inventory("web")).toEqual([{ ref: deploymentRef("api"), digest: "sha256:3" }]);
    expect(ledger.inventory("db")).toEqual([{ ref: coreRef("Service", "pg"), digest: "sha256:9" }]);
    expect(ledger.inventory("unknown")).toEqual([]);
    // One object by its reference, as drift asks: only the app that owns it has it.
    expect(ledger.inventoryItem("web", deploymentRef("api"))).toEqual({
      ref: deploymentRef("api"),
      digest: "sha256:3",
    });
    expect(ledger.inventoryItem("web", coreRef("ConfigMap", "cfg"))).toBeUndefined(); // left with r2
    expect(ledger.inventoryItem("db", deploymentRef("api"))).toBeUndefined();
    expect(ledger.inventoryItem("db", coreRef("Service", "pg"))).toEqual({
      ref: coreRef("Service", "pg"),
      digest: "sha256:9",
    });
  });

  test("a failure inside finish leaves nothing half-written", () => {
    const before = ledger.begin({ app: "web", revision: "r1", trigger: "poll" });
    succeed(before, { inventory: [{ ref: deploymentRef("api"), digest: "sha256:old" }] });
    const id = ledger.begin({ app: "web", revision: "r2", trigger: "poll" });
    // The second object row violates the action CHECK after the entry update and the first row were written.
    const bad = () =>
      ledger.finish(id, {
        outcome: "Succeeded",
        reason: "Succeeded",
        message: "x",
        timings: {},
        objects: [
          { ref: deploymentRef("api"), action: "configured" },
          { ref: deploymentRef("web"), action: "exploded" as Action },
        ],
        inventory: [{ ref: deploymentRef("new"), digest: "sha256:new" }],
      });
    expect(bad).toThrow(BerthError);
    expect(bad).toThrow(new RegExp(`^ledger ${path}: cannot finish entry ${id}: .*CHECK`, "i"));
    const entry = ledger.get(id);
    expect(entry?.outcome).toBe("Running");
    expect(entry?.objects).toEqual([]);
    expect(entry?.hash).toBeUndefined();
    expect(ledger.inventory("web")).toEqual([{ ref: deploymentRef("api"), digest: "sha256:old" }]);
    expect(ledger.verify().ok).toBe(true);
    // And the entry can still be finished properly afterwards.
    succeed(id, { objects: [{ ref: deploymentRef("api"), action: "configured" }] });
    expect(ledger.get(id)?.objects).toHaveLength(1);
    expect(ledger.verify()).toMatchObject({ ok: true, entries: 2 });
  });
});

describe("markInterrupted", () => {
  test("turns every Running entry into Failed/Interrupted, chained, and only once", () => {
    const done = ledger.begin({ app: "web", revision: "r1", trigger: "poll" });
    succeed(done);
    const a = ledger.begin({ app: "web", revision: "r2", trigger: "poll" });
    const b = ledger.begin({ app: "db", revision: "r1", trigger: "webhook" });
    expect(ledger.markInterrupted()).toBe(2);
    for (const id of [a, b]) {
      expect(ledger.get(id)).toMatchObject({ outcome: "Failed", reason: "Interrupted" });
      expect(ledger.get(id)?.message).toContain("stopped before");
      expect(ledger.get(id)?.finishedAt).toBeDefined();
    }
    expect(ledger.get(done)?.outcome).toBe("Succeeded");
    expect(ledger.markInterrupted()).toBe(0);
    expect(ledger.verify()).toMatchObject({ ok: true, entries: 3 });
  });
});

describe("reopening and migrations", () => {
  test("data survives a reopen; migrations run once and are idempotent", async () => {
    const id = ledger.begin({ app: "web", revision: "r1", trigger: "poll" });
    await ledger.putManifests([configMap("cfg", "1")]);
    succeed(id, { inventory: [{ ref: deploymentRef("api"), digest: "sha256:1" }] });
    const expected = ledger.get(id);
    ledger.close();
    for (let i = 0; i < 2; i++) {
      ledger = await Ledger.open(path);
      expect(ledger.get(id)).toEqual(expected as NonNullable<typeof expected>);
      expect(ledger.inventory("web")).toHaveLength(1);
      expect(ledger.verify()).toMatchObject({ ok: true, entries: 1, blobs: 1 });
      ledger.close();
    }
    ledger = await Ledger.open(path);
    // New entries continue the chain across reopens.
    succeed(ledger.begin({ app: "web", revision: "r2", trigger: "poll" }));
    expect(ledger.verify()).toMatchObject({ ok: true, entries: 2 });
  });

  test("a second handle on the same file keeps the chain consistent", async () => {
    const other = await Ledger.open(path);
    try {
      const a = ledger.begin({ app: "web", revision: "r1", trigger: "poll" });
      const b = other.begin({ app: "db", revision: "r1", trigger: "poll" });
      succeed(a);
      other.finish(b, { outcome: "Succeeded", reason: "Succeeded", message: "ok", objects: [], timings: {} });
      expect(ledger.get(b)?.prevHash).toBe(ledger.get(a)?.hash as string);
      expect(other.verify()).toMatchObject({ ok: true, entries: 2 });
    } finally {
      other.close();
    }
  });

  test("backup writes a copy that opens and verifies", async () => {
    succeed(ledger.begin({ app: "web", revision: "r1", trigger: "poll" }));
    const copyPath = join(dir, "copy.db");
    await ledger.backup(copyPath);
    await expect(ledger.backup(copyPath)).rejects.toThrow(`ledger ${path}: cannot back up to ${copyPath}`);
    const copy = await Ledger.open(copyPath);
    try {
      expect(copy.list({})).toHaveLength(1);
      expect(copy.verify().ok).toBe(true);
    } finally {
      copy.close();
    }
  });
});

describe("Ledger.claimInventory()", () => {
  test("adds to the inventory before a finish, and the next finish with an inventory replaces it", () => {
    const a = { ref: coreRef("ConfigMap", "a", "web"), digest: "sha256:a" };
    const b = { ref: coreRef("ConfigMap", "b", "web"), digest: "sha256:b" };
    const id = ledger.begin({ app: "web", revision: "main@sha1:1", trigger: "test" });
    succeed(id, { inventory: [a] });
    ledger.claimInventory("web", [b]);
    expect(ledger.inventory("web").map((i) => i.ref.name)).toEqual(["a", "b"]);
    expect(ledger.inventory("other")).toEqual([]);
    const next = ledger.begin({ app: "web", revision: "main@sha1:2", trigger: "test" });
    succeed(next, { inventory: [b] });
    expect(ledger.inventory("web").map((i) => i.ref.name)).toEqual(["b"]);
  });
});
