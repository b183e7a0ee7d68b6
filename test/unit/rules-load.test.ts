/** Rule files: compile at load, errors naming file:line, rule and column; reload keeps the last good set; CEL and json-logic agree. */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Plan } from "../../agent/plan/plan.ts";
import { parseRuleFile } from "../../agent/policy/rule-file.ts";
import { RuleSet, ruleFilePaths } from "../../agent/policy/rule-set.ts";
import { judgePlan } from "../../agent/policy/sync-judge.ts";

const head = "apiVersion: berth.dev/v1alpha1\nkind: Rules\n";

describe("rule files", () => {
  test("a type error names the file, the line, the rule, the field and the column", () => {
    const text = `${head}sync:\n  - name: bad-one\n    verdict: deny\n    when: size(change) + "x" == "y"\n`;
    expect(() => parseRuleFile(text, "rules/x.yaml")).toThrow(
      /^rules\/x\.yaml:6: rule bad-one, field when, column \d+: type error/,
    );
  });

  test("a parse error and a schema error are load errors with their line", () => {
    expect(() => parseRuleFile(`${head}health:\n  - apiVersion: v1\n    current: "1 +"\n`, "h.yaml")).toThrow(
      /^h\.yaml:5: rule core-any, field current.*parse error/,
    );
    expect(() =>
      parseRuleFile(`${head}sync:\n  - name: x\n    verdict: explode\n    when: "true"\n`, "s.yaml"),
    ).toThrow(
      /^s\.yaml:5:14: sync\[0\]\.verdict: expected one of "deny", "skip", "protect", "hold", "defer", got "explode"$/,
    );
    expect(() =>
      parseRuleFile(`${head}health:\n  - apiVersion: v1\n    current: status.replicas\n`, "t.yaml"),
    ).not.toThrow();
    expect(() =>
      parseRuleFile(`${head}health:\n  - apiVersion: v1\n    current: "1 + 2"\n`, "t.yaml"),
    ).toThrow(/expected bool/);
  });

  test("schema and YAML errors name file:line:col, the field and what was expected", () => {
    // The whole message, not a part: nothing but the place, the field and the wording.
    const load = (text: string) => () => parseRuleFile(text, "rules/s.yaml");
    const exactly = (message: string) => new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
    expect(load(`${head}sync:\n  - name: x\n    verdict: deny\n    when: "true"\n    scpoe: plan\n`)).toThrow(
      exactly(
        "rules/s.yaml:7:5: sync[0].scpoe: unknown field (allowed here: name, description, apps, scope, when, whenLogic, verdict, message, expires)",
      ),
    );
    expect(load(`${head}health: {apiVersion: v1}\n`)).toThrow(
      exactly("rules/s.yaml:3:9: health: expected a list, got a mapping"),
    );
    expect(
      load(`${head}sync:\n  - name: x\n    verdict: hold\n    when: "true"\n    expires: soon\n`),
    ).toThrow(
      exactly('rules/s.yaml:7:14: sync[0].expires: expected a duration like "30m" (ms, s, m, h), got "soon"'),
    );
    expect(load(`${head}health:\n  - [\n`)).toThrow(/^rules\/s\.yaml:5:1: invalid YAML: /);
    expect(load("- 1\n")).toThrow(exactly("rules/s.yaml:1:1: expected a mapping, got a list"));
  });

  test("100k nested parentheses are rejected at load", () => {
    const deep = `${"(".repeat(100_000)}true${")".repeat(100_000)}`;
    expect(() =>
      parseRuleFile(`${head}health:\n  - apiVersion: v1\n    current: "${deep}"\n`, "d.yaml"),
    ).toThrow(/d\.yaml/);
    const nested = `${"(".repeat(500)}true${")".repeat(500)}`;
    expect(() =>
      parseRuleFile(`${head}health:\n  - apiVersion: v1\n    current: "${nested}"\n`, "d.yaml"),
    ).toThrow(/d\.yaml:5/);
  });

  test("reload keeps the previous good set when a file turns bad", () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-rules-"));
    const file = join(dir, "r.yaml");
    writeFileSync(file, `${head}sync:\n  - name: one\n    verdict: deny\n    when: "false"\n`);
    const set = RuleSet.load([file]);
    expect(set.sync.map((r) => r.name)).toEqual(["one"]);
    expect(set.health.length).toBeGreaterThan(10);
    writeFileSync(file, `${head}sync:\n  - name: two\n    verdict: deny\n    when: "nope("\n`);
    const r = set.reload();
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toContain(`${file}:6: rule two`);
    expect(set.sync.map((x) => x.name)).toEqual(["one"]);
  });
});

describe("CEL and json-logic sync rules agree on one table", () => {
  const plan = (kind: string, ns: string, action: "created" | "deleted"): Plan =>
    ({
      app: "a",
      revision: "r",
      errors: [],
      summary: { created: 1, configured: 0, unchanged: 0, deleted: 0, skipped: 0 },
      changes: [
        {
          id: "x",
          ref: { group: "", version: "v1", kind, namespace: ns, name: "n" },
          subject: `${kind}/${ns}/n`,
          action,
          stage: "rest",
          desired: { apiVersion: "v1", kind, metadata: { name: "n", namespace: ns } },
          diff: [],
          owned: false,
        },
      ],
    }) as unknown as Plan;
  const cel = parseRuleFile(
    `${head}sync:\n  - name: r\n    verdict: deny\n    when: change.object.kind == 'Secret' && change.object.metadata.namespace != 'vault' && change.action == 'created'\n`,
    "cel.yaml",
  ).sync;
  const logic = parseRuleFile(
    `${head}sync:\n  - name: r\n    verdict: deny\n    whenLogic: {and: [{"==": [{var: change.object.kind}, Secret]}, {"!=": [{var: change.object.metadata.namespace}, vault]}, {"==": [{var: change.action}, created]}]}\n`,
    "logic.yaml",
  ).sync;
  const table: Array<[string, string, "created" | "deleted", boolean]> = [
    ["Secret", "web", "created", true],
    ["Secret", "vault", "created", false],
    ["ConfigMap", "web", "created", false],
    ["Secret", "web", "deleted", false],
  ];
  for (const [kind, ns, action, denied] of table) {
    test(`${action} ${kind} in ${ns} → ${denied ? "denied" : "allowed"}`, () => {
      for (const rules of [cel, logic]) {
        const j = judgePlan(rules, { app: { name: "a" }, plan: plan(kind, ns, action), now: new Date() });
        expect(j.blocked?.verdict === "deny").toBe(denied);
      }
    });
  }

  test("a rule that fails to evaluate blocks the sync, naming the rule", () => {
    const bad = parseRuleFile(
      `${head}sync:\n  - name: oops\n    verdict: deny\n    when: change.object.spec.replicas > 1\n`,
      "b.yaml",
    ).sync;
    const j = judgePlan(bad, { app: { name: "a" }, plan: plan("Secret", "web", "created"), now: new Date() });
    expect(j.blocked?.verdict).toBe("error");
    expect(j.blocked?.message).toContain("rule oops at b.yaml:4 failed on Secret/web/n");
  });
});

describe("rule directories", () => {
  const rule = (name: string) => `${head}sync:\n  - name: ${name}\n    verdict: deny\n    when: "false"\n`;

  test("a directory expands to its *.yaml/*.yml files in name order; files pass through as given", () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-ruledir-"));
    mkdirSync(join(dir, "nested"));
    mkdirSync(join(dir, "dir.yaml"));
    for (const f of ["b.yml", "a.yaml", "c.YAML", ".hidden.yaml", "x.test.yaml", "y.test.yml", "notes.txt"])
      writeFileSync(join(dir, f), rule("r"));
    writeFileSync(join(dir, "nested", "deep.yaml"), rule("deep"));
    symlinkSync(join(dir, "a.yaml"), join(dir, "link.yaml"));
    expect(ruleFilePaths([dir, "/elsewhere/one.yaml"])).toEqual([
      join(dir, "a.yaml"),
      join(dir, "b.yml"),
      join(dir, "link.yaml"),
      "/elsewhere/one.yaml",
    ]);
  });

  test("RuleSet.load reads a directory and a file; a bad file in the directory names itself", () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-ruledir-"));
    writeFileSync(join(dir, "1.yaml"), rule("one"));
    writeFileSync(join(dir, "2.yml"), rule("two"));
    const single = join(mkdtempSync(join(tmpdir(), "berth-rulefile-")), "three.yaml");
    writeFileSync(single, rule("three"));
    const set = RuleSet.load([dir, single], { builtins: false });
    expect(set.sync.map((r) => r.name)).toEqual(["one", "two", "three"]);
    writeFileSync(join(dir, "3.yaml"), `${head}sync:\n  - name: bad\n    verdict: deny\n    when: "1 +"\n`);
    expect(() => RuleSet.load([dir], { builtins: false })).toThrow(`${join(dir, "3.yaml")}:6: rule bad`);
  });

  test("an empty directory loads no rules; a missing one is a read error naming it", () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-ruledir-"));
    expect(RuleSet.load([dir], { builtins: false }).sync).toEqual([]);
    expect(() => RuleSet.load([join(dir, "gone")], { builtins: false })).toThrow(
      /cannot read the rule file: ENOENT/,
    );
  });
});
