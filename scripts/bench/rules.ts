/** Evaluations per second of the built-in health pack over 1,000 objects and of sync rules over a 1,000-change plan. */
import { execSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import type { KubeObject } from "../../agent/object/object.ts";
import type { Plan } from "../../agent/plan/plan.ts";
import { evaluateHealthRule, ruleFor } from "../../agent/policy/health-rules.ts";
import { parseRuleFile } from "../../agent/policy/rule-file.ts";
import { builtinRuleFiles } from "../../agent/policy/rule-set.ts";
import { judgePlan } from "../../agent/policy/sync-judge.ts";

const commit = execSync("git rev-parse --short HEAD").toString().trim();
const print = (metric: string, value: number, unit: string) =>
  console.log(
    JSON.stringify({ bench: "rules", metric, value: Math.round(value), unit, runtime: "bun", commit }),
  );

const dir = new URL("../../test/fixtures/health/", import.meta.url);
const samples = readdirSync(dir)
  .filter((f) => f.endsWith(".yaml"))
  .map((f) => parseAllDocuments(readFileSync(new URL(f, dir), "utf8"))[1]?.toJS() as KubeObject);
const objects = Array.from({ length: 1000 }, (_, i) => samples[i % samples.length] as KubeObject);
const rules = builtinRuleFiles().flatMap((f) => f.health);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const health: number[] = [];
for (let run = 0; run < 7; run++) {
  const t0 = performance.now();
  for (const o of objects) {
    const r = ruleFor(rules, o);
    if (r) evaluateHealthRule(r, o);
  }
  health.push(1000 / ((performance.now() - t0) / 1000));
}
print("health_pack_objects_per_s", median(health), "objects/s");

const sync = parseRuleFile(
  `apiVersion: berth.dev/v1alpha1\nkind: Rules\nsync:\n  - name: no-stray-secrets\n    verdict: deny\n    when: change.object.kind == 'Secret' && change.object.metadata.?namespace.orValue('') != 'vault'\n  - name: keep-pvcs\n    verdict: protect\n    when: change.object.kind == 'PersistentVolumeClaim'\n  - name: big-change\n    scope: plan\n    verdict: hold\n    when: plan.counts.byAction.?deleted.orValue(0) > 500\n`,
  "bench.yaml",
).sync;
const plan = {
  app: "bench",
  revision: "r",
  errors: [],
  summary: { created: 1000, configured: 0, unchanged: 0, deleted: 0, skipped: 0 },
  changes: Array.from({ length: 1000 }, (_, i) => ({
    id: `ns_c${i}__ConfigMap`,
    ref: { group: "", version: "v1", kind: "ConfigMap", namespace: "ns", name: `c${i}` },
    subject: `ConfigMap/ns/c${i}`,
    action: "created",
    stage: "rest",
    desired: {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: `c${i}`, namespace: "ns" },
      data: { a: "1" },
    },
    diff: [],
    owned: false,
  })),
} as unknown as Plan;
const syncRuns: number[] = [];
for (let run = 0; run < 7; run++) {
  const t0 = performance.now();
  judgePlan(sync, { app: { name: "bench" }, plan, now: new Date() });
  syncRuns.push(1000 / ((performance.now() - t0) / 1000));
}
print("sync_rules_changes_per_s", median(syncRuns), "changes/s");
print("sync_rules_1000_change_plan_ms", 1_000_000 / median(syncRuns), "ms");
