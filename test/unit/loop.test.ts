/** SyncLoop with fake ports: dependsOn, Git outages, backoff and stopping. Real reconcile and ledger. */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../agent/engine/log.ts";
import { SyncLoop } from "../../agent/engine/loop.ts";
import type { AppSpec, EngineDeps, RenderPort } from "../../agent/engine/ports.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import type { Snapshot } from "../../agent/object/snapshot.ts";

const app = (name: string, dependsOn: string[] = []): AppSpec => ({
  name,
  path: name,
  prune: true,
  allowEmpty: false,
  force: false,
  timeout: 1000,
  dependsOn,
  suspend: false,
});

const snapshotAt = (sha: string): Snapshot => ({
  revision: `main@sha1:${sha}`,
  commit: { sha, author: "T <t@example.test>", message: "m", time: "2026-11-01T00:00:00Z" },
  readDir: async () => [],
  readBlob: async () => new Uint8Array(),
  stat: async () => undefined,
});

const configMap = (name: string): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "default" },
  data: { a: "b" },
});

interface Harness {
  deps: EngineDeps;
  ledger: Ledger;
  order: string[];
  setSha(sha: string): void;
  setGitDown(down: boolean): void;
  setBroken(app: string, broken: boolean): void;
  resolveCalls: () => number;
}

const ledgers: Ledger[] = [];
afterEach(() => {
  for (const l of ledgers.splice(0)) l.close();
});

async function harness(): Promise<Harness> {
  const ledger = await Ledger.open(join(mkdtempSync(join(tmpdir(), "berth-loop-")), "ledger.db"));
  ledgers.push(ledger);
  let sha = "a".repeat(40);
  let gitDown = false;
  let resolves = 0;
  const broken = new Set<string>();
  const order: string[] = [];
  const live = new Map<string, KubeObject>();
  const render: RenderPort = async (_snapshot, { path }) => {
    order.push(path);
    if (broken.has(path)) {
      return {
        objects: [],
        skipped: [],
        errors: [{ path: `${path}/x.yaml`, message: "broken" }],
        digest: "",
      };
    }
    return {
      objects: [{ object: configMap(path), source: `${path}/cm.yaml#0` }],
      skipped: [],
      errors: [],
      digest: "d",
    };
  };
  const deps: EngineDeps = {
    source: {
      resolve: async () => {
        resolves++;
        if (gitDown) throw new Error("git http://x: cannot reach x: connection refused");
        return sha;
      },
      snapshot: async (s) => snapshotAt(s),
    },
    render,
    cluster: {
      discover: async () => {},
      resource: () => ({ namespaced: true }),
      get: async (ref) => live.get(`${ref.namespace}/${ref.name}`),
      apply: async (obj, options) => {
        if (!options.dryRun) live.set(`${obj.metadata.namespace}/${obj.metadata.name}`, obj);
        return obj;
      },
      delete: async (ref) => live.delete(`${ref.namespace}/${ref.name}`),
    },
    ledger,
    health: { assess: () => ({ status: "Current", message: "ok" }) },
    log: silentLogger,
  };
  return {
    deps,
    ledger,
    order,
    setSha: (s) => {
      sha = s;
    },
    setGitDown: (d) => {
      gitDown = d;
    },
    setBroken: (a, b) => {
      if (b) broken.add(a);
      else broken.delete(a);
    },
    resolveCalls: () => resolves,
  };
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("SyncLoop", () => {
  test("a dependant waits until its dependency is healthy at the current revision", async () => {
    const h = await harness();
    h.setBroken("base", true);
    const loop = new SyncLoop(h.deps, [app("web", ["base"]), app("base")], {
      interval: 60_000,
      backoffBase: 50,
    });
    const running = loop.start();
    await until("base to fail", () => loop.status().find((s) => s.name === "base")?.status === "Failed");
    expect(loop.status().find((s) => s.name === "web")?.status).toBe("WaitingOnDependency");
    expect(h.order).not.toContain("web");
    h.setBroken("base", false);
    loop.trigger();
    await until("both synced", () => loop.status().every((s) => s.status === "Synced"));
    // base is always attempted before web within a pass.
    expect(h.order.indexOf("web")).toBeGreaterThan(h.order.lastIndexOf("base"));
    expect(h.ledger.list({ app: "web" })).toHaveLength(1);
    await loop.stop();
    await running;
  });

  test("when Git becomes unreachable the last good commit stays applied and the outage is reported", async () => {
    const h = await harness();
    const loop = new SyncLoop(h.deps, [app("base")], { interval: 30, backoffBase: 10 });
    const running = loop.start();
    await until("first sync", () => loop.status()[0]?.status === "Synced");
    h.setGitDown(true);
    const before = h.resolveCalls();
    await until("the outage noticed", () => loop.gitUnreachableSince !== undefined);
    expect(Number.isNaN(Date.parse(loop.gitUnreachableSince ?? ""))).toBe(false);
    expect(loop.gitError).toContain("cannot reach");
    await until("more polls", () => h.resolveCalls() > before + 2);
    // Resyncs go on against the last snapshot; no FetchFailed entries pile up.
    expect(loop.status()[0]?.status).toBe("Synced");
    expect(h.ledger.list({ app: "base" }).every((e) => e.reason !== "FetchFailed")).toBe(true);
    expect(h.ledger.list({ app: "base" })[0]?.revision).toBe(`main@sha1:${"a".repeat(40)}`);
    h.setGitDown(false);
    h.setSha("b".repeat(40));
    await until(
      "the new commit applied",
      () => loop.status()[0]?.lastResult?.revision === `main@sha1:${"b".repeat(40)}`,
    );
    expect(loop.gitUnreachableSince).toBeUndefined();
    await loop.stop();
    await running;
  });

  test("failures back off exponentially, capped at the interval", async () => {
    const h = await harness();
    h.setBroken("base", true);
    const loop = new SyncLoop(h.deps, [app("base")], { interval: 400, backoffBase: 20 });
    const running = loop.start();
    await until("three failures", () => (loop.status()[0]?.failures ?? 0) >= 3);
    const s = loop.status()[0];
    const gap = Date.parse(s?.nextAttemptAt ?? "") - Date.parse(s?.lastAttemptAt ?? "");
    expect(gap).toBeGreaterThan(20);
    expect(gap).toBeLessThanOrEqual(400 * 1.2 + 50);
    await loop.stop();
    await running;
  });

  test("a commit-only app is not re-applied on the interval, only on a new commit", async () => {
    const h = await harness();
    const loop = new SyncLoop(h.deps, [app("base"), app("alerting")], {
      interval: 20,
      commitOnly: new Set(["alerting"]),
    });
    const running = loop.start();
    await until("several resyncs of base", () => h.order.filter((p) => p === "base").length >= 4);
    expect(h.order.filter((p) => p === "alerting")).toHaveLength(1);
    expect(loop.status().find((s) => s.name === "alerting")?.nextAttemptAt).toBeUndefined();
    h.setSha("c".repeat(40));
    await until("the new commit applied", () => h.order.filter((p) => p === "alerting").length === 2);
    await loop.stop();
    await running;
  });

  test("stop() ends a sleeping loop promptly", async () => {
    const h = await harness();
    const loop = new SyncLoop(h.deps, [app("base")], { interval: 3_600_000 });
    const running = loop.start();
    await until("first sync", () => loop.status()[0]?.status === "Synced");
    const t0 = Date.now();
    await loop.stop();
    await running;
    expect(Date.now() - t0).toBeLessThan(1000);
  });
});
