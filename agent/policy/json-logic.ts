/** json-logic as the alternative `when` syntax of sync rules: the only importer of json-logic-js. */
import jsonLogic from "json-logic-js";
import { fromCel } from "../cel/cel.ts";

/** A compiled json-logic rule. */
export interface LogicProgram {
  evaluate(vars: Record<string, unknown>): boolean;
}

/** Checks that a json-logic rule only uses known operations, and returns it ready to run. */
export function compileLogic(rule: unknown): LogicProgram {
  checkOperations(rule);
  return {
    // Variables arrive as CEL values (BigInt ints, Dates); json-logic wants plain JSON.
    evaluate: (vars) =>
      jsonLogic.truthy(jsonLogic.apply(rule as jsonLogic.RulesLogic, fromCel(vars) as object)),
  };
}

const KNOWN = new Set([
  "var",
  "missing",
  "missing_some",
  "if",
  "==",
  "===",
  "!=",
  "!==",
  "!",
  "!!",
  "or",
  "and",
  ">",
  ">=",
  "<",
  "<=",
  "max",
  "min",
  "+",
  "-",
  "*",
  "/",
  "%",
  "map",
  "filter",
  "reduce",
  "all",
  "none",
  "some",
  "merge",
  "in",
  "cat",
  "substr",
  "log",
]);

function checkOperations(rule: unknown, depth = 0): void {
  if (depth > 100) throw new Error("json-logic rule nested deeper than 100");
  if (Array.isArray(rule)) {
    for (const r of rule) checkOperations(r, depth + 1);
    return;
  }
  if (rule === null || typeof rule !== "object") return;
  const keys = Object.keys(rule);
  if (keys.length !== 1) throw new Error(`a json-logic operation has exactly one key, got ${keys.length}`);
  const op = keys[0] ?? "";
  if (!KNOWN.has(op)) throw new Error(`unknown json-logic operation "${op}"`);
  checkOperations((rule as Record<string, unknown>)[op], depth + 1);
}
