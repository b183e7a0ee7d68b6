/**
 * Parses one rule file (YAML, schemas/rules.schema.json) and compiles every expression in it, so a bad
 * rule is a load error naming the file, the line, the rule and the position inside the expression.
 */
import type { ErrorObject } from "ajv";
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { CelEnvironment, type CelError, type CelProgram } from "../cel/cel.ts";
import { BerthError } from "../object/errors.ts";
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
const validate = generated as ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/** Parses and compiles a rule file's text; throws a BerthError naming file:line and the rule. */
export function parseRuleFile(text: string, file: string, builtin = false): RuleFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const at = e?.linePos?.[0]?.line ?? 1;
    throw new BerthError(`invalid YAML: ${e?.message.split("\n")[0]}`, { subject: `${file}:${at}` });
  }
  const data = doc.toJS({ maxAliasCount: 100 }) as unknown;
  if (!validate(data)) {
    const err = validate.errors?.[0];
    const path = err?.instancePath ?? "";
    const node = nodeAt(doc.contents, path.split("/").filter(Boolean));
    const line = node?.range ? lines.linePos(node.range[0]).line : 1;
    const field = path.replace(/^\//, "").replaceAll("/", ".") || "(top level)";
    throw new BerthError(`${field}: ${err?.message ?? "does not match the rules schema"}`, {
      subject: `${file}:${line}`,
    });
  }
  const raw = data as { health?: Array<Record<string, unknown>>; sync?: Array<Record<string, unknown>> };
  const lineOf = (path: Array<string | number>): number => {
    const node = nodeAt(doc.contents, path.map(String));
    return node?.range ? lines.linePos(node.range[0]).line : 1;
  };
  const compileAt = (expr: string, path: Array<string | number>, rule: string, expect?: string[]) => {
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

/** The YAML node at a path of map keys and sequence indexes. */
function nodeAt(node: unknown, path: string[]): Node | undefined {
  let cur = node as Node | undefined;
  for (const key of path) {
    if (isMap(cur)) {
      const pair = cur.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      cur = pair?.value as Node | undefined;
    } else if (isSeq(cur)) {
      cur = cur.items[Number(key)] as Node | undefined;
    } else return cur;
  }
  return cur;
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
