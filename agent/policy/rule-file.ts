/**
 * Parses one rule file (YAML, schemas/rules.schema.json) and compiles every expression in it, so a bad
 * rule is a load error naming the file, the line, the rule and the position inside the expression.
 */

import rulesSchema from "../../schemas/rules.schema.json" with { type: "json" };
import { CelEnvironment, type CelError, type CelProgram } from "../cel/cel.ts";
import { BerthError } from "../object/errors.ts";
import {
  type ExpectationHints,
  PositionedYaml,
  problemError,
  schemaProblems,
  type Validator,
  YamlSyntaxError,
} from "../object/yaml-schema.ts";
import { compileLogic, type LogicProgram } from "./json-logic.ts";
import generated from "./rules-schema.generated.ts";

/** Where a rule was written: `file:line`. */
export interface RuleSource {
  file: string;
  line: number;
}

/** A health rule (Flux healthCheckExprs shape), compiled. */
export interface HealthRule {
  name: string;
  /** The API group matched ("" for the core group, "*" for any). */
  group: string;
  kind?: string;
  current: CelProgram;
  inProgress?: CelProgram;
  failed?: CelProgram;
  source: RuleSource;
  builtin: boolean;
}

/** What a sync rule decides when its condition is true. */
export type VerdictKind = "deny" | "skip" | "protect" | "hold" | "defer";

/** A sync rule, compiled. */
export interface SyncRule {
  name: string;
  scope: "change" | "plan";
  apps?: string[];
  when: { evaluate(vars: Record<string, unknown>): unknown; language: "cel" | "json-logic" };
  verdict: VerdictKind;
  message: string;
  /** Hold expiry, ms. */
  expiresMs?: number;
  source: RuleSource;
}

/** The compiled content of one file. */
export interface RuleFile {
  file: string;
  health: HealthRule[];
  sync: SyncRule[];
}

/** Health expressions: every identifier is a dyn variable (the object's top-level fields, and self). */
export const healthEnvironment = new CelEnvironment({ dynamicVariables: true });
/** Sync expressions: the variables a rule may read. */
export const syncEnvironment = new CelEnvironment({
  variables: { change: "map", plan: "map", commit: "map", app: "map", now: "google.protobuf.Timestamp" },
});

/** schemas/rules.schema.json compiled ahead of time (scripts/gen-validators.ts), so no Ajv compile at start. */
const validate = generated as Validator;
/** What the rules schema's patterns expect, for messages. */
const EXPECTED: ExpectationHints = {
  byDefinition: { name: "a lowercase name (a-z, 0-9, '-', '.', at most 63 characters)" },
  byPattern: new Map([
    [rulesSchema.definitions.syncRule.properties.expires.pattern, 'a duration like "30m" (ms, s, m, h)'],
  ]),
};

/** Parses and compiles a rule file's text; throws a BerthError naming file:line and the rule. */
export function parseRuleFile(text: string, file: string, builtin = false): RuleFile {
  let yaml: PositionedYaml;
  try {
    yaml = PositionedYaml.parse(text);
  } catch (err) {
    if (err instanceof YamlSyntaxError) throw problemError(file, err.problem);
    throw err;
  }
  const data = yaml.data;
  // The first problem only: a rule file is small, and each later check assumes the schema held.
  const problem = schemaProblems(validate, data, EXPECTED)[0];
  if (problem) throw problemError(file, yaml.locate(problem));
  return compileRules(data, (path) => yaml.positionOf(path)?.line ?? 1, file, builtin);
}

/**
 * A built-in pack as rules/embed.ts stores it: the YAML already parsed (and checked against the schema when it
 * was embedded), with the line of each rule and of each of its fields by dotted path ("health.0.current").
 * A short-lived command then parses no YAML for the packs: loading them cold takes half the time
 * (scripts/bench/rules-load.ts).
 */
export interface EmbeddedPack {
  data: unknown;
  lines: Readonly<Record<string, number>>;
}

/**
 * Compiles an embedded built-in pack, its expressions here as a file's are, or with `lazy` each on its first use:
 * a command that meets three kinds then compiles their rules only. A built-in pack is tested to compile
 * (test/unit/builtin-packs.test.ts), so lazy moves no error a user could make to later.
 */
export function compileEmbeddedPack(
  pack: EmbeddedPack,
  file: string,
  options: { lazy?: boolean } = {},
): RuleFile {
  const lineOf = (path: Array<string | number>): number =>
    pack.lines[path.join(".")] ?? pack.lines[path.slice(0, 2).join(".")] ?? 1;
  return compileRules(pack.data, lineOf, file, true, options.lazy ?? false);
}

/** A program compiled on its first use (its type read or an evaluation), then kept. */
function lazyProgram(source: string, compile: () => CelProgram): CelProgram {
  let program: CelProgram | undefined;
  const compiled = () => {
    program ??= compile();
    return program;
  };
  return {
    source,
    get type() {
      return compiled().type;
    },
    evaluate: (variables) => compiled().evaluate(variables),
  };
}

/** The lines an EmbeddedPack keeps for a parsed rule file: each rule's, and each of its fields'. */
export function embeddedLines(yaml: PositionedYaml): Record<string, number> {
  const lines: Record<string, number> = {};
  const data = yaml.data as Record<string, unknown>;
  for (const section of ["health", "sync"]) {
    const rules = data[section];
    if (!Array.isArray(rules)) continue;
    rules.forEach((rule, i) => {
      lines[`${section}.${i}`] = yaml.positionOf([section, i])?.line ?? 1;
      for (const field of Object.keys((rule ?? {}) as Record<string, unknown>))
        lines[`${section}.${i}.${field}`] = yaml.positionOf([section, i, field])?.line ?? 1;
    });
  }
  return lines;
}

/** Compiles a parsed rule file's rules; `lineOf` places a path (for sources and errors). */
function compileRules(
  data: unknown,
  lineOf: (path: Array<string | number>) => number,
  file: string,
  builtin: boolean,
  lazy = false,
): RuleFile {
  const raw = data as { health?: Array<Record<string, unknown>>; sync?: Array<Record<string, unknown>> };
  const compileNow = (expr: string, path: Array<string | number>, rule: string, expect?: string[]) => {
    try {
      return healthOrSync(path[0] === "health").compile(expr, expect);
    } catch (err) {
      const line = lineOf(path);
      const e = err as CelError;
      // A position inside a block scalar counts from the line after the key.
      const exprLine = e.position ? line + e.position.line - 1 + (isBlock(expr) ? 1 : 0) : line;
      const col = e.position ? `, column ${e.position.column}` : "";
      throw new BerthError(`rule ${rule}, field ${String(path.at(-1))}${col}: ${e.summary ?? e.message}`, {
        subject: `${file}:${exprLine}`,
        cause: err,
      });
    }
  };
  const compileAt = (expr: string, path: Array<string | number>, rule: string, expect?: string[]) =>
    lazy
      ? lazyProgram(expr, () => compileNow(expr, path, rule, expect))
      : compileNow(expr, path, rule, expect);

  const names = new Set<string>();
  const unique = (name: string, path: Array<string | number>) => {
    if (names.has(name)) {
      throw new BerthError(`rule ${name} is defined twice`, { subject: `${file}:${lineOf(path)}` });
    }
    names.add(name);
  };

  const health: HealthRule[] = (raw.health ?? []).map((r, i) => {
    const apiVersion = String(r.apiVersion);
    const group = apiVersion === "*" ? "*" : apiVersion.includes("/") ? (apiVersion.split("/")[0] ?? "") : "";
    const kind = typeof r.kind === "string" ? r.kind : undefined;
    const name = typeof r.name === "string" ? r.name : `${group || "core"}-${(kind ?? "any").toLowerCase()}`;
    unique(name, ["health", i]);
    const bool = ["bool"];
    const rule: HealthRule = {
      name,
      group,
      current: compileAt(String(r.current), ["health", i, "current"], name, bool),
      source: { file, line: lineOf(["health", i]) },
      builtin,
    };
    if (kind) rule.kind = kind;
    if (typeof r.inProgress === "string")
      rule.inProgress = compileAt(r.inProgress, ["health", i, "inProgress"], name, bool);
    if (typeof r.failed === "string") rule.failed = compileAt(r.failed, ["health", i, "failed"], name, bool);
    return rule;
  });

  const sync: SyncRule[] = (raw.sync ?? []).map((r, i) => {
    const name = String(r.name);
    unique(name, ["sync", i]);
    const source = { file, line: lineOf(["sync", i]) };
    let when: SyncRule["when"];
    if (typeof r.when === "string") {
      const program = compileAt(r.when, ["sync", i, "when"], name, ["bool"]);
      when = { evaluate: (v) => program.evaluate(v), language: "cel" };
    } else {
      let program: LogicProgram;
      try {
        program = compileLogic(r.whenLogic);
      } catch (err) {
        throw new BerthError(`rule ${name}, field whenLogic: ${(err as Error).message}`, {
          subject: `${file}:${lineOf(["sync", i, "whenLogic"])}`,
        });
      }
      when = { evaluate: (v) => program.evaluate(v), language: "json-logic" };
    }
    const rule: SyncRule = {
      name,
      scope: r.scope === "plan" ? "plan" : "change",
      when,
      verdict: r.verdict as VerdictKind,
      message: typeof r.message === "string" ? r.message : `rule ${name} matched`,
      source,
    };
    if (Array.isArray(r.apps)) rule.apps = r.apps.map(String);
    if (typeof r.expires === "string") rule.expiresMs = parseDuration(r.expires);
    if (rule.scope === "plan" && (rule.verdict === "skip" || rule.verdict === "protect")) {
      throw new BerthError(`rule ${name}: verdict ${rule.verdict} needs scope change (it names one object)`, {
        subject: `${file}:${source.line}`,
      });
    }
    return rule;
  });
  return { file, health, sync };
}

function healthOrSync(isHealth: boolean): CelEnvironment {
  return isHealth ? healthEnvironment : syncEnvironment;
}

function isBlock(expr: string): boolean {
  return expr.includes("\n");
}

/** "1h30m" → ms. */
export function parseDuration(text: string): number {
  let ms = 0;
  for (const m of text.matchAll(/(\d+)(ms|s|m|h)/g)) {
    const n = Number(m[1]);
    ms += m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : m[2] === "m" ? n * 60_000 : n * 3_600_000;
  }
  return ms;
}
