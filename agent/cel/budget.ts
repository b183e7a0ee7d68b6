/**
 * The evaluation budget of one CEL expression: a step count and a wall-clock deadline, charged by
 * comprehension steps and list concatenation (see guard.ts, which wires the charges into the AST).
 * Evaluation stays synchronous: a runaway expression fails fast instead of being killed from outside.
 */

/** How much one evaluation may do. */
export interface EvaluationBudget {
  /** Comprehension steps plus elements produced by list concatenation. */
  maxSteps: number;
  /** Wall-clock milliseconds, checked every 1,024 steps. */
  deadlineMs: number;
}

/** The default: far above any real health or sync rule (a few hundred steps), far below a hang. */
export const DEFAULT_BUDGET: EvaluationBudget = { maxSteps: 1_000_000, deadlineMs: 100 };

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

/** Throws the budget error if the evaluation in progress has overrun (cheap: no clock read). */
export function assertWithinBudget(): void {
  if (exceeded) throw exceeded;
}

/** Runs `fn` under a fresh budget; a budget overrun wins over whatever `fn` returned or threw. */
export function withBudget<T>(budget: EvaluationBudget, fn: () => T): T {
  const saved = { steps, nextCheck, limit, deadline, deadlineMs, exceeded };
  steps = 0;
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
    ({ steps, nextCheck, limit, deadline, deadlineMs, exceeded } = saved);
  }
}
