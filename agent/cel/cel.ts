/**
 * berth's CEL module: the only importer of @marcbachmann/cel-js. Expressions are parsed with
 * structural limits, type-checked when compiled (so a bad rule fails at load), and evaluated with
 * JSON integers as CEL ints (BigInt). See kubernetes-library.ts for the functions added on top.
 */
import { TypeError as CelTypeError, Environment, EvaluationError, ParseError } from "@marcbachmann/cel-js";
import { BerthError } from "../object/errors.ts";
import { DEFAULT_BUDGET, type EvaluationBudget, withBudget } from "./budget.ts";
import { instrument } from "./guard.ts";
import { type Registrar, registerKubernetesLibrary } from "./kubernetes-library.ts";

export { DEFAULT_BUDGET, type EvaluationBudget } from "./budget.ts";
export { MAX_REGEX_SUBJECT } from "./regex-guard.ts";
export { fromCel, toCel } from "./values.ts";

/** Parse-time limits: hostile input (100k nested parentheses, huge literals) is a clean error. */
export const CEL_LIMITS = {
  maxAstNodes: 10_000,
  maxDepth: 100,
  maxListElements: 1_000,
  maxMapEntries: 1_000,
  maxCallArguments: 32,
} as const;

/** The longest expression accepted, in characters. */
export const MAX_EXPRESSION_LENGTH = 16_384;

/** A CEL type name as the library spells it ("bool", "int", "map", "list<string>", "timestamp", "dyn"). */
export type CelTypeName = string;

/** Where in an expression a problem is: 1-based line and column inside the expression text. */
export interface CelPosition {
  line: number;
  column: number;
}

/** A compile or evaluation error; `position` points into the expression when known. */
export class CelError extends BerthError {
  readonly position: CelPosition | undefined;
  readonly summary: string;

  constructor(summary: string, options: { subject?: string; position?: CelPosition; cause?: unknown } = {}) {
    const at = options.position ? ` (at ${options.position.line}:${options.position.column})` : "";
    super(`${summary}${at}`, {
      ...(options.subject !== undefined ? { subject: options.subject } : {}),
      ...(options.cause !== undefined ? { cause: options.cause } : {}),
    });
    this.name = "CelError";
    this.summary = summary;
    this.position = options.position;
  }
}

/** A compiled, type-checked expression. */
export interface CelProgram {
  readonly source: string;
  /** The type the checker inferred ("bool", "dyn", …). */
  readonly type: string;
  /** Evaluates with the given variables (already CEL values: see toCel); throws CelError. */
  evaluate(variables: Record<string, unknown>): unknown;
}

/** How an environment declares its variables. */
export interface EnvironmentSpec {
  /** Declared variables and their types; others are unknown identifiers (a check error)… */
  variables?: Record<string, CelTypeName>;
  /** …unless this is true: then any identifier is a dyn variable (health rules: the object's top-level fields). */
  dynamicVariables?: boolean;
  /** Steps and wall-clock time one evaluation may take (default DEFAULT_BUDGET). */
  budget?: EvaluationBudget;
}

/** A CEL environment: the library's, with limits, optionals and the Kubernetes functions registered. */
export class CelEnvironment {
  private readonly env: Environment;
  private readonly budget: EvaluationBudget;

  constructor(spec: EnvironmentSpec = {}) {
    this.budget = spec.budget ?? DEFAULT_BUDGET;
    const env = new Environment({
      unlistedVariablesAreDyn: spec.dynamicVariables ?? false,
      enableOptionalTypes: true,
      homogeneousAggregateLiterals: false,
      limits: { ...CEL_LIMITS },
    });
    registerKubernetesLibrary(env as unknown as Registrar);
    for (const [name, type] of Object.entries(spec.variables ?? {})) env.registerVariable(name, type);
    this.env = env;
  }

  /** Parses and type-checks an expression; `expect` lists the result types allowed (dyn is always allowed). */
  compile(source: string, expect?: readonly CelTypeName[]): CelProgram {
    if (source.length > MAX_EXPRESSION_LENGTH) {
      throw new CelError(`expression is ${source.length} characters; the limit is ${MAX_EXPRESSION_LENGTH}`);
    }
    let fn: ReturnType<Environment["parse"]>;
    try {
      fn = this.env.parse(source);
    } catch (err) {
      throw toCelError(err, source, "parse error");
    }
    let type = "dyn";
    try {
      const checked = fn.check();
      if (!checked.valid) throw checked.error;
      type = String(checked.type);
    } catch (err) {
      throw toCelError(err, source, "type error");
    }
    if (expect && type !== "dyn" && !expect.includes(type)) {
      throw new CelError(`expression has type ${type}, expected ${expect.join(" or ")}`);
    }
    // Bound evaluation: comprehension steps and list growth are charged, regex literals checked now.
    const refusal = instrument(fn.ast);
    if (refusal) throw new CelError(refusal.message, { position: positionIn(source, refusal.offset) });
    const budget = this.budget;
    return {
      source,
      type,
      evaluate: (variables) => {
        try {
          return withBudget(budget, () => fn(variables));
        } catch (err) {
          throw toCelError(err, source, "evaluation error");
        }
      },
    };
  }
}

/** Turns a library error (or a stack overflow) into a CelError with a position inside the expression. */
function toCelError(err: unknown, source: string, kind: string): CelError {
  if (err instanceof CelError) return err;
  if (err instanceof ParseError || err instanceof EvaluationError || err instanceof CelTypeError) {
    const e = err as unknown as { summary?: string; message: string; range?: { start: number } };
    const summary = e.summary ?? e.message.split("\n")[0] ?? kind;
    const position = e.range ? positionIn(source, e.range.start) : undefined;
    return new CelError(`${kind}: ${summary}`, { ...(position ? { position } : {}), cause: err });
  }
  if (err instanceof RangeError) return new CelError(`${kind}: expression too deeply nested`, { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new CelError(`${kind}: ${message}`, { cause: err });
}

/** The 1-based line and column of a character offset. */
export function positionIn(source: string, offset: number): CelPosition {
  const before = source.slice(0, Math.max(0, offset));
  const lines = before.split("\n");
  return { line: lines.length, column: (lines.at(-1)?.length ?? 0) + 1 };
}
