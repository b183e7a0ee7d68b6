/**
 * A warm no-op (the render the app's last entry recorded, nothing to write) stores no manifests again and
 * folds into the last entry's verified record: with a fake ledger behind the engine's port (what the engine
 * asks of it), and with the real ledger file (what the entry and its verified record hold afterwards).
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../agent/engine/log.ts";
import type { EngineDeps, LedgerPort } from "../../agent/engine/ports.ts";
import { reconcile } from "../../agent/engine/reconcile.ts";
import { type FinishInput, type InventoryItem, Ledger } from "../../agent/ledger/ledger.ts";
import { digestOf } from "../../agent/object/canonical.ts";
import { type KubeObject, objectId, refOf } from "../../agent/object/object.ts";
import { appSpec, snapshotAt } from "../support/app-spec.ts";
import { FakeCluster } from "../support/fake-cluster.ts";
import { configMap } from "../support/ledger-fixtures.ts";

const APP = appSpec("shop", { namespace: "shop", timeout: 300 });
const snapshot = snapshotAt("c".repeat(40));
const cm = (name: string, v = name) => configMap(name, v, "shop");

/** Engine deps over `ledger`; `state.desired` and `state.digest` are what the next render returns. */
function depsOver(ledger: LedgerPort, objects: KubeObject[]) {
  const state = { desired: objects, digest: "sha256:render-1" };
  const deps: EngineDeps = {
    source: { resolve: async () => "c".repeat(40), snapshot: async () => snapshot },
    render: async () => ({
      objects: state.desired.map((object, i) => ({ object, source: `shop/all.yaml#${i}` })),
      skipped: [],
      errors: [],
      digest: state.digest,
    }),
    cluster: new FakeCluster(),
    ledger,
    health: { assess: () => ({ status: "Current", reason: "Current", message: "ok" }) },
    log: silentLogger,
  };
  return { deps, state };
}

/** The port's contract in memory: lastRender names a success's render that wrote the whole inventory. */
class FakeLedger implements LedgerPort {
  stored: KubeObject[][] = [];
  finished: FinishInput[] = [];
  private inv: InventoryItem[] = [];
  private render: string | undefined;
  begin(): number {
    return this.finished.length + 1;
  }
  async putManifests(objects: KubeObject[]): Promise<Map<string, string>> {
    this.stored.push(objects);
    return new Map(objects.map((o) => [objectId(refOf(o)), digestOf(o)]));
  }
  lastRender(): string | undefined {
    return this.render;
  }
  finish(_id: number, result: FinishInput): void {
    this.finished.push(result);
    if (result.inventory) this.inv = result.inventory;
    this.render =
      result.outcome === "Succeeded" && result.inventory ? (result.renderedDigest ?? undefined) : undefined;
  }
  inventory(): InventoryItem[] {
    return this.inv;
  }
  claimInventory(): void {
    this.render = undefined;
  }
}

const ledgers: Ledger[] = [];
afterEach(() => {
  for (const l of ledgers.splice(0)) l.close();
});

describe("warm no-op", () => {
  test("stores no manifests when the render is the last entry's, and records the same digests", async () => {
    const fake = new FakeLedger();
    const { deps, state } = depsOver(fake, [cm("a"), cm("b")]);
    const loop = { app: APP, trigger: "loop" } as const;
    expect((await reconcile(deps, loop)).reason).toBe("Succeeded");
    expect(fake.stored).toHaveLength(1);
    const first = fake.finished[0]?.objects.map((o) => o.digest);
    for (let i = 0; i < 3; i++) expect((await reconcile(deps, loop)).reason).toBe("Succeeded");
    expect(fake.stored).toHaveLength(1);
    for (const f of fake.finished.slice(1)) {
      expect(f.objects.map((o) => o.action)).toEqual(["unchanged", "unchanged"]);
      expect(f.objects.map((o) => o.digest)).toEqual(first as string[]);
    }
    // Another render digest (same objects): stored again, as before.
    state.digest = "sha256:render-2";
    await reconcile(deps, loop);
    expect(fake.stored).toHaveLength(2);
    // A changed object: stored, written.
    state.desired = [cm("a", "new"), cm("b")];
    state.digest = "sha256:render-3";
    await reconcile(deps, loop);
    expect(fake.stored).toHaveLength(3);
  });

  test("an object the inventory lacks makes the manifests stored again", async () => {
    const fake = new FakeLedger();
    const { deps } = depsOver(fake, [cm("a"), cm("b")]);
    await reconcile(deps, { app: APP, trigger: "loop" });
    // The inventory lost b (say, edited by hand): its digest is unknown, so nothing is reused.
    (fake as unknown as { inv: InventoryItem[] }).inv = fake.inventory().slice(0, 1);
    await reconcile(deps, { app: APP, trigger: "loop" });
    expect(fake.stored).toHaveLength(2);
  });

  test("the real ledger: one entry verified 3 times, its records and chain intact, then a change", async () => {
    let clock = Date.parse("2026-11-01T10:00:00Z");
    const path = join(mkdtempSync(join(tmpdir(), "berth-noop-fold-")), "ledger.db");
    const ledger = await Ledger.open(path, {
      now: () => {
        clock += 1000;
        return new Date(clock);
      },
    });
    ledgers.push(ledger);
    let puts = 0;
    const port: LedgerPort = {
      begin: (s) => ledger.begin(s),
      putManifests: (objects) => {
        puts++;
        return ledger.putManifests(objects);
      },
      lastRender: (app) => ledger.lastRender(app),
      finish: (id, r) => ledger.finish(id, r),
      inventory: (app) => ledger.inventory(app),
      claimInventory: (app, items) => ledger.claimInventory(app, items),
    };
    const { deps, state } = depsOver(port, [cm("a"), cm("b"), cm("c")]);
    const loop = { app: APP, trigger: "loop" } as const;
    const synced = await reconcile(deps, loop);
    const recorded = ledger.get(synced.entry);
    for (let i = 0; i < 3; i++) expect((await reconcile(deps, loop)).entry).toBe(synced.entry);
    expect(puts).toBe(1);
    expect(ledger.list({ app: "shop" }).map((e) => e.id)).toEqual([synced.entry]);
    const entry = ledger.get(synced.entry);
    expect(entry?.verified).toMatchObject({ count: 3, health: "Current" });
    expect(Date.parse(entry?.verified?.lastAt ?? "")).toBeGreaterThan(
      Date.parse(entry?.verified?.firstAt ?? ""),
    );
    // The entry itself is what the first sync recorded: every object, with digests of stored manifests.
    expect(entry?.objects).toEqual(recorded?.objects as NonNullable<typeof recorded>["objects"]);
    for (const o of entry?.objects ?? []) expect(await ledger.getManifest(o.digest ?? "")).toBeDefined();
    expect(ledger.inventory("shop").map((i) => i.digest)).toEqual(
      (entry?.objects ?? []).map((o) => o.digest ?? ""),
    );
    expect(ledger.verify().ok).toBe(true);

    // A change is a new entry, sealing the verified record into the chain.
    state.desired = [cm("a", "new"), cm("b"), cm("c")];
    state.digest = "sha256:render-2";
    const changed = await reconcile(deps, loop);
    expect(changed.entry).not.toBe(synced.entry);
    expect(puts).toBe(2);
    expect(ledger.get(changed.entry)?.objects.map((o) => o.action)).toEqual([
      "configured",
      "unchanged",
      "unchanged",
    ]);
    expect(ledger.verify().ok).toBe(true);
  });

  test("the real ledger: a repeat whose one object's health changed is a new entry, not a fold", async () => {
    const ledger = await Ledger.open(join(mkdtempSync(join(tmpdir(), "berth-noop-fold-")), "ledger.db"));
    ledgers.push(ledger);
    const objects = [cm("a"), cm("b")];
    const digests = await ledger.putManifests(objects);
    const records = (health: "Current" | "InProgress") =>
      objects.map((o) => {
        const ref = refOf(o);
        return { ref, action: "unchanged" as const, digest: digests.get(objectId(ref)) as string, health };
      });
    const inventory = records("Current").map((r) => ({ ref: r.ref, digest: r.digest }));
    const attempt = (health: "Current" | "InProgress") =>
      ledger.finish(ledger.begin({ app: "shop", revision: snapshot.revision, trigger: "loop" }), {
        outcome: "Succeeded",
        reason: "Succeeded",
        message: "no changes",
        renderedDigest: "sha256:r",
        objects:
          health === "Current"
            ? records("Current")
            : [records("Current")[0], records("InProgress")[1]].flatMap((r) => (r ? [r] : [])),
        health: "Current",
        timings: {},
        inventory,
      });
    const first = attempt("Current");
    expect([attempt("Current"), attempt("Current"), attempt("Current")]).toEqual([first, first, first]);
    const next = attempt("InProgress");
    expect(next).not.toBe(first);
    expect(ledger.get(next)?.objects[1]?.health).toBe("InProgress");
    expect(ledger.get(first)?.verified?.count).toBe(3);
    expect(ledger.verify().ok).toBe(true);
  });
});
