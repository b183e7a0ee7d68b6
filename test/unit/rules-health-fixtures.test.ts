/**
 * The built-in CEL health packs (rules/health/) against the kstatus fixture table
 * (test/fixtures/health/), next to the hand-written checks of agent/health/.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { assessHealth } from "../../agent/health/assess.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import { evaluateHealthRule, ruleFor } from "../../agent/policy/health-rules.ts";
import { builtinRuleFiles } from "../../agent/policy/rule-set.ts";

const dir = new URL("../fixtures/health/", import.meta.url);
const rules = builtinRuleFiles().flatMap((f) => f.health);

/** Fixtures where CEL cannot say what kstatus says, and why. */
const KNOWN_DIFFERENCES: Record<string, string> = {
  "pod-unschedulable-recent.yaml":
    "kstatus waits 15 s before an unschedulable Pod is Failed; rules have no clock",
  "pod-unknown-phase.yaml": "an unknown Pod phase is Unknown in kstatus; a rule can only say InProgress",
  "namespace-terminating.yaml":
    "phase Terminating without deletionTimestamp: a rule cannot return Terminating",
};

const fixtures = readdirSync(dir)
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .map((file) => {
    const docs = parseAllDocuments(readFileSync(new URL(file, dir), "utf8")) as unknown as Array<{
      toJS(): Record<string, unknown>;
    }>;
    const head = docs[0]?.toJS() as { expected: { status: string }; now?: string };
    return {
      file,
      expected: head.expected.status,
      now: head.now,
      obj: docs[1]?.toJS() as unknown as KubeObject,
    };
  });

describe("built-in CEL health packs", () => {
  test("agree with agent/health on every fixture, except the listed differences", () => {
    const differ: string[] = [];
    for (const f of fixtures) {
      const rule = ruleFor(rules, f.obj);
      expect(rule).toBeDefined();
      if (!rule) continue;
      const cel = evaluateHealthRule(rule, f.obj);
      const ts = assessHealth(f.obj, f.now ? { now: Date.parse(f.now) } : {});
      expect(ts.status).toBe(f.expected as typeof ts.status);
      if (cel.status !== f.expected)
        differ.push(`${f.file}: CEL ${cel.status} (${cel.message}), kstatus ${f.expected}`);
    }
    const unexpected = differ.filter((d) => !KNOWN_DIFFERENCES[d.split(":")[0] ?? ""]);
    expect(unexpected).toEqual([]);
    expect(differ.length).toBe(Object.keys(KNOWN_DIFFERENCES).length);
    expect(fixtures.length).toBeGreaterThan(80);
  });

  test("an evaluation error is Unknown and names the rule and the object", () => {
    const rule = ruleFor(rules, { apiVersion: "apps/v1", kind: "DaemonSet", metadata: { name: "x" } });
    expect(rule?.name).toBe("apps-daemonset");
    if (!rule) return;
    const bad = {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "d", namespace: "n", generation: 1 },
      status: { observedGeneration: 1, desiredNumberScheduled: "three" },
    } as unknown as KubeObject;
    const v = evaluateHealthRule(rule, bad);
    expect(v.status).toBe("Unknown");
    expect(v.message).toContain("apps-daemonset");
    expect(v.message).toContain("DaemonSet/n/d");
  });
});
