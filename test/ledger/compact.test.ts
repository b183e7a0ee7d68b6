import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { SCHEMA_VERSION } from "../../agent/ledger/schema.ts";
import { objectId, refOf } from "../../agent/object/object.ts";
import { coreRef, tempDir, withRawDb } from "../support/ledger-fixtures.ts";
import { SimApp, SimClock, type SimSync, simSync } from "../support/ledger-sim.ts";

let dir: string;
let cleanup: () => void;
let clock: SimClock;
let ledger: Ledger;

beforeEach(async () => {
  ({ dir, cleanup } = tempDir());
  clock = new SimClock();
  ledger = await Ledger.open(join(dir, "l.db"), { now: clock.now });
});
afterEach(() => {
  ledger.close();
  cleanup();
});

const rowsOf = (entry: number) =>
  withRawDb(join(dir, "l.db"), (db) =>
    db.all<{ object_id: string; action: string }>(
      "SELECT object_id, action FROM entry_objects WHERE entry_id = ? ORDER BY seq",
      [entry],
    ),
  );

describe("compact no-op resyncs", () => {
  test("a no-op resync folds into the last entry's verified record; a change is a full entry with one row", async () => {
    const app = new SimApp("web", 50);
    const first = await simSync(ledger, app, { first: true });
    for (let i = 0; i < 5; i++) {
      clock.advance(60_000);
      expect((await simSync(ledger, app)).entry).toBe(first.entry);
    }
    let list = ledger.list({ app: "web" });
    expect(list).toHaveLength(1);
    expect(list[0]?.verified).toEqual({
      count: 5,
      firstAt: "2026-01-01T09:01:00.000Z",
      lastAt: "2026-01-01T09:05:00.000Z",
      health: "Current",
    });
    // No Running rows are left behind by folded attempts.
    expect(await withRawDb(join(dir, "l.db"), (db) => db.all("SELECT id FROM entries"))).toHaveLength(1);

    clock.advance(60_000);
    const changedId = app.change(7);
    const change = await simSync(ledger, app, { changed: new Set([changedId]) });
    expect(change.entry).not.toBe(first.entry);
    expect(await rowsOf(change.entry)).toEqual([{ object_id: changedId, action: "configured" }]);
    // The full record set comes back exactly, rebuilt from the shared snapshot.
    expect(ledger.get(change.entry)?.objects).toEqual(change.records);
    expect(ledger.get(first.entry)?.objects).toEqual(first.records);
    // The first no-op after a change folds into the change.
    clock.advance(60_000);
    expect((await simSync(ledger, app)).entry).toBe(change.entry);
    list = ledger.list({ app: "web" });
    expect(list.map((e) => [e.id, e.verified?.count])).toEqual([
      [change.entry, 1],
      [first.entry, 5],
    ]);
    expect(ledger.verify()).toMatchObject({ ok: true, entries: 2 });
  });

  test("a health change is a full entry with a row for that object only", async () => {
    const app = new SimApp("web", 20);
    await simSync(ledger, app, { first: true });
    const objects = app.objects();
    const id = ledger.begin({ app: "web", revision: app.rev, trigger: "loop" });
    const digests = await ledger.putManifests(objects);
    const records = objects.map((o, i) => ({
      ref: refOf(o),
      action: "unchanged" as const,
      health: i === 3 ? ("InProgress" as const) : ("Current" as const),
      ...(i === 3 ? { message: "waiting" } : {}),
      digest: digests.get(objectId(refOf(o))) ?? "",
    }));
    const entry = ledger.finish(id, {
      outcome: "Succeeded",
      reason: "Succeeded",
      message: "0 created, 0 configured",
      objects: records,
      health: "InProgress",
      timings: {},
    });
    expect(entry).toBe(id);
    expect(await rowsOf(id)).toEqual([
      { object_id: objectId(records[3]?.ref ?? coreRef("x", "y")), action: "unchanged" },
    ]);
    expect(ledger.get(id)?.objects).toEqual(records);
  });

  test("records not in apply order are stored whole and still come back exactly", async () => {
    const app = new SimApp("web", 10);
    await simSync(ledger, app, { first: true });
    const objects = app.objects().reverse();
    const id = ledger.begin({ app: "web", revision: "other", trigger: "loop" });
    const digests = await ledger.putManifests(objects);
    const records = objects.map((o) => ({
      ref: refOf(o),
      action: "unchanged" as const,
      digest: digests.get(objectId(refOf(o))) ?? "",
    }));
    ledger.finish(id, {
      outcome: "Succeeded",
      reason: "Succeeded",
      message: "m",
      objects: records,
      timings: {},
    });
    expect(await rowsOf(id)).toHaveLength(10);
    expect(ledger.get(id)?.objects).toEqual(records);
    expect(ledger.verify().ok).toBe(true);
  });

  test("an attempt someone asked for (API sync, webhook) stays an entry of its own", async () => {
    const app = new SimApp("web", 5);
    const first = await simSync(ledger, app, { first: true });
    const commit = {
      sha: app.rev.slice(-40),
      author: "dev <dev@x>",
      message: "change",
      time: "2026-01-01T00:00:00Z",
    };
    const id = ledger.begin({ app: "web", revision: app.rev, commit, trigger: "loop", requested: true });
    const digests = await ledger.putManifests(app.objects());
    const records = first.records.map((r) => ({
      ...r,
      action: "unchanged" as const,
      digest: digests.get(objectId(r.ref)) ?? "",
    }));
    const finish = {
      outcome: "Succeeded" as const,
      reason: "Succeeded" as const,
      message: "m",
      renderedDigest: `sha256:${app.rev.slice(-40).padStart(64, "0")}`,
      objects: records,
      health: "Current" as const,
      timings: {},
    };
    expect(ledger.finish(id, finish)).toBe(id);
    expect(ledger.get(id)?.objects).toEqual(records);
    // The next periodic one folds into it as usual.
    expect((await simSync(ledger, app)).entry).toBe(id);
  });

  test("repeats with the same skipped objects (a pinned replay leaving a Secret alone) fold", async () => {
    const app = new SimApp("web", 4);
    await simSync(ledger, app, { first: true });
    const objects = app.objects();
    const digests = await ledger.putManifests(objects);
    const attempt = (note: string) => {
      const id = ledger.begin({ app: "web", revision: app.rev, trigger: "pin" });
      const records = objects.map((o, i) => ({
        ref: refOf(o),
        action: i === 1 ? ("skipped" as const) : ("unchanged" as const),
        digest: digests.get(objectId(refOf(o))) ?? "",
        ...(i === 1 ? { message: note } : {}),
      }));
      return ledger.finish(id, {
        outcome: "Succeeded",
        reason: "Succeeded",
        message: "m",
        objects: records,
        timings: {},
      });
    };
    const first = attempt("not restored: stored redacted");
    expect(attempt("not restored: stored redacted")).toBe(first);
    expect(attempt("not restored: another reason")).not.toBe(first);
    expect(ledger.verify().ok).toBe(true);
  });

  test("an operator's sync or a different outcome is never folded", async () => {
    const app = new SimApp("web", 5);
    const first = await simSync(ledger, app, { first: true });
    const id = ledger.begin({ app: "web", revision: app.rev, trigger: "cli" });
    expect(
      ledger.finish(id, {
        outcome: "Succeeded",
        reason: "Succeeded",
        message: "m",
        objects: [],
        timings: {},
      }),
    ).toBe(id);
    const failed = ledger.begin({ app: "web", revision: app.rev, trigger: "loop" });
    expect(
      ledger.finish(failed, {
        outcome: "Failed",
        reason: "FetchFailed",
        message: "down",
        objects: [],
        timings: {},
      }),
    ).toBe(failed);
    // The same failure again folds (it wrote nothing either): the list shows one line for the run.
    const again = ledger.begin({ app: "web", revision: app.rev, trigger: "loop" });
    expect(
      ledger.finish(again, {
        outcome: "Failed",
        reason: "FetchFailed",
        message: "down",
        objects: [],
        timings: {},
      }),
    ).toBe(failed);
    expect(ledger.list({ app: "web" }).map((e) => e.id)).toEqual([failed, id, first.entry]);
    expect(ledger.verify().ok).toBe(true);
  });

  test("every entry of a run of changes and no-ops reconstructs exactly, and its manifests load", async () => {
    const app = new SimApp("web", 40);
    const recorded = new Map<number, SimSync["records"]>();
    const first = await simSync(ledger, app, { first: true });
    recorded.set(first.entry, first.records);
    for (let round = 0; round < 12; round++) {
      clock.advance(60_000);
      if (round % 3 === 0) {
        const s = await simSync(ledger, app, { changed: new Set([app.change((round * 7) % 40)]) });
        recorded.set(s.entry, s.records);
      } else await simSync(ledger, app);
    }
    expect(ledger.list({ app: "web" })).toHaveLength(recorded.size);
    for (const [entry, records] of recorded) {
      const got = ledger.get(entry);
      expect(got?.objects).toEqual(records);
      for (const r of got?.objects ?? []) expect(await ledger.getManifest(r.digest ?? "")).toBeDefined();
    }
    expect(ledger.verify().ok).toBe(true);
  });
});

describe("verify covers the compact records", () => {
  test("an altered verified record, a sealed one changed later, or an altered snapshot fail verification", async () => {
    const app = new SimApp("web", 30);
    const first = await simSync(ledger, app, { first: true });
    await simSync(ledger, app);
    await simSync(ledger, app);
    await withRawDb(join(dir, "l.db"), (db) => db.run("UPDATE verifications SET count = 100"));
    expect(ledger.verify()).toMatchObject({ ok: false, firstBad: first.entry });
    await withRawDb(join(dir, "l.db"), (db) => db.run("UPDATE verifications SET count = 2"));
    expect(ledger.verify().ok).toBe(true);
    // A change seals the record: recomputing its hash after that is still caught by the seal.
    await simSync(ledger, app, { changed: new Set([app.change(1)]) });
    const { hash } = await withRawDb(join(dir, "l.db"), (db) => {
      const v = db.get<{ entry_id: number; first_at: string; last_at: string; health: string; hash: string }>(
        "SELECT * FROM verifications",
      );
      return { hash: v?.hash };
    });
    expect(hash).toBeDefined();
    const { verificationHashOf } = await import("../../agent/ledger/chain.ts");
    await withRawDb(join(dir, "l.db"), (db) => {
      const e = db.get<{ hash: string }>("SELECT hash FROM entries WHERE id = ?", [first.entry]);
      const v = db.get<{ first_at: string; last_at: string; health: string }>("SELECT * FROM verifications");
      const forged = {
        count: 1,
        first_at: v?.first_at ?? "",
        last_at: v?.last_at ?? "",
        health: v?.health ?? null,
      };
      db.run("UPDATE verifications SET count = 1, hash = ?", [verificationHashOf(e?.hash ?? "", forged)]);
    });
    expect(ledger.verify()).toMatchObject({ ok: false, firstBad: first.entry });
    expect(ledger.verify().message).toContain("after entry");
  });

  test("an altered inventory snapshot fails verification", async () => {
    const app = new SimApp("web", 30);
    await simSync(ledger, app, { first: true });
    await withRawDb(join(dir, "l.db"), (db) =>
      db.run("UPDATE snapshots SET content = replace(content, 'cm-00001', 'cm-99999')"),
    );
    const v = ledger.verify();
    expect(v.ok).toBe(false);
    expect(v.message).toContain("inventory snapshot");
  });
});

describe("migration of a schema-4 ledger", () => {
  test("the fixture written by the previous code opens, migrates, verifies and keeps every entry readable", async () => {
    const path = join(dir, "v4.db");
    copyFileSync(join(import.meta.dir, "../fixtures/ledger/v4.db"), path);
    const before = await withRawDb(path, (db) => ({
      version: db.get<{ user_version: number }>("PRAGMA user_version")?.user_version,
      rows: db.all(
        "SELECT entry_id, seq, object_id, action, digest FROM entry_objects ORDER BY entry_id, seq",
      ),
    }));
    expect(before.version).toBe(4);
    const old = await Ledger.open(path, { secretKey: new Uint8Array(32).fill(7), now: clock.now });
    try {
      expect(await withRawDb(path, (db) => db.get("PRAGMA user_version"))).toEqual({
        user_version: SCHEMA_VERSION,
      });
      expect(old.verify()).toMatchObject({ ok: true, entries: 5, blobs: 5 });
      expect(ledger.list().length).toBe(0);
      const entries = old.list({ limit: 10 });
      expect(entries.map((e) => [e.id, e.app, e.outcome])).toEqual([
        [6, "jobs", "Running"],
        [5, "web", "Failed"],
        [4, "jobs", "Succeeded"],
        [3, "web", "Succeeded"],
        [2, "web", "Succeeded"],
        [1, "web", "Succeeded"],
      ]);
      // Legacy entries list every object as a row and come back as they were.
      const e3 = old.get(3);
      expect(e3?.objects.map((o) => o.action)).toEqual(["configured", "unchanged", "unchanged"]);
      expect(e3?.objects.map((o) => o.digest)).toEqual(
        before.rows
          .filter((r) => (r as { entry_id: number }).entry_id === 3)
          .map((r) => (r as { digest: string }).digest),
      );
      const secret = e3?.objects.find((o) => o.ref.kind === "Secret");
      expect((await old.getManifest(secret?.digest ?? ""))?.data).toEqual({ password: "aHVudGVyMg==" });
      expect(old.pinOf("web")?.entry).toBe(3);
      // The chain continues: interrupted, a new compact entry, a fold, gc; it all verifies.
      expect(old.markInterrupted()).toBe(1);
      const app = new SimApp("jobs", 3);
      const s = await simSync(old, app, { first: true });
      expect((await simSync(old, app)).entry).toBe(s.entry);
      expect(old.verify().ok).toBe(true);
      clock.advance(400 * 86_400_000);
      const report = old.gc({ maxAgeMs: 90 * 86_400_000, keepLast: 1 });
      expect(report.entriesDropped).toBeGreaterThan(0);
      expect(old.get(3)).toBeDefined(); // pinned
      expect(old.verify().ok).toBe(true);
      expect(await withRawDb(path, (db) => db.get("PRAGMA auto_vacuum"))).toEqual({ auto_vacuum: 2 });
    } finally {
      old.close();
    }
  });
});

describe("retention (gc)", () => {
  const DAY = 86_400_000;

  test("drops old entries behind a checkpoint, keeps protected ones, collects blobs and still verifies", async () => {
    const web = new SimApp("web", 20);
    const jobs = new SimApp("jobs", 5);
    const first = await simSync(ledger, web, { first: true });
    const jobsFirst = await simSync(ledger, jobs, { first: true });
    const changes: number[] = [];
    for (let i = 0; i < 10; i++) {
      clock.advance(DAY);
      changes.push((await simSync(ledger, web, { changed: new Set([web.change(i)]) })).entry);
      await simSync(ledger, web);
    }
    const pinned = changes[2] as number;
    ledger.pin("web", pinned);
    const approvedRev = ledger.get(changes[4] as number)?.revision ?? "";
    ledger.approve("web", approvedRev, "ops", new Date(clock.now().getTime() + 1000 * DAY));
    const blobsBefore = await withRawDb(
      join(dir, "l.db"),
      (db) => db.get<{ n: number }>("SELECT COUNT(*) AS n FROM blobs")?.n,
    );

    clock.advance(100 * DAY);
    const dry = ledger.gc({ maxAgeMs: 90 * DAY, keepLast: 3, dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, entriesDropped: 6 });
    expect(ledger.list({ limit: 100 })).toHaveLength(12); // a dry run changes nothing

    const report = ledger.gc({ maxAgeMs: 90 * DAY, keepLast: 3 });
    expect(report).toMatchObject({ dryRun: false, entriesDropped: 6, blobsSkipped: false });
    expect(report.blobsDropped).toBeGreaterThan(0);
    const kept = ledger.list({ limit: 100 }).map((e) => e.id);
    // Each app's newest 3, the pinned entry, the approved one; jobs' only entry is its last healthy.
    expect(kept.sort((a, b) => a - b)).toEqual(
      [jobsFirst.entry, pinned, ...changes.filter((_, i) => [4, 7, 8, 9].includes(i))].sort((a, b) => a - b),
    );
    expect(kept).not.toContain(first.entry);
    expect(ledger.verify()).toMatchObject({ ok: true, entries: 6 });
    // Every kept entry is still whole: records rebuilt, every manifest present.
    for (const id of kept) {
      for (const o of ledger.get(id)?.objects ?? [])
        expect(await ledger.getManifest(o.digest ?? "")).toBeDefined();
    }
    const blobsAfter = await withRawDb(
      join(dir, "l.db"),
      (db) => db.get<{ n: number }>("SELECT COUNT(*) AS n FROM blobs")?.n,
    );
    expect(blobsAfter).toBe((blobsBefore ?? 0) - report.blobsDropped);

    // Later syncs chain on after the checkpoint; a second gc extends it; verify still passes.
    await simSync(ledger, web, { changed: new Set([web.change(15)]) });
    ledger.unpin("web");
    clock.advance(100 * DAY);
    ledger.gc({ maxAgeMs: 90 * DAY, keepLast: 1 });
    expect(ledger.verify().ok).toBe(true);
    // Removing an entry gc kept below its checkpoint is caught.
    await withRawDb(join(dir, "l.db"), (db) => {
      db.exec("PRAGMA foreign_keys = ON");
      db.run("DELETE FROM entries WHERE id = ?", [changes[4] as number]);
    });
    expect(ledger.verify().ok).toBe(false);
  });

  test("gc leaves blobs alone while a sync is Running", async () => {
    const app = new SimApp("web", 5);
    await simSync(ledger, app, { first: true });
    await simSync(ledger, app, { changed: new Set([app.change(0)]) });
    ledger.begin({ app: "web", revision: "r", trigger: "loop" });
    clock.advance(400 * DAY);
    const report = ledger.gc({ maxAgeMs: DAY, keepLast: 1 });
    expect(report).toMatchObject({ entriesDropped: 1, blobsSkipped: true, blobsDropped: 0 });
    expect(ledger.verify().ok).toBe(true);
  });
});

describe("records of objects an attempt did not write", () => {
  test("come back whole from the snapshot, and repeats of them still fold", async () => {
    const app = new SimApp("web", 8);
    await simSync(ledger, app, { first: true });
    const objects = app.objects();
    const digests = await ledger.putManifests(objects);
    const attempt = (trigger = "loop") => {
      const id = ledger.begin({ app: "web", revision: "r2", trigger });
      const records = objects.map((o) => ({
        ref: refOf(o),
        action: "unchanged" as const,
        health: "Current" as const,
        digest: digests.get(objectId(refOf(o))) ?? "",
      }));
      return {
        entry: ledger.finish(id, {
          outcome: "Succeeded",
          reason: "Succeeded",
          message: "m",
          objects: records,
          health: "Current",
          timings: {},
        }),
        records,
      };
    };
    // The first attempt changes every item (rows, whose columns predate such fields); the next folds.
    const first = attempt();
    expect(attempt().entry).toBe(first.entry);
    // An operator's attempt is its own entry, with no rows: every record comes from the snapshot, whole.
    const own = attempt("cli");
    expect(own.entry).not.toBe(first.entry);
    expect(await rowsOf(own.entry)).toEqual([]);
    expect(ledger.get(own.entry)?.objects).toEqual(own.records);
    expect(ledger.verify().ok).toBe(true);
  });
});
