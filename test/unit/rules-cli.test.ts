/**
 * `berth rules check|test|eval` through the CLI entry (in process): exit codes and messages naming the file,
 * line, rule and column; fixture files with expected verdicts and health (test/fixtures/rules/).
 */
import { describe, expect, test } from "bun:test";
import { cli } from "../../agent/cli/cli.ts";

const FIX = "test/fixtures/rules";

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await cli(argv, { out: (s) => (out += s), err: (s) => (err += s), tty: false });
  return { code, out, err };
}

describe("berth rules check", () => {
  test("a good file passes, exit 0, with its rule counts", async () => {
    const r = await run("rules", "check", `${FIX}/policy.yaml`);
    expect(r.code).toBe(0);
    expect(r.out).toContain("policy.yaml: 1 health, 3 sync rules");
  });

  test("a bad expression fails, exit 1, naming file:line, the rule, the field and the column", async () => {
    const r = await run("rules", "check", `${FIX}/policy.yaml`, `${FIX}/bad.yaml`);
    expect(r.code).toBe(1);
    expect(r.out).toContain("policy.yaml");
    expect(r.err).toMatch(/bad\.yaml:\d+: rule typo, field when, column \d+/);
  });

  test("a missing file fails naming it", async () => {
    const r = await run("rules", "check", `${FIX}/nope.yaml`);
    expect(r.code).toBe(1);
    expect(r.err).toContain("nope.yaml");
  });
});

describe("berth rules test", () => {
  test("fixtures that hold pass, exit 0", async () => {
    const r = await run("rules", "test", `${FIX}/pass`);
    expect(r.err).toBe("");
    expect(r.out).toContain("7 passed, 0 failed");
    expect(r.code).toBe(0);
  });

  test("failing cases exit 1 and say what differed", async () => {
    const r = await run("rules", "test", `${FIX}/fail`);
    expect(r.code).toBe(1);
    expect(r.out).toContain("health: expected Current, got Failed");
    expect(r.out).toContain("blocked: expected false, got deny");
    expect(r.out).toContain("0 passed, 2 failed");
  });

  test("a malformed fixture file or no fixtures at all is exit 2", async () => {
    expect((await run("rules", "test", `${FIX}/policy.yaml`)).code).toBe(2);
    expect((await run("rules", "test", "test/fixtures/health")).code).toBe(2);
  });

  test("--json lists every case", async () => {
    const r = await run("rules", "test", `${FIX}/pass`, "--json");
    const cases = JSON.parse(r.out) as Array<{ name: string; ok: boolean }>;
    expect(cases).toHaveLength(7);
    expect(cases.every((c) => c.ok)).toBe(true);
  });
});

describe("berth rules eval", () => {
  const evalOnWidget = (expression: string) =>
    run("rules", "eval", expression, "--object", `${FIX}/widget.yaml`);

  test("evaluates an expression over an object file", async () => {
    const r = await evalOnWidget("spec.replicas * 2 + size(metadata.labels)");
    expect(r).toMatchObject({ code: 0, out: "7\n" });
    const s = await evalOnWidget("self.status.conditions.exists(c, c.type == 'Ready' && c.status == 'True')");
    expect(s.out).toBe("true\n");
  });

  test("a bad expression is exit 1 with its position; no --object is a usage error", async () => {
    const r = await evalOnWidget("spec.replicas +");
    expect(r.code).toBe(1);
    expect(r.err).toContain("parse error");
    expect((await run("rules", "eval", "1 + 1")).code).toBe(2);
    expect((await run("rules", "nonsense")).code).toBe(2);
  });
});
