/**
 * Benchmark: what a warm no-op of 1,000 objects costs in the ledger, in process. reconcile() over the unit
 * tests' fake cluster and a real ledger file, every pass the same render (digest) and nothing to write; two
 * ledgers side by side, passes alternating: "reuse" (the engine asks lastRender() and skips putManifests, the
 * fold takes its fast path) and "store" (a port without lastRender: every pass digests and stores the 1,000
 * manifests again, as before). Prints per variant the median and range of the pass, of putManifests and of
 * finish, in ms, and /proc/loadavg.   bun scripts/bench/noop-ledger.ts [--passes N] [--objects N]
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../agent/engine/log.ts";
import type { EngineDeps, LedgerPort } from "../../agent/engine/ports.ts";
import { reconcile } from "../../agent/engine/reconcile.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { appSpec, snapshotAt } from "../../test/support/app-spec.ts";
import { FakeCluster } from "../../test/support/fake-cluster.ts";
import { configMap } from "../../test/support/ledger-fixtures.ts";
import { figurePrinter, median, numberFlag } from "./flags.ts";

const PASSES = numberFlag("--passes", 12);
const OBJECTS = numberFlag("--objects", 1000);
const app = appSpec("bench", { namespace: "bench", timeout: 300 });
const snapshot = snapshotAt("d".repeat(40));
const objects = Array.from({ length: OBJECTS }, (_, i) => configMap(`cm-${i}`, `value ${i}`, "bench"));
const emit = figurePrinter("noop-ledger");
const load = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

interface Variant {
  name: string;
  ms: { pass: number[]; put: number[]; finish: number[] };
  /** One timed no-op pass. */
  pass: () => Promise<void>;
}

async function variant(name: string, reuse: boolean): Promise<Variant> {
  const ledger = await Ledger.open(join(mkdtempSync(join(tmpdir(), "berth-noop-ledger-")), "ledger.db"));
  const ms = { pass: [] as number[], put: [] as number[], finish: [] as number[] };
  let put = 0;
  let finish = 0;
  const port: LedgerPort = {
    begin: (s) => ledger.begin(s),
    putManifests: async (o) => {
      const t0 = performance.now();
      const out = await ledger.putManifests(o);
      put += performance.now() - t0;
      return out;
    },
    ...(reuse ? { lastRender: (a: string) => ledger.lastRender?.(a) } : {}),
    finish: (id, r) => {
      const t0 = performance.now();
      const out = ledger.finish(id, r);
      finish += performance.now() - t0;
      return out;
    },
    inventory: (a) => ledger.inventory(a),
    claimInventory: (a, items) => ledger.claimInventory(a, items),
  };
  const deps: EngineDeps = {
    source: { resolve: async () => "d".repeat(40), snapshot: async () => snapshot },
    render: async () => ({
      objects: objects.map((object, i) => ({ object, source: `bench/all.yaml#${i}` })),
      skipped: [],
      errors: [],
      digest: "sha256:bench-render",
    }),
    cluster: new FakeCluster(),
    ledger: port,
    health: { assess: () => ({ status: "Current", reason: "Current", message: "ok" }) },
    log: silentLogger,
  };
  // The first sync writes everything; the second is the first no-op (slow path, it fills what the fast one reads).
  for (let i = 0; i < 2; i++) await reconcile(deps, { app, trigger: "loop" });
  const pass = async () => {
    put = 0;
    finish = 0;
    const t0 = performance.now();
    const r = await reconcile(deps, { app, trigger: "loop" });
    if (r.reason !== "Succeeded") throw new Error(`${name}: ${r.reason}: ${r.message}`);
    ms.pass.push(performance.now() - t0);
    ms.put.push(put);
    ms.finish.push(finish);
  };
  return { name, ms, pass };
}

const variants = [await variant("reuse", true), await variant("store", false)];
const loads = [load()];
for (let i = 0; i < PASSES; i++) for (const v of i % 2 ? [...variants].reverse() : variants) await v.pass();
loads.push(load());
for (const v of variants) {
  for (const [part, values] of Object.entries(v.ms)) {
    emit(`${v.name}_${part}_ms`, median(values), "ms");
    console.log(
      JSON.stringify({
        bench: "noop-ledger",
        metric: `${v.name}_${part}_ms_range`,
        min: Math.round(Math.min(...values) * 10) / 10,
        max: Math.round(Math.max(...values) * 10) / 10,
        passes: values.length,
        objects: OBJECTS,
        load: loads,
      }),
    );
  }
}
