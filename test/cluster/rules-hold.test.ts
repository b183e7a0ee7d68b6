/**
 * hold and defer against the real control plane and Git server: a hold verdict keeps the run loop retrying
 * (nothing applied, PlanRejected "held for approval…") until an approval of that revision lands, then the
 * next attempt applies; a sync-window rule defers a sync under an injected clock until the window opens,
 * and an emergency override is recorded with the entry.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Wired } from "../../agent/cli/wire.ts";
import { SyncLoop } from "../../agent/engine/loop.ts";
import { RulePolicy } from "../../agent/policy/policy.ts";
import { RuleSet } from "../../agent/policy/rule-set.ts";
import { syncApp } from "../support/berth.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { GATE_RULE, syncRules } from "../support/manifests.ts";

const t = useClusterTest({ prefix: "rules-hold" });
const ns = t.ns;
let w: Wired;
let clock = new Date("2025-03-04T12:00:00Z");

const RULES = syncRules(
  GATE_RULE,
  `  - name: no-night-syncs
    scope: plan
    when: now.getHours('UTC') < 9
    verdict: defer
    message: syncs run from 09:00 UTC
`,
);

const cm = (name: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata: {a: "1"}\n---\n`;

beforeAll(async () => {
  t.commit(
    {
      "app/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n`,
      "app/cm.yaml": cm("plain"),
    },
    "base",
  );
  const rulesFile = join(mkdtempSync(join(tmpdir(), "berth-rules-")), "rules.yaml");
  writeFileSync(rulesFile, RULES);
  w = await t.wire(
    t.writeConfig([{ name: "app", path: "app", namespace: ns, timeout: "30s" }], {
      source: "ref: main, interval: 5s",
      before: `rules: ["${rulesFile}"]\n`,
    }),
  );
  // The injected clock: the same policy wire() builds, reading `clock` instead of the wall clock.
  w.deps.policy = new RulePolicy(
    RuleSet.load(w.config.rules),
    () => clock,
    (app, rev) => w.ledger.approvalFor(app, rev),
  );
}, 600_000);

const exists = (name: string) => {
  try {
    t.kubectl("get", "configmap", name, "-n", ns);
    return true;
  } catch {
    return false;
  }
};

async function until<T>(what: string, fn: () => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("hold and sync windows against the real control plane", () => {
  test("the first sync passes the rules", async () => {
    expect(await syncApp(w, "app")).toMatchObject({ outcome: "Succeeded" });
  });

  test("a hold keeps the loop retrying, nothing applied, until the revision is approved; then it applies", async () => {
    t.commit({ "app/cm.yaml": cm("plain") + cm("gated-one") }, "add a gated map");
    const loop = new SyncLoop(w.deps, w.config.apps, { interval: 60_000, backoffBase: 200 });
    const running = loop.start();
    try {
      // Two held attempts: the loop retries a held app rather than giving up.
      const held = await until("two held attempts", () => {
        const e = w.ledger.list({ app: "app", limit: 5 }).filter((x) => x.reason === "PlanRejected");
        return e.length >= 2 ? e : undefined;
      });
      const first = held[0];
      expect(first?.message).toContain("held for approval by rule gate-the-gated at ");
      expect(first?.message).toContain("rules.yaml:4");
      expect(first?.message).toContain(`ConfigMap/${ns}/gated-one`);
      expect(w.ledger.get(first?.id ?? 0)?.verdicts).toEqual([
        expect.objectContaining({
          rule: "gate-the-gated",
          verdict: "hold",
          subject: `ConfigMap/${ns}/gated-one`,
        }),
      ]);
      expect(exists("gated-one")).toBe(false);

      w.ledger.approve("app", first?.revision ?? "", "alice", new Date(Date.now() + 600_000));
      loop.trigger("app");
      const ok = await until("a successful attempt after the approval", () =>
        w.ledger.list({ app: "app", limit: 1 }).find((e) => e.outcome === "Succeeded"),
      );
      expect(exists("gated-one")).toBe(true);
      expect(w.ledger.get(ok.id)?.verdicts).toEqual([
        expect.objectContaining({ rule: "gate-the-gated", verdict: "hold", approvedBy: "alice" }),
      ]);
      expect(w.ledger.verify().ok).toBe(true);
    } finally {
      await loop.stop();
      await running;
    }
  }, 90_000);

  test("a window rule defers the sync at night (injected clock) and it runs when the window opens", async () => {
    clock = new Date("2025-03-05T03:00:00Z");
    t.git.commit(
      "infra",
      { "app/cm.yaml": `${cm("plain")}${cm("gated-one")}${cm("later")}` },
      { message: "later" },
    );
    const deferred = await syncApp(w, "app");
    expect(deferred).toMatchObject({ outcome: "Failed", reason: "PlanRejected" });
    expect(deferred.message).toContain("deferred by rule no-night-syncs");
    expect(deferred.message).toContain("--override-window");
    expect(exists("later")).toBe(false);
    // A plain approval does not open the window.
    w.ledger.approve("app", deferred.revision, "bob", new Date(Date.now() + 600_000));
    expect(await syncApp(w, "app")).toMatchObject({ outcome: "Failed", reason: "PlanRejected" });
    expect(exists("later")).toBe(false);

    clock = new Date("2025-03-05T09:00:00Z");
    expect(await syncApp(w, "app")).toMatchObject({ outcome: "Succeeded" });
    expect(exists("later")).toBe(true);
  }, 60_000);

  test("an emergency override syncs outside the window and is recorded with the entry", async () => {
    clock = new Date("2025-03-06T02:00:00Z");
    t.git.commit(
      "infra",
      { "app/cm.yaml": `${cm("plain")}${cm("gated-one")}${cm("later")}${cm("urgent")}` },
      { message: "urgent fix" },
    );
    const deferred = await syncApp(w, "app");
    expect(deferred.reason).toBe("PlanRejected");
    w.ledger.approve("app", deferred.revision, "oncall", new Date(Date.now() + 600_000), {
      overrideWindow: true,
    });
    const r = await syncApp(w, "app");
    expect(r).toMatchObject({ outcome: "Succeeded" });
    expect(exists("urgent")).toBe(true);
    const v = w.ledger.get(r.entry)?.verdicts ?? [];
    expect(v).toEqual([
      expect.objectContaining({ rule: "no-night-syncs", verdict: "defer", approvedBy: "oncall" }),
    ]);
    expect(v[0]?.message).toContain("window overridden by oncall");
  }, 60_000);
});
