/**
 * The ledger records only what the cluster acknowledged: reconcile with a fake cluster port that goes away,
 * rejects, hangs or is told to stop mid-apply (real apply, prune and ledger). Every planned write is recorded
 * as applied, failed (with its error) or not attempted; later stages never run after a failure.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { APPLY_CONCURRENCY } from "../../agent/apply/apply.ts";
import { silentLogger } from "../../agent/engine/log.ts";
import type { AppSpec, EngineDeps } from "../../agent/engine/ports.ts";
import { reconcile } from "../../agent/engine/reconcile.ts";
import { KubeApiError } from "../../agent/kube/client.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { BerthError } from "../../agent/object/errors.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import type { ObjectRecord } from "../../agent/object/records.ts";
import type { Snapshot } from "../../agent/object/snapshot.ts";
import { appSpec, snapshotAt } from "../support/app-spec.ts";
import { FakeCluster, key } from "../support/fake-cluster.ts";

const APP: AppSpec = appSpec("big", { namespace: "big" });

const snapshot: Snapshot = snapshotAt("a".repeat(40));

const configMap = (name: string): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "big" },
  data: { v: name },
});
const namespace = (name: string): KubeObject => ({ apiVersion: "v1", kind: "Namespace", metadata: { name } });

/** The API server went away: what a refused or reset connection looks like from the kube client. */
const unreachable = () =>
  new BerthError("cannot reach the API server at https://127.0.0.1:6443: Unable to connect", {
    subject: "kubernetes",
  });

const ledgers: Ledger[] = [];
afterEach(() => {
  for (const l of ledgers.splice(0)) l.close();
});

async function setup(objects: KubeObject[]) {
  const ledger = await Ledger.open(join(mkdtempSync(join(tmpdir(), "berth-apply-")), "ledger.db"));
  ledgers.push(ledger);
  const cluster = new FakeCluster();
  let desired = objects;
  const deps: EngineDeps = {
    source: { resolve: async () => "a".repeat(40), snapshot: async () => snapshot },
    render: async () => ({
      objects: desired.map((object, i) => ({ object, source: `big/all.yaml#${i}` })),
      skipped: [],
      errors: [],
      digest: "d",
    }),
    cluster,
    ledger,
    health: { assess: () => ({ status: "Current", reason: "Current", message: "ok" }) },
    log: silentLogger,
  };
  return {
    ledger,
    cluster,
    deps,
    setDesired: (o: KubeObject[]) => {
      desired = o;
    },
  };
}

const many = (n: number) =>
  Array.from({ length: n }, (_, i) => configMap(`cm-${String(i).padStart(3, "0")}`));
const byStatus = (objects: ObjectRecord[], status: string) =>
  objects.filter((o) => o.status === status).map((o) => key(o.ref));

describe("the ledger records what the API server acknowledged", () => {
  test("API server gone after 40 of 600 writes: exactly those 40 are applied, the rest failed or not attempted", async () => {
    const h = await setup(many(600));
    h.cluster.fault = () => (h.cluster.acked.length >= 40 ? unreachable() : undefined);
    const result = await reconcile(h.deps, { app: APP, trigger: "test" });
    expect(result.reason).toBe("ApplyFailed");
    expect(h.cluster.acked).toHaveLength(40);

    const entry = h.ledger.get(result.entry);
    if (!entry) throw new Error("no entry");
    expect(entry.objects).toHaveLength(600);
    expect(byStatus(entry.objects, "applied").sort()).toEqual([...h.cluster.acked].sort());
    const failed = entry.objects.filter((o) => o.status === "failed");
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.length).toBeLessThanOrEqual(APPLY_CONCURRENCY); // only writes already in flight; then nothing more is sent
    for (const f of failed) expect(f.message).toContain("cannot reach the API server");
    expect(byStatus(entry.objects, "not-attempted")).toHaveLength(600 - 40 - failed.length);
    expect(entry.objects.every((o) => o.status !== undefined)).toBe(true);
    expect(entry.message).toStartWith(
      `partially applied: 40 of 600 (${failed.length} failed, ${560 - failed.length} not attempted): ConfigMap/big/`,
    );
    expect(h.ledger.verify().ok).toBe(true);

    // The inventory holds what was acknowledged, plus writes that got no answer (they may have landed);
    // claims of writes never sent are dropped.
    const inventory = h.ledger.inventory(APP.name).map((i) => key(i.ref));
    expect(inventory.sort()).toEqual([...h.cluster.acked, ...failed.map((f) => key(f.ref))].sort());

    // The API server is back: the next sync completes.
    h.cluster.fault = undefined;
    const next = await reconcile(h.deps, { app: APP, trigger: "test" });
    expect(next.reason).toBe("Succeeded");
    expect(h.cluster.live.size).toBe(600);
    const after = h.ledger.get(next.entry)?.objects ?? [];
    expect(byStatus(after, "applied")).toHaveLength(560); // the 40 acknowledged before are unchanged now
    expect(after.filter((o) => o.action === "unchanged" && o.status === undefined)).toHaveLength(40);
    expect(h.ledger.inventory(APP.name)).toHaveLength(600);
  });

  test("a rejected write stops the apply: later stages and the prune never run, and are recorded as not attempted", async () => {
    const h = await setup([namespace("big"), namespace("other"), ...many(20)]);
    // First sync owns an extra ConfigMap that will leave Git.
    h.setDesired([namespace("big"), configMap("old")]);
    expect((await reconcile(h.deps, { app: APP, trigger: "test" })).reason).toBe("Succeeded");
    h.cluster.acked.length = 0;

    h.setDesired([namespace("big"), namespace("other"), ...many(20)]);
    h.cluster.fault = (o) =>
      o.kind === "Namespace" && o.name === "other"
        ? new KubeApiError('namespaces "other" is forbidden: quota', 403, "Forbidden", undefined)
        : undefined;
    const result = await reconcile(h.deps, { app: APP, trigger: "test" });
    expect(result.reason).toBe("ApplyFailed");
    // Namespace/big is unchanged (same manifest), so the only write of the definitions stage failed.
    expect(h.cluster.acked).toEqual([]);
    const entry = h.ledger.get(result.entry);
    if (!entry) throw new Error("no entry");
    const of = (k: string) => entry.objects.find((o) => key(o.ref) === k);
    expect(of("Namespace//other")).toMatchObject({
      status: "failed",
      message: expect.stringContaining("forbidden"),
    });
    expect(of("Namespace//big")?.status).toBeUndefined(); // unchanged: no write planned
    expect(byStatus(entry.objects, "not-attempted")).toHaveLength(21); // 20 ConfigMaps + the prune of "old"
    expect(of("ConfigMap/big/old")).toMatchObject({ action: "deleted", status: "not-attempted" });
    expect(entry.message).toBe(
      'nothing applied: 0 of 22 (1 failed, 21 not attempted): Namespace/other: namespaces "other" is forbidden: quota',
    );
    // An answered rejection did not land: only what was owned stays in the inventory.
    expect(
      h.ledger
        .inventory(APP.name)
        .map((i) => key(i.ref))
        .sort(),
    ).toEqual(["ConfigMap/big/old", "Namespace//big"]);
    expect(h.cluster.live.has("ConfigMap/big/old")).toBe(true);
  });

  test("stopping mid-apply (SIGTERM) sends nothing more; writes in flight finish and are recorded", async () => {
    const h = await setup(many(600));
    const stop = new AbortController();
    h.cluster.onAck = (n) => {
      if (n === 40) stop.abort();
    };
    const result = await reconcile(h.deps, { app: APP, trigger: "test", signal: stop.signal });
    expect(result.reason).toBe("Interrupted");
    const acked = h.cluster.acked.length;
    expect(acked).toBeGreaterThanOrEqual(40);
    expect(acked).toBeLessThan(40 + APPLY_CONCURRENCY);
    const entry = h.ledger.get(result.entry);
    if (!entry) throw new Error("no entry");
    expect(byStatus(entry.objects, "applied").sort()).toEqual([...h.cluster.acked].sort());
    expect(byStatus(entry.objects, "failed")).toEqual([]);
    expect(byStatus(entry.objects, "not-attempted")).toHaveLength(600 - acked);
    expect(entry.message).toBe(
      `stopped by the agent; partially applied: ${acked} of 600 (${600 - acked} not attempted)`,
    );
    expect(h.ledger.inventory(APP.name)).toHaveLength(acked);
  });

  test("a prune cut off by a failed deletion keeps every object not acknowledged as deleted", async () => {
    const h = await setup([]);
    const olds = [namespace("gone-ns"), configMap("gone-a"), configMap("gone-b")];
    h.setDesired([configMap("keep"), ...olds]);
    expect((await reconcile(h.deps, { app: APP, trigger: "test" })).reason).toBe("Succeeded");

    h.setDesired([configMap("keep")]);
    h.cluster.fault = (o) => (o.name === "gone-a" ? unreachable() : undefined);
    // Consent to the prune guards (a Namespace, 3 of 4 objects): this test is about what happens past them.
    const consenting: AppSpec = { ...APP, pruneSafety: { cascade: "allow", maxFraction: 1 } };
    const result = await reconcile(h.deps, { app: consenting, trigger: "test" });
    expect(result.reason).toBe("PruneFailed");
    const entry = h.ledger.get(result.entry);
    if (!entry) throw new Error("no entry");
    const status = Object.fromEntries(entry.objects.map((o) => [key(o.ref), o.status ?? "-"]));
    // ConfigMaps are deleted before Namespaces: once one fails, the Namespace is not attempted.
    expect(status["ConfigMap/big/gone-a"]).toBe("failed");
    expect(status["Namespace//gone-ns"]).toBe("not-attempted");
    expect(status["ConfigMap/big/keep"]).toBe("-");
    expect(h.cluster.live.has("Namespace//gone-ns")).toBe(true);
    const inventory = h.ledger.inventory(APP.name).map((i) => key(i.ref));
    expect(inventory).toContain("Namespace//gone-ns");
    expect(inventory).toContain("ConfigMap/big/gone-a");
    expect(inventory.includes("ConfigMap/big/gone-b")).toBe(status["ConfigMap/big/gone-b"] !== "applied");
    expect(entry.message).toMatch(
      /^partially applied: \d of \d \(1 failed(, 1 not attempted)?\): ConfigMap\/big\/gone-a:/,
    );
  });
});
