/**
 * Every outcome reason of reconcile(), without a cluster: the real plan, apply, prune, wait and ledger stages
 * behind the engine's ports, with the one fake cluster of the unit tests (test/support/fake-cluster.ts). Each
 * case asserts the reason, that its message names the subject, what the fake cluster holds afterwards, and what
 * the ledger recorded.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../agent/engine/log.ts";
import type { AppSpec, EngineDeps } from "../../agent/engine/ports.ts";
import { type ReconcileResult, reconcile } from "../../agent/engine/reconcile.ts";
import { KubeApiError } from "../../agent/kube/client.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { BerthError } from "../../agent/object/errors.ts";
import type { HealthResult } from "../../agent/object/health.ts";
import type { KubeObject, Reason } from "../../agent/object/object.ts";
import { appSpec, snapshotAt } from "../support/app-spec.ts";
import { FakeCluster, key } from "../support/fake-cluster.ts";
import { configMap } from "../support/ledger-fixtures.ts";

const APP = appSpec("shop", { namespace: "shop", timeout: 300 });
const snapshot = snapshotAt("b".repeat(40));
const cm = (name: string, v = name) => configMap(name, v, "shop");

const ledgers: Ledger[] = [];
afterEach(() => {
  for (const l of ledgers.splice(0)) l.close();
});

async function setup(objects: KubeObject[]) {
  const ledger = await Ledger.open(join(mkdtempSync(join(tmpdir(), "berth-reasons-")), "ledger.db"));
  ledgers.push(ledger);
  const cluster = new FakeCluster();
  const state = {
    desired: objects,
    renderErrors: [] as Array<{ path: string; message: string }>,
    health: (_o: KubeObject): HealthResult => ({
      status: "Current",
      reason: "Current",
      message: "ok",
    }),
    fetchError: undefined as Error | undefined,
  };
  const deps: EngineDeps = {
    source: {
      resolve: async () => {
        if (state.fetchError) throw state.fetchError;
        return "b".repeat(40);
      },
      snapshot: async () => snapshot,
    },
    render: async () => ({
      objects: state.desired.map((object, i) => ({ object, source: `shop/all.yaml#${i}` })),
      skipped: [],
      errors: state.renderErrors,
      digest: "d",
    }),
    cluster,
    ledger,
    health: { assess: (o) => state.health(o) },
    log: silentLogger,
  };
  return { ledger, cluster, deps, state };
}

const sync = (deps: EngineDeps, extra: Partial<Parameters<typeof reconcile>[1]> = {}) =>
  reconcile(deps, { app: APP, trigger: "test", ...extra });

/** The attempt stopped with `reason`, its message says `text`, and no write reached the cluster. */
function stoppedBeforeWriting(h: { cluster: FakeCluster }, r: ReconcileResult, reason: Reason, text: string) {
  expect(r.reason).toBe(reason);
  expect(r.message).toContain(text);
  expect(h.cluster.received).toEqual([]);
}

describe("reconcile() reasons", () => {
  test("Succeeded: every object applied and recorded", async () => {
    const h = await setup([cm("a"), cm("b")]);
    const r = await sync(h.deps);
    expect(r.reason).toBe("Succeeded");
    expect([...h.cluster.live.keys()].sort()).toEqual(["ConfigMap/shop/a", "ConfigMap/shop/b"]);
    expect(h.ledger.get(r.entry)?.outcome).toBe("Succeeded");
  });

  test("FetchFailed: the source's error, nothing written, the entry recorded", async () => {
    const h = await setup([cm("a")]);
    h.state.fetchError = new BerthError(
      "cannot reach https://git.example.test/infra.git: connection refused",
      {
        subject: "source",
      },
    );
    const r = await sync(h.deps);
    stoppedBeforeWriting(h, r, "FetchFailed", "git.example.test");
    expect(h.ledger.get(r.entry)).toMatchObject({ outcome: "Failed", reason: "FetchFailed" });
  });

  test("BuildFailed: a render error names the file; nothing written", async () => {
    const h = await setup([cm("a")]);
    h.state.renderErrors = [
      { path: "shop/bad.yaml", message: "line 3: unknown field Kind (did you mean kind?)" },
    ];
    const r = await sync(h.deps);
    stoppedBeforeWriting(h, r, "BuildFailed", "shop/bad.yaml");
  });

  test("PlanRejected: a deny verdict of the sync rules stops before any write", async () => {
    const h = await setup([cm("a")]);
    h.deps.policy = {
      judge: ({ plan }) => ({
        plan,
        blocked: { message: "rule no-friday denied ConfigMap/shop/a" },
        verdicts: [],
      }),
    };
    const r = await sync(h.deps);
    stoppedBeforeWriting(h, r, "PlanRejected", "ConfigMap/shop/a");
  });

  test("PlanRejected: the prune guard holds an unbound claim's deletion without a policy to approve it", async () => {
    const claim: KubeObject = {
      apiVersion: "v1",
      kind: "PersistentVolumeClaim",
      metadata: { name: "data", namespace: "shop" },
      spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
    };
    const h = await setup([cm("a"), claim]);
    expect((await sync(h.deps)).reason).toBe("Succeeded");
    h.state.desired = [cm("a")];
    const r = await sync(h.deps);
    expect(r.reason).toBe("PlanRejected");
    expect(r.message).toContain("PersistentVolumeClaim/shop/data");
    expect(h.cluster.live.has("PersistentVolumeClaim/shop/data")).toBe(true);
  });

  test("ApplyFailed: a rejected write names the object and its error; it is not in the cluster", async () => {
    const h = await setup([cm("a"), cm("b")]);
    h.cluster.fault = (o) =>
      o.name === "a"
        ? new KubeApiError('configmaps "a" is forbidden: quota exceeded', 403, "Forbidden", undefined)
        : undefined;
    const r = await sync(h.deps);
    expect(r.reason).toBe("ApplyFailed");
    expect(r.message).toContain("ConfigMap/shop/a");
    expect(r.message).toContain("forbidden");
    expect(h.cluster.live.has("ConfigMap/shop/a")).toBe(false);
  });

  test("PruneFailed: a refused deletion names the object; it stays owned for the next sync", async () => {
    const h = await setup([cm("a"), cm("gone")]);
    expect((await sync(h.deps)).reason).toBe("Succeeded");
    h.state.desired = [cm("a")];
    h.cluster.fault = (o) =>
      o.name === "gone"
        ? new KubeApiError('configmaps "gone" is forbidden', 403, "Forbidden", undefined)
        : undefined;
    const r = await sync(h.deps);
    expect(r.reason).toBe("PruneFailed");
    expect(r.message).toContain("ConfigMap/shop/gone");
    expect(h.cluster.live.has("ConfigMap/shop/gone")).toBe(true);
    expect(h.ledger.inventory(APP.name).map((i) => key(i.ref))).toContain("ConfigMap/shop/gone");
    // The API server relents: the next sync prunes it.
    h.cluster.fault = undefined;
    expect((await sync(h.deps)).reason).toBe("Succeeded");
    expect(h.cluster.live.has("ConfigMap/shop/gone")).toBe(false);
  });

  test("HealthCheckFailed: an object that never becomes healthy within the timeout is named", async () => {
    const h = await setup([cm("a"), cm("slow")]);
    h.state.health = (o) =>
      o.metadata.name === "slow"
        ? { status: "InProgress", reason: "Progressing", message: "0 of 1 replicas ready" }
        : { status: "Current", reason: "Current", message: "ok" };
    const r = await sync(h.deps);
    expect(r.reason).toBe("HealthCheckFailed");
    expect(r.message).toContain("ConfigMap/shop/slow");
    expect(h.cluster.live.has("ConfigMap/shop/slow")).toBe(true); // applied, then judged
  });

  test("HealthCheckFailed at once: a Failed object does not wait out the timeout", async () => {
    const h = await setup([cm("a")]);
    h.state.health = () => ({ status: "Failed", reason: "CrashLoopBackOff", message: "CrashLoopBackOff" });
    const r = await sync(h.deps);
    expect(r.reason).toBe("HealthCheckFailed");
    expect(r.message).toContain("CrashLoopBackOff");
  });

  test("Interrupted: a stop during the apply records what landed and nothing after", async () => {
    const h = await setup(Array.from({ length: 40 }, (_, i) => cm(`cm-${i}`)));
    const stop = new AbortController();
    h.cluster.onAck = (n) => {
      if (n === 5) stop.abort();
    };
    const r = await sync(h.deps, { signal: stop.signal });
    expect(r.reason).toBe("Interrupted");
    const entry = h.ledger.get(r.entry);
    const applied = entry?.objects.filter((o) => o.status === "applied").length ?? 0;
    expect(applied).toBe(h.cluster.acked.length);
    expect(h.cluster.live.size).toBeLessThan(40);
  });

  test("Interrupted while rendering: a stop ends the render; nothing written, the entry recorded", async () => {
    const h = await setup([cm("a")]);
    const stop = new AbortController();
    h.deps.render = async () => {
      stop.abort();
      throw new Error("The operation was aborted.");
    };
    const r = await sync(h.deps, { signal: stop.signal });
    expect(r).toMatchObject({ reason: "Interrupted", message: "stopped while rendering" });
    expect(h.cluster.received).toEqual([]);
    expect(h.ledger.get(r.entry)).toMatchObject({ outcome: "Failed", reason: "Interrupted" });
  });

  test("PlanRejected: a plan error names the object and its file; the object is recorded as skipped", async () => {
    const h = await setup([cm("a"), cm("a", "again")]);
    const r = await sync(h.deps);
    stoppedBeforeWriting(h, r, "PlanRejected", "ConfigMap/shop/a (shop/all.yaml#1): duplicate object");
    expect(h.ledger.get(r.entry)?.objects).toMatchObject([
      { action: "skipped", message: expect.stringContaining("duplicate object") },
    ]);
  });

  test("PlanRejected: the API server cannot be asked (discovery fails); nothing written", async () => {
    const h = await setup([cm("a")]);
    h.cluster.discover = async () => {
      throw new BerthError("cannot reach the API server at https://127.0.0.1:6443", {
        subject: "kubernetes",
      });
    };
    const r = await sync(h.deps);
    stoppedBeforeWriting(h, r, "PlanRejected", "cannot reach the API server");
  });

  test("PlanRejected, held: a hold verdict waits for an approval and is recorded with its verdict", async () => {
    const h = await setup([cm("a")]);
    const verdict = {
      rule: "approve-prod",
      at: "rules/prod.yaml:3",
      verdict: "hold",
      message: "needs an approval",
    };
    h.deps.policy = {
      judge: ({ plan }) => ({
        plan,
        blocked: { message: "held by rule approve-prod: ConfigMap/shop/a", verdict: "hold" },
        verdicts: [verdict],
      }),
    };
    const r = await sync(h.deps);
    expect(r).toMatchObject({ reason: "PlanRejected", held: "hold", verdicts: [verdict] });
    expect(r.message).toContain("ConfigMap/shop/a");
    expect(h.cluster.received).toEqual([]);
    expect(h.ledger.get(r.entry)?.verdicts).toEqual([verdict]);
  });

  test("ApplyFailed: a ledger that cannot record the sync stops it before any write", async () => {
    const h = await setup([cm("a")]);
    h.ledger.preflight = () => {
      throw new BerthError("disk full at /var/lib/berth/ledger.db", { subject: "ledger" });
    };
    const r = await sync(h.deps);
    expect(r.reason).toBe("ApplyFailed");
    expect(r.message).toStartWith("nothing applied: ");
    expect(r.message).toContain("disk full");
    expect(h.cluster.received).toEqual([]);
    expect(h.ledger.inventory(APP.name)).toEqual([]);
  });

  test("Interrupted: a stop during the prune leaves what was not deleted owned", async () => {
    const h = await setup(Array.from({ length: 13 }, (_, i) => cm(`cm-${i}`)));
    expect((await sync(h.deps)).reason).toBe("Succeeded");
    h.state.desired = [cm("cm-0")];
    const stop = new AbortController();
    const del = h.cluster.delete.bind(h.cluster);
    h.cluster.delete = async (ref, options) => {
      const gone = await del(ref, options);
      stop.abort();
      return gone;
    };
    const consenting: AppSpec = { ...APP, pruneSafety: { maxFraction: 1 } };
    const r = await reconcile(h.deps, { app: consenting, trigger: "test", signal: stop.signal });
    expect(r.reason).toBe("Interrupted");
    expect(r.message).toStartWith("stopped by the agent; partially applied: ");
    const left = [...h.cluster.live.keys()].filter((k) => k !== "ConfigMap/shop/cm-0");
    expect(left.length).toBeGreaterThan(0);
    expect(
      h.ledger
        .inventory(APP.name)
        .map((i) => key(i.ref))
        .sort(),
    ).toEqual(["ConfigMap/shop/cm-0", ...left].sort());
  });

  test("Interrupted while waiting for health: the stop ends the wait, the applied objects stay owned", async () => {
    const h = await setup([cm("a")]);
    const stop = new AbortController();
    h.state.health = () => {
      stop.abort();
      return { status: "InProgress", reason: "Progressing", message: "0 of 1 replicas ready" };
    };
    const r = await reconcile(h.deps, {
      app: { ...APP, timeout: 60_000 },
      trigger: "test",
      signal: stop.signal,
    });
    expect(r).toMatchObject({ reason: "Interrupted", message: "stopped while waiting for health" });
    expect(h.cluster.live.has("ConfigMap/shop/a")).toBe(true);
    expect(h.ledger.inventory(APP.name).map((i) => key(i.ref))).toEqual(["ConfigMap/shop/a"]);
    expect(h.ledger.get(r.entry)?.objects).toMatchObject([{ status: "applied", health: "InProgress" }]);
  });

  test("Interrupted after a crash: a Running entry left by a killed process is closed at the next start", async () => {
    const h = await setup([cm("a")]);
    const id = h.ledger.begin({ app: APP.name, revision: snapshot.revision, trigger: "test" });
    expect(h.ledger.get(id)?.outcome).toBe("Running");
    expect(h.ledger.markInterrupted()).toBe(1);
    expect(h.ledger.get(id)).toMatchObject({ outcome: "Failed", reason: "Interrupted" });
  });
});
