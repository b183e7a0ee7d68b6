/**
 * The evaluation budget of one CEL expression: a step count, the bytes of the values it produces and a
 * wall-clock deadline, charged by comprehension steps, list concatenation, regex scans and every builtin's
 * result (see guard.ts, which wires the charges into the AST; cel-go's cost model is the reference: a call that
 * makes a string, list or map costs its size). Builtins that can amplify (replace, join) are charged *before*
 * they run, from the size they would produce, so one call cannot allocate gigabytes first. Evaluation stays
 * synchronous: a runaway expression fails fast instead of being killed from outside.
 */

/** How much one evaluation may do. */
export interface EvaluationBudget {
  /** Comprehension steps plus elements produced by list concatenation. */
  maxSteps: number;
  /** Wall-clock milliseconds, checked every 1,024 steps. */
  deadlineMs: number;
  /** Bytes (string characters, list and map entries) the evaluation's builtins may produce in all. */
  maxBytes?: number;
}

/** The default produced-value ceiling: 1 MiB. */
export const DEFAULT_MAX_BYTES = 1024 * 1024;

/** The default: far above any real health or sync rule (a few hundred steps), far below a hang. */
export const DEFAULT_BUDGET: EvaluationBudget = {
  maxSteps: 1_000_000,
  deadlineMs: 100,
  maxBytes: DEFAULT_MAX_BYTES,
};

/** Thrown when an evaluation overruns its budget; sticky, so `|| true` or exists() cannot absorb it. */
export class BudgetExceeded extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BudgetExceeded";
  }
}

const CHECK_EVERY = 1024;

/** The state of the evaluation in progress (evaluation is synchronous, so one at a time per thread). */
let steps = 0;
let nextCheck = CHECK_EVERY;
let limit = Number.POSITIVE_INFINITY;
let deadline = Number.POSITIVE_INFINITY;
let deadlineMs = 0;
let bytes = 0;
let maxBytes = Number.POSITIVE_INFINITY;
let exceeded: BudgetExceeded | undefined;

/** Charges `n` steps to the evaluation in progress; throws BudgetExceeded past the budget. */
export function charge(n = 1): void {
  if (exceeded) throw exceeded;
  steps += n;
  if (steps > limit) {
    exceeded = new BudgetExceeded(`cost limit exceeded: more than ${limit.toLocaleString("en")} steps`);
    throw exceeded;
  }
  if (steps >= nextCheck) {
    nextCheck = steps + CHECK_EVERY;
    if (performance.now() > deadline) {
      exceeded = new BudgetExceeded(
        `evaluation deadline of ${deadlineMs} ms exceeded after ${steps.toLocaleString("en")} steps`,
      );
      throw exceeded;
    }
  }
}

/**
 * Charges `n` bytes of produced values (and as many steps / 64, so a stream of small results still meets the
 * deadline check); throws BudgetExceeded past the ceiling. Called before an amplifying builtin runs.
 */
export function chargeBytes(n: number, what: string): void {
  if (exceeded) throw exceeded;
  bytes += n;
  if (bytes > maxBytes) {
    exceeded = new BudgetExceeded(
      `memory limit exceeded: ${what} would bring the values produced to ${bytes.toLocaleString("en")} bytes; the limit is ${maxBytes.toLocaleString("en")}`,
    );
    throw exceeded;
  }
  charge(1 + (n >> 6));
}

/** Throws the budget error if the evaluation in progress has overrun (cheap: no clock read). */
export function assertWithinBudget(): void {
  if (exceeded) throw exceeded;
}

/** Runs `fn` under a fresh budget; a budget overrun wins over whatever `fn` returned or threw. */
export function withBudget<T>(budget: EvaluationBudget, fn: () => T): T {
  const saved = { steps, nextCheck, limit, deadline, deadlineMs, bytes, maxBytes, exceeded };
  steps = 0;
  bytes = 0;
  maxBytes = budget.maxBytes ?? DEFAULT_MAX_BYTES;
  nextCheck = CHECK_EVERY;
  limit = budget.maxSteps;
  deadlineMs = budget.deadlineMs;
  deadline = performance.now() + budget.deadlineMs;
  exceeded = undefined;
  try {
    const result = fn();
    if (exceeded) throw exceeded;
    return result;
  } catch (err) {
    throw exceeded ?? err;
  } finally {
    ({ steps, nextCheck, limit, deadline, deadlineMs, bytes, maxBytes, exceeded } = saved);
  }
}
