/**
 * Benchmark: how the ledger file grows. Drives the Ledger API directly (no cluster, no Git: the records a
 * sync of a 1,000-object app leaves, as the engine writes them; see test/support/ledger-sim.ts):
 * 200 no-op resyncs and 20 one-object changes (bytes each, the database file after a WAL checkpoint), then
 * a simulated 30 days at a 60 s interval with 10 changes a day, `verify` after it, after `gc` with the
 * default retention and after a gc that keeps 7 days. Prints one JSON object per figure. The 30-day run
 * hands the ledger only the changed manifests (storing an unchanged one writes nothing), to save hashing.
 * Usage: bun scripts/bench/ledger-growth.ts [--objects 1000] [--days 30] [--interval 60]
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_RETENTION } from "../../agent/config/config.ts";
import { openDriver } from "../../agent/ledger/driver.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { SimApp, SimClock, simSync } from "../../test/support/ledger-sim.ts";
import { numberFlag } from "./flags.ts";

const ROOT = join(import.meta.dir, "..", "..");
const OBJECTS = numberFlag("--objects", 1000);
const DAYS = numberFlag("--days", 30);
const INTERVAL_S = numberFlag("--interval", 60);
const CHANGES_PER_DAY = 10;
const commit = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], {
  cwd: ROOT,
  encoding: "utf8",
}).trim();
const emit = (metric: string, value: number, unit: string, extra: Record<string, unknown> = {}) =>
  console.log(
    JSON.stringify({
      bench: "ledger-growth",
      metric,
      value: Math.round(value * 1000) / 1000,
      unit,
      runtime: "bun",
      driver: "ledger API (no cluster)",
      objects: OBJECTS,
      commit,
      ...extra,
    }),
  );

const dir = mkdtempSync(join(tmpdir(), "berth-ledger-growth-"));
const path = join(dir, "ledger.db");
const clock = new SimClock();

/** Bytes of the database file with the WAL folded in (what stays on disk). */
async function size(): Promise<number> {
  const db = await openDriver(path);
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  const wal = `${path}-wal`;
  return statSync(path).size + (existsSync(wal) ? statSync(wal).size : 0);
}

async function manifestBytes(ledger: Ledger, digest: string | undefined): Promise<number> {
  const m = await ledger.getManifest(digest ?? "");
  return m ? JSON.stringify(m).length : 0;
}

try {
  let ledger = await Ledger.open(path, { now: clock.now });
  const app = new SimApp("web", OBJECTS);
  await simSync(ledger, app, { first: true });
  const afterFirst = await size();
  emit("first sync", afterFirst, "bytes");

  const NOOPS = 200;
  for (let i = 0; i < NOOPS; i++) {
    clock.advance(INTERVAL_S * 1000);
    await simSync(ledger, app);
  }
  const afterNoops = await size();
  emit("bytes per no-op resync", (afterNoops - afterFirst) / NOOPS, "bytes", { target: 2048 });

  const CHANGES = 20;
  let manifests = 0;
  for (let i = 0; i < CHANGES; i++) {
    clock.advance(INTERVAL_S * 1000);
    const id = app.change((i * 37) % OBJECTS);
    const s = await simSync(ledger, app, { changed: new Set([id]) });
    manifests += await manifestBytes(ledger, s.records.find((r) => r.action === "configured")?.digest);
    clock.advance(INTERVAL_S * 1000);
    await simSync(ledger, app);
  }
  const afterChanges = await size();
  const perChange = (afterChanges - afterNoops) / CHANGES;
  emit("bytes per one-object change", perChange, "bytes", {
    target: 20_480,
    newManifestBytes: Math.round(manifests / CHANGES),
    withoutManifest: Math.round(perChange - manifests / CHANGES),
  });
  // `berth sync` from a shell or a cron job: an operator's own sync is an entry of its own, never folded.
  const CLI_NOOPS = 20;
  for (let i = 0; i < CLI_NOOPS; i++) {
    clock.advance(INTERVAL_S * 1000);
    await simSync(ledger, app, { trigger: "cli" });
  }
  const afterCli = await size();
  emit("bytes per CLI no-op sync (berth sync, never folded)", (afterCli - afterChanges) / CLI_NOOPS, "bytes");
  let v = ledger.verify();
  emit("verify after 200 no-ops + 20 changes + 20 CLI no-ops", v.ok ? 1 : 0, "ok", { entries: v.entries });
  ledger.close();
  rmSync(dir, { recursive: true, force: true });

  // 30 days at the interval, 10 one-object changes a day, spread evenly.
  const fresh = mkdtempSync(join(tmpdir(), "berth-ledger-growth-"));
  const simPath = join(fresh, "ledger.db");
  const simClock = new SimClock();
  ledger = await Ledger.open(simPath, { now: simClock.now });
  const sim = new SimApp("web", OBJECTS);
  await simSync(ledger, sim, { first: true });
  const perDay = Math.round(86_400 / INTERVAL_S);
  const changeEvery = Math.floor(perDay / CHANGES_PER_DAY);
  const t0 = performance.now();
  let syncs = 0;
  for (let day = 0; day < DAYS; day++) {
    for (let k = 0; k < perDay; k++) {
      simClock.advance(INTERVAL_S * 1000);
      const changed = k % changeEvery === 0 ? new Set([sim.change((day * 131 + k) % OBJECTS)]) : undefined;
      await simSync(ledger, sim, { storeChangedOnly: true, ...(changed ? { changed } : {}) });
      syncs++;
    }
  }
  const simSeconds = (performance.now() - t0) / 1000;
  const simSize = async () => {
    const db = await openDriver(simPath);
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    db.close();
    return statSync(simPath).size;
  };
  const after30 = await simSize();
  emit(`ledger size after ${DAYS} days`, after30 / 1e6, "MB", {
    target: 50,
    syncs,
    changes: DAYS * CHANGES_PER_DAY,
    intervalSeconds: INTERVAL_S,
    entries: ledger.list({ limit: 1000 }).length,
    msPerSync: Math.round((simSeconds * 1000) / syncs),
  });
  v = ledger.verify();
  emit(`verify after ${DAYS} days`, v.ok ? 1 : 0, "ok", { entries: v.entries, blobs: v.blobs });
  const gc = ledger.gc({ maxAgeMs: DEFAULT_RETENTION.maxAgeMs, keepLast: DEFAULT_RETENTION.keepLast });
  v = ledger.verify();
  emit("verify after gc (default retention)", v.ok ? 1 : 0, "ok", { ...gc, sizeMB: (await simSize()) / 1e6 });
  const gc7 = ledger.gc({ maxAgeMs: 7 * 86_400_000, keepLast: 10 });
  v = ledger.verify();
  emit("verify after gc keeping 7 days", v.ok ? 1 : 0, "ok", { ...gc7, sizeMB: (await simSize()) / 1e6 });
  ledger.close();
  rmSync(fresh, { recursive: true, force: true });
} finally {
  rmSync(dir, { recursive: true, force: true });
}
