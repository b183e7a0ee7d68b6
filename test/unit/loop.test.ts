/**
 * SyncLoop and syncPass with fake ports: dependsOn, Git outages, backoff, stopping, concurrency limits,
 * single-flight and recorded triggers. Real reconcile and ledger.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../agent/engine/log.ts";
import { SyncLoop, syncPass } from "../../agent/engine/loop.ts";
import type { AppSpec, EngineDeps, RenderPort } from "../../agent/engine/ports.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import { appSpec, snapshotAt } from "../support/app-spec.ts";

const app = (name: string, dependsOn: string[] = []): AppSpec => appSpec(name, { dependsOn });

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
  /** Holds an app's render until the returned function is called. */
  hold(app: string): () => void;
  /** Keeps an app's object unhealthy (its health wait runs until the app's timeout). */
  setUnhealthy(app: string, unhealthy: boolean): void;
  /** Renders running now, per app, and the most ever running at once (all apps, and per app). */
  active: Map<string, number>;
  maxActive: () => number;
  maxActiveOf: (app: string) => number;
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
  const gates = new Map<string, Promise<void>>();
  const unhealthy = new Set<string>();
  const active = new Map<string, number>();
  let maxActive = 0;
  const maxOf = new Map<string, number>();
  const render: RenderPort = async (_snapshot, { path }) => {
    order.push(path);
    active.set(path, (active.get(path) ?? 0) + 1);
    maxActive = Math.max(
      maxActive,
      [...active.values()].reduce((a, b) => a + b, 0),
    );
    maxOf.set(path, Math.max(maxOf.get(path) ?? 0, active.get(path) ?? 0));
    try {
      await gates.get(path);
    } finally {
      active.set(path, (active.get(path) ?? 1) - 1);
    }
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
    health: {
      assess: (obj) =>
        unhealthy.has(obj.metadata.name)
          ? { status: "InProgress", reason: "Progressing", message: "never ready" }
          : { status: "Current", reason: "Current", message: "ok" },
    },
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
    hold: (a) => {
      let release = () => {};
      gates.set(
        a,
        new Promise<void>((r) => {
          release = () => {
            gates.delete(a);
            r();
          };
        }),
      );
      return release;
    },
    setUnhealthy: (a, u) => {
      if (u) unhealthy.add(a);
      else unhealthy.delete(a);
    },
    active,
    maxActive: () => maxActive,
    maxActiveOf: (a) => maxOf.get(a) ?? 0,
  };
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A loop over the one app `base`, started and past its first sync. */
async function baseSynced(options: ConstructorParameters<typeof SyncLoop>[2]) {
  const h = await harness();
  const loop = new SyncLoop(h.deps, [app("base")], options);
  const running = loop.start();
  await until("first sync", () => loop.status()[0]?.status === "Synced");
  return { h, loop, running };
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

  test("status(name) reads that app's pin alone; status() reads all pins at once, live", async () => {
    const h = await harness();
    const loop = new SyncLoop(h.deps, [app("web"), app("base")], { interval: 60_000 });
    const running = loop.start();
    await until("both synced", () => loop.status().every((s) => s.status === "Synced"));
    const entry = h.ledger.list({ app: "web" })[0];
    if (!entry) throw new Error("web has no entry");
    h.ledger.pin("web", entry.id);
    const asked: string[] = [];
    const pinOf = h.ledger.pinOf.bind(h.ledger);
    h.deps.ledger.pinOf = (name: string) => {
      asked.push(name);
      return pinOf(name);
    };
    const [web, ...rest] = loop.status("web");
    expect(rest).toEqual([]);
    expect(web?.name).toBe("web");
    expect(web?.pinned?.entry).toBe(entry.id);
    expect(asked).toEqual(["web"]);
    expect(loop.status("nope")).toEqual([]);
    // Every app's state: all pins in one read, none per app.
    let allReads = 0;
    const pinsByApp = h.ledger.pinsByApp.bind(h.ledger);
    h.deps.ledger.pinsByApp = () => {
      allReads++;
      return pinsByApp();
    };
    asked.length = 0;
    const all = loop.status();
    expect(allReads).toBe(1);
    expect(asked).toEqual([]);
    expect(all.find((s) => s.name === "web")?.pinned?.entry).toBe(entry.id);
    expect(all.find((s) => s.name === "base")?.pinned).toBeUndefined();
    expect(
      loop
        .status()
        .map((s) => s.name)
        .sort(),
    ).toEqual(["base", "web"]);
    await loop.stop();
    await running;
  });

  test("when Git becomes unreachable the last good commit stays applied and the outage is reported", async () => {
    const { h, loop, running } = await baseSynced({ interval: 30, backoffBase: 10 });
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
    // How it ended, not what it planned: the plan and health of every object stay with the attempt.
    expect(loop.status()[0]?.lastResult?.outcome).toBe("Succeeded");
    expect(Object.keys(loop.status()[0]?.lastResult ?? {})).not.toContain("plan");
    expect(Object.keys(loop.status()[0]?.lastResult ?? {})).not.toContain("health");
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

  test("Git is polled every source interval even when no app is due: commit-only apps get new commits", async () => {
    const h = await harness();
    const loop = new SyncLoop(h.deps, [app("a"), app("b")], {
      interval: 20,
      commitOnly: new Set(["a", "b"]),
    });
    const running = loop.start();
    await until("both synced", () => loop.status().every((s) => s.status === "Synced"));
    const polls = h.resolveCalls();
    await until("more polls with nothing due", () => h.resolveCalls() >= polls + 3);
    h.setSha("d".repeat(40));
    await until("the new commit applied to both", () =>
      loop.status().every((s) => s.lastResult?.revision === `main@sha1:${"d".repeat(40)}`),
    );
    expect(h.order.filter((p) => p === "a")).toHaveLength(2);
    await loop.stop();
    await running;
  });

  test("a source that hangs holds back no app of another source; apps depend across sources", async () => {
    const h = await harness();
    let release = () => {};
    const hanging = new Promise<string>((r) => {
      release = () => r("b".repeat(40));
    });
    const slow = { resolve: () => hanging, snapshot: async (s: string) => snapshotAt(s) };
    const deps: EngineDeps = {
      ...h.deps,
      sources: new Map([
        ["default", h.deps.source],
        ["slow", slow],
      ]),
    };
    const web: AppSpec = { ...app("web", ["base"]), source: "slow" };
    const loop = new SyncLoop(deps, [app("base"), web, app("other")], { interval: 100 });
    const running = loop.start();
    const status = (n: string) => loop.status().find((s) => s.name === n);
    await until(
      "base and other synced",
      () => status("base")?.status === "Synced" && status("other")?.status === "Synced",
    );
    expect(status("web")?.status).toBe("Pending");
    // A new commit of the default source reaches its apps while the other source still hangs.
    h.setSha("c".repeat(40));
    await until(
      "base at the new commit",
      () => status("base")?.lastResult?.revision === `main@sha1:${"c".repeat(40)}`,
    );
    expect(status("web")?.status).toBe("Pending");
    release();
    await until("web synced after base", () => status("web")?.status === "Synced");
    expect(h.ledger.list({ app: "web" })[0]?.source).toBe("slow");
    expect(h.ledger.list({ app: "base" })[0]?.source).toBe("default");
    expect(loop.sourceView("slow")?.seenRevision).toBe(`main@sha1:${"b".repeat(40)}`);
    await loop.stop();
    await running;
  });

  test("stop() ends a sleeping loop promptly", async () => {
    const { loop, running } = await baseSynced({ interval: 3_600_000 });
    const t0 = Date.now();
    await loop.stop();
    await running;
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  test("apps run in parallel up to `concurrency`, never more", async () => {
    const h = await harness();
    const names = ["a", "b", "c", "d", "e"];
    const releases = names.map((n) => h.hold(n));
    const loop = new SyncLoop(
      h.deps,
      names.map((n) => app(n)),
      { interval: 60_000, concurrency: 2 },
    );
    const running = loop.start();
    await until("two renders running", () => h.maxActive() === 2);
    await Bun.sleep(50);
    // The other three wait for a slot, not for each other.
    expect(h.order).toEqual(["a", "b"]);
    for (const r of releases) r();
    await until("every app synced", () => loop.status().every((s) => s.status === "Synced"));
    expect(h.maxActive()).toBe(2);
    await loop.stop();
    await running;
  });

  test("one app's health wait delays no other app: a new commit reaches the others while it waits", async () => {
    const h = await harness();
    h.setUnhealthy("slow", true);
    const slow = { ...app("slow"), timeout: 5_000 };
    const loop = new SyncLoop(h.deps, [slow, app("fast")], { interval: 60_000, backoffBase: 50 });
    const running = loop.start();
    const status = (n: string) => loop.status().find((s) => s.name === n);
    await until("fast synced", () => status("fast")?.status === "Synced");
    expect(status("slow")?.lastResult).toBeUndefined(); // still waiting for health
    h.setSha("b".repeat(40));
    const fastEntry = await loop.triggerAndWait("fast");
    expect(fastEntry).toMatchObject({ started: true, revision: `main@sha1:${"b".repeat(40)}` });
    await until(
      "fast synced at the new commit",
      () => status("fast")?.lastResult?.revision === `main@sha1:${"b".repeat(40)}`,
    );
    expect(status("slow")?.lastResult).toBeUndefined();
    expect(h.ledger.list({ app: "slow" })[0]?.outcome).toBe("Running");
    // stop() waits for the attempt in flight, which records itself as Interrupted.
    await loop.stop();
    await running;
    expect(h.ledger.list({ app: "slow" })[0]).toMatchObject({ outcome: "Failed", reason: "Interrupted" });
    expect(h.ledger.list().every((e) => e.outcome !== "Running")).toBe(true);
  });

  test("single-flight: triggers during an attempt never start a second one; they share one more attempt", async () => {
    const h = await harness();
    const release = h.hold("base");
    const loop = new SyncLoop(h.deps, [app("base")], { interval: 60_000, concurrency: 4 });
    const running = loop.start();
    await until("the first attempt rendering", () => h.order.length === 1);
    const waits = [loop.triggerAndWait("base"), loop.triggerAndWait("base")];
    loop.trigger("base");
    loop.trigger();
    await Bun.sleep(100);
    expect(h.order).toHaveLength(1);
    release();
    const [first, second] = await Promise.all(waits);
    // Both callers are answered by the one attempt after the one in flight.
    expect(first).toEqual(second as NonNullable<typeof second>);
    await until("two attempts recorded", () =>
      h.ledger.list({ app: "base" }).every((e) => e.outcome !== "Running"),
    );
    await Bun.sleep(100);
    expect(h.order).toEqual(["base", "base"]);
    expect(h.maxActiveOf("base")).toBe(1);
    await loop.stop();
    await running;
  });

  test("a dependant never starts while its dependency's attempt runs, and starts as soon as it is healthy", async () => {
    const h = await harness();
    let release = h.hold("base");
    const loop = new SyncLoop(h.deps, [app("web", ["base"]), app("base"), app("other")], {
      interval: 60_000,
    });
    const running = loop.start();
    const status = (n: string) => loop.status().find((s) => s.name === n)?.status;
    await until("other synced", () => status("other") === "Synced");
    expect(h.order).not.toContain("web");
    expect(status("web")).toBe("WaitingOnDependency");
    release();
    await until("web synced", () => status("web") === "Synced");
    expect(h.order.indexOf("web")).toBeGreaterThan(h.order.indexOf("base"));
    // Healthy at this revision, but mid-attempt again: web waits for that attempt too.
    release = h.hold("base");
    loop.trigger("base");
    await until("base resyncing", () => h.order.filter((p) => p === "base").length === 2);
    // A caller asking for web now is answered once base is done, not refused.
    const asked = loop.triggerAndWait("web", "api:ops");
    await Bun.sleep(50);
    expect(h.order.filter((p) => p === "web")).toHaveLength(1);
    release();
    const outcome = await asked;
    expect(outcome.started).toBe(true);
    const base = h.ledger.list({ app: "base" })[0];
    const web = outcome.started ? h.ledger.get(outcome.entry) : undefined;
    expect(Date.parse(web?.startedAt ?? "")).toBeGreaterThanOrEqual(Date.parse(base?.finishedAt ?? ""));
    expect(web?.trigger).toBe("api:ops");
    await loop.stop();
    await running;
  });

  test("the entry records who asked for the attempt; the loop's own attempts say loop", async () => {
    const { h, loop, running } = await baseSynced({ interval: 60_000 });
    const byApi = await loop.triggerAndWait("base", "api:ops");
    const byHook = await loop.triggerAndWait("base", "webhook:gitea");
    await until("all finished", () => h.ledger.list().every((e) => e.outcome !== "Running"));
    const trigger = (o: typeof byApi) => (o.started ? h.ledger.get(o.entry)?.trigger : undefined);
    expect(h.ledger.list({ app: "base" }).at(-1)?.trigger).toBe("loop");
    expect(trigger(byApi)).toBe("api:ops");
    expect(trigger(byHook)).toBe("webhook:gitea");
    await loop.stop();
    await running;
  });

  test("syncPass runs independent apps in parallel, dependants after, skips those whose dependency failed", async () => {
    const h = await harness();
    h.setBroken("broken", true);
    const release = h.hold("a");
    const skipped: string[] = [];
    const pass = syncPass(
      h.deps,
      [app("a"), app("b"), app("c", ["a", "b"]), app("broken"), app("d", ["broken"]), app("e", ["d"])],
      {
        concurrency: 3,
        trigger: "cli",
        snapshot: snapshotAt("a".repeat(40)),
        onSkip: (a, why) => skipped.push(`${a}: ${why}`),
      },
    );
    await until("a, b and broken started together", () => h.maxActive() === 3 || h.order.length >= 3);
    expect(h.order).not.toContain("c");
    release();
    const results = await pass;
    expect(results.map((r) => [r.app, r.outcome])).toEqual([
      ["a", "Succeeded"],
      ["b", "Succeeded"],
      ["c", "Succeeded"],
      ["broken", "Failed"],
    ]);
    expect(skipped).toEqual(["d: its dependency broken did not sync", "e: its dependency d did not sync"]);
    expect(h.order.indexOf("c")).toBeGreaterThan(h.order.indexOf("a"));
    expect(h.ledger.list().every((e) => e.trigger === "cli")).toBe(true);
  });
});
