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
      const embedded = compileEmbeddedPack(pack, file);
      expect(fromYaml.health.length).toBeGreaterThan(0);
      expect(shape(embedded)).toEqual(shape(fromYaml));
    });
  }

  test("a bad expression in an embedded pack names the file and the field's line", () => {
    const pack = {
      data: {
        apiVersion: "berth.dev/v1alpha1",
        kind: "Rules",
        health: [{ apiVersion: "v1", kind: "Pod", current: "1 +" }],
      },
      lines: { "health.0": 4, "health.0.current": 7 },
    };
    expect(() => compileEmbeddedPack(pack, "rules/health/x.yaml")).toThrow(/rules\/health\/x\.yaml:7/);
  });
});
