/**
 * Instruments a checked @marcbachmann/cel-js AST so evaluation is bounded: every comprehension step
 * and every list concatenation is charged to the budget (budget.ts), and every regex call's pattern
 * and subject go through regex-guard.ts. The library has no per-step hook, so the nodes' evaluate
 * functions and call handles are wrapped; this relies on its AST shape (op, args, meta, handle).
 */
import { assertWithinBudget, charge, chargeBytes } from "./budget.ts";
import { regexMatches } from "./regex.ts";
import { guardRegex, regexProblem } from "./regex-guard.ts";

type Evaluate = (ev: unknown, ast: unknown, ctx: unknown) => unknown;
type Handle = (args: unknown[], a: unknown, b: unknown) => unknown;

/** The parts of the library's ASTNode used here. */
interface Node {
  op: string;
  args: unknown;
  start: number;
  meta: { evaluate: Evaluate; alternate?: Node; macro?: Record<string, unknown> };
  evaluate: Evaluate;
  handle?: Handle;
}

/** The regex functions: method name → index of the pattern among the resolved [receiver, ...args]. */
const REGEX_METHODS = new Set(["matches", "find", "findAll"]);

function isNode(x: unknown): x is Node {
  return typeof x === "object" && x !== null && typeof (x as Node).op === "string" && "meta" in x;
}

/** What evaluate() on the node does, resolved as the library's ASTNode.evaluate does. */
function resolved(node: Node): Evaluate {
  const meta = node.meta;
  if (meta.alternate) {
    const alt = meta.alternate;
    return (ev, _ast, ctx) => alt.evaluate(ev, alt, ctx);
  }
  if (meta.macro) {
    const macro = meta.macro as { evaluate: Evaluate };
    return (ev, _ast, ctx) => macro.evaluate(ev, macro, ctx);
  }
  return (ev, ast, ctx) => node.meta.evaluate(ev, ast, ctx);
}

/** A regex literal found at compile time that the guard refuses, with its offset in the expression. */
export interface RegexRefusal {
  offset: number;
  message: string;
}

/** Wraps the AST's nodes; returns the first refused regex literal, if any (a compile error). */
export function instrument(root: unknown): RegexRefusal | undefined {
  const seen = new Set<unknown>();
  let refusal: RegexRefusal | undefined;
  const visit = (x: unknown): void => {
    if (Array.isArray(x)) {
      for (const y of x) visit(y);
      return;
    }
    if (!isNode(x) || seen.has(x)) return;
    seen.add(x);
    const node = x;
    if (node.meta.alternate) visit(node.meta.alternate);
    const macro = node.meta.macro;
    if (macro) for (const k of ["args", "val", "exp"]) visit(macro[k]);
    if (node.op === "comprehension") {
      const args = node.args as { iterable: unknown; init: unknown; step: Node };
      // The comprehension refuses to start once over budget, so error-absorbing loops end quickly.
      const loop = resolved(node);
      node.evaluate = (ev, ast, ctx) => {
        assertWithinBudget();
        return loop(ev, ast, ctx);
      };
      const step = resolved(args.step);
      args.step.evaluate = (ev, ast, ctx) => {
        charge();
        return step(ev, ast, ctx);
      };
      visit(args.iterable);
      visit(args.init);
      visit(args.step);
      return;
    }
    if (node.op === "+") {
      const add = resolved(node);
      node.evaluate = (ev, ast, ctx) => {
        const out = add(ev, ast, ctx);
        if (Array.isArray(out)) charge(out.length);
        else if (typeof out === "string") chargeBytes(out.length, "a string concatenation");
        return out;
      };
    }
    if ((node.op === "rcall" || node.op === "call") && node.handle) {
      const list = node.args as unknown[];
      const name = list[0];
      // Every builtin pays for what it makes; amplifiers pay before they run.
      const inner = node.handle;
      const fn = String(name);
      node.handle = (resolvedArgs, a, b) => {
        const before = AMPLIFIERS[fn]?.(resolvedArgs);
        if (before !== undefined) chargeBytes(before, `${fn}()`);
        const out = inner(resolvedArgs, a, b);
        if (before === undefined) chargeBytes(sizeOf(out), `${fn}()`);
        return out;
      };
      const callArgs = (node.op === "rcall" ? list[2] : list[1]) as unknown[];
      const isRegex = node.op === "rcall" ? REGEX_METHODS.has(String(name)) : name === "matches";
      if (isRegex && Array.isArray(callArgs)) {
        const literal = node.op === "rcall" ? callArgs[0] : callArgs[1];
        if (isNode(literal) && literal.op === "value" && typeof literal.args === "string") {
          const problem = regexProblem(literal.args);
          if (problem && !refusal) {
            refusal = {
              offset: literal.start,
              message: `regular expression "${literal.args}" refused: ${problem}`,
            };
          }
        }
        const handle = node.handle;
        node.handle = (resolvedArgs, a, b) => {
          guardRegex(resolvedArgs[1], resolvedArgs[0]);
          // matches() runs on RE2 (linear time) instead of the library's backtracking RegExp.
          const [subject, pattern] = resolvedArgs;
          if (fn === "matches" && typeof subject === "string" && typeof pattern === "string")
            return regexMatches(subject, pattern);
          return handle(resolvedArgs, a, b);
        };
      }
    }
    visit(node.args);
  };
  visit(root);
  return refusal;
}

/** The size of a produced value: characters of a string, entries of a list or map (1 for scalars). */
function sizeOf(v: unknown): number {
  if (typeof v === "string") return v.length;
  if (Array.isArray(v)) return v.length;
  if (v instanceof Map || v instanceof Set) return v.size;
  if (v instanceof Uint8Array) return v.length;
  return 1;
}

/** Occurrences of `needle` in `hay` (non-overlapping), without allocating. */
function occurrences(hay: string, needle: string, max = Number.POSITIVE_INFINITY): number {
  if (needle === "") return Math.min(hay.length + 1, max);
  let n = 0;
  for (let at = hay.indexOf(needle); at !== -1 && n < max; at = hay.indexOf(needle, at + needle.length)) n++;
  return n;
}

/** The size a builtin that can amplify its input would produce, computed from its arguments before it runs. */
const AMPLIFIERS: Record<string, (args: unknown[]) => number | undefined> = {
  replace: ([s, from, to, n]) => {
    if (typeof s !== "string" || typeof from !== "string" || typeof to !== "string") return undefined;
    const limit = typeof n === "bigint" && n >= 0n ? Number(n) : Number.POSITIVE_INFINITY;
    return s.length + occurrences(s, from, limit) * Math.max(0, to.length - from.length);
  },
  join: ([list, sep]) => {
    if (!Array.isArray(list)) return undefined;
    const between = typeof sep === "string" ? sep.length * Math.max(0, list.length - 1) : 0;
    return list.reduce((sum: number, x) => sum + (typeof x === "string" ? x.length : 0), between);
  },
};
