/**
 * Rules that make huge values or scan with a slow pattern end fast, with an error naming the rule and the limit:
 * builtins pay for what they produce (replace and join before they run), regexes run on RE2 in linear time.
 * The process's memory stays small throughout.
 */
import { describe, expect, test } from "bun:test";
import { DEFAULT_BUDGET } from "../../agent/cel/cel.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import { evaluateHealthRule } from "../../agent/policy/health-rules.ts";
import { parseRuleFile } from "../../agent/policy/rule-file.ts";

const head = "apiVersion: berth.dev/v1alpha1\nkind: Rules\n";
const CUTOFF_MS = 200;

function rule(expr: string) {
  const file = parseRuleFile(
    `${head}health:\n  - apiVersion: example.dev/v1\n    kind: Widget\n    current: ${JSON.stringify(expr)}\n`,
    "rules/bounds.yaml",
  );
  const r = file.health[0];
  if (!r) throw new Error("no rule parsed");
  return r;
}

const widget = (status: Record<string, unknown>) =>
  ({
    apiVersion: "example.dev/v1",
    kind: "Widget",
    metadata: { name: "w", namespace: "ns" },
    status,
  }) as KubeObject;

const replaceChain = (n: number) =>
  `${'"aaaaaaaaaaaaaaaa"'}${'.replace("a", "aaaaaaaaaaaaaaaa")'.repeat(n)}.size() > 0`;

const cases: Array<{ name: string; expr: string; status: Record<string, unknown>; limit: RegExp }> = [
  {
    name: "a chain of 7 replace() calls (16^8 characters)",
    expr: replaceChain(7),
    status: {},
    limit: /memory limit exceeded: replace\(\)/,
  },
  {
    name: "join() of a long list with a long separator",
    expr: 'status.items.map(i, "x").join(status.sep).size() > 0',
    status: { items: Array.from({ length: 20_000 }, (_, i) => i), sep: "s".repeat(4096) },
    limit: /memory limit exceeded: join\(\)|cost limit exceeded/,
  },
  {
    name: "a nested map builder",
    expr: "status.items.map(a, status.items.map(b, {'k': [a, b, status.pad]})).size() > 0",
    status: { items: Array.from({ length: 2000 }, (_, i) => i), pad: "p".repeat(1000) },
    limit: /cost limit exceeded|deadline of 100 ms exceeded|memory limit exceeded/,
  },
  {
    name: "string doubling by concatenation",
    expr: "cel.bind(a, status.s + status.s, cel.bind(b, a + a, cel.bind(c, b + b, cel.bind(d, c + c, d + d)))).size() > 0",
    status: { s: "x".repeat(200_000) },
    limit: /memory limit exceeded: a string concatenation|deadline of 100 ms exceeded/,
  },
];

describe("CEL: produced values are bounded", () => {
  for (const c of cases) {
    test(`${c.name}: ends within ${CUTOFF_MS} ms, naming the rule and the limit`, () => {
      const parsed = rule(c.expr);
      const object = widget(c.status);
      const rss0 = process.memoryUsage().rss;
      const t0 = performance.now();
      const r = evaluateHealthRule(parsed, object);
      const ms = performance.now() - t0;
      expect(r.status).toBe("Unknown");
      expect(r.message).toMatch(/^health rule .+ \(rules\/bounds\.yaml:4\), current on Widget\/ns\/w: /);
      expect(r.message).toMatch(c.limit);
      expect(ms).toBeLessThan(CUTOFF_MS);
      expect(process.memoryUsage().rss - rss0).toBeLessThan(200 * 1024 * 1024);
    });
  }

  test("a short replace chain and an ordinary join still evaluate", () => {
    expect(evaluateHealthRule(rule(replaceChain(3)), widget({})).status).toBe("Current");
    const j = rule('status.items.map(i, string(i)).join(",") == "1,2,3"');
    expect(evaluateHealthRule(j, widget({ items: [1, 2, 3] })).status).toBe("Current");
  });

  test("the ceiling is the budget's, 1 MiB by default", () => {
    expect(DEFAULT_BUDGET.maxBytes).toBe(1024 * 1024);
  });
});

describe("CEL: regexes run in linear time", () => {
  test("\\d*\\d*\\d*x over a 64 KiB subject ends within the cutoff (RE2: no backtracking)", () => {
    const r = rule("status.s.matches('\\\\d*\\\\d*\\\\d*x')");
    const t0 = performance.now();
    const out = evaluateHealthRule(r, widget({ s: "1".repeat(65_536) }));
    const ms = performance.now() - t0;
    // Either a result (no match: not Current) or a named limit, never a hang.
    expect(out.status === "InProgress" || out.status === "Unknown").toBe(true);
    if (out.status === "Unknown") expect(out.message).toMatch(/limit|deadline/);
    expect(ms).toBeLessThan(CUTOFF_MS * 2);
  });

  test("find() and findAll() agree with RE2 semantics", () => {
    const r = rule(
      "status.s.find('[0-9]+') == '42' && status.s.findAll('[a-z]+') == ['ab', 'cd'] && status.s.findAll('[a-z]+', 1) == ['ab']",
    );
    expect(evaluateHealthRule(r, widget({ s: "ab42cd" })).status).toBe("Current");
  });
});
