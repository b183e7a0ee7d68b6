/**
 * The built-in packs are embedded parsed (agent/policy/builtin-packs.ts, written by rules/embed.ts): what they
 * compile to must be what the YAML in rules/health/ compiles to, rule for rule and line for line. This fails
 * when a pack is edited and not embedded again.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { BUILTIN_PACKS } from "../../agent/policy/builtin-packs.ts";
import { compileEmbeddedPack, parseRuleFile, type RuleFile } from "../../agent/policy/rule-file.ts";

const DIR = join(import.meta.dir, "../../rules/health");
const packFiles = readdirSync(DIR)
  .filter((f) => f.endsWith(".yaml"))
  .sort();

/** What a compiled file says, without the compiled programs themselves. */
function shape(f: RuleFile) {
  return {
    file: f.file,
    health: f.health.map((r) => ({
      name: r.name,
      group: r.group,
      kind: r.kind,
      source: r.source,
      builtin: r.builtin,
      current: [r.current.source, r.current.type],
      inProgress: r.inProgress ? [r.inProgress.source, r.inProgress.type] : undefined,
      failed: r.failed ? [r.failed.source, r.failed.type] : undefined,
    })),
    sync: f.sync.map((r) => ({ ...r, when: r.when.language })),
  };
}

/** An embedded pack of one Pod health rule at line 4, its `current` expression at `line`. */
function podPack(current: string, line: number) {
  return {
    data: {
      apiVersion: "berth.dev/v1alpha1",
      kind: "Rules",
      health: [{ apiVersion: "v1", kind: "Pod", current }],
    },
    lines: { "health.0": 4, "health.0.current": line },
  };
}

describe("embedded built-in packs", () => {
  test("every pack in rules/health is embedded, and nothing else", () => {
    expect(Object.keys(BUILTIN_PACKS).sort()).toEqual(packFiles.map((f) => `rules/health/${f}`));
  });

  for (const f of packFiles) {
    test(`${f}: the embedded pack compiles to what its YAML compiles to`, () => {
      const file = `rules/health/${f}`;
      const fromYaml = parseRuleFile(readFileSync(join(DIR, f), "utf8"), file, true);
      const pack = BUILTIN_PACKS[file];
      if (!pack) throw new Error(`${file} is not embedded`);
      // Lazily, as berth loads them: reading a program's type compiles it.
      const embedded = compileEmbeddedPack(pack, file, { lazy: true });
      expect(fromYaml.health.length).toBeGreaterThan(0);
      expect(shape(embedded)).toEqual(shape(fromYaml));
    });
  }

  test("a bad expression in an embedded pack names the file and the field's line", () => {
    const pack = podPack("1 +", 7);
    expect(() => compileEmbeddedPack(pack, "rules/health/x.yaml")).toThrow(/rules\/health\/x\.yaml:7/);
    // Lazily: loading compiles nothing; the first use fails, naming the same place, and so does every later one.
    const lazy = compileEmbeddedPack(pack, "rules/health/x.yaml", { lazy: true });
    const rule = lazy.health[0];
    if (!rule) throw new Error("no rule");
    expect(rule.current.source).toBe("1 +");
    expect(() => rule.current.evaluate({})).toThrow(/rules\/health\/x\.yaml:7/);
    expect(() => rule.current.type).toThrow(/rules\/health\/x\.yaml:7/);
  });

  test("a lazy program compiles on first use and then evaluates as an eager one does", () => {
    const pack = podPack("status.phase == 'Running'", 5);
    const eager = compileEmbeddedPack(pack, "p.yaml").health[0];
    const lazy = compileEmbeddedPack(pack, "p.yaml", { lazy: true }).health[0];
    if (!eager || !lazy) throw new Error("no rule");
    for (const phase of ["Running", "Pending"])
      expect(lazy.current.evaluate({ status: { phase } })).toBe(
        eager.current.evaluate({ status: { phase } }),
      );
    expect(lazy.current.type).toBe(eager.current.type);
  });
});
