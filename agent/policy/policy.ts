/** The engine's policy port over a RuleSet: sync rules judge each plan, with an injectable clock. */
import type { CommitInfo } from "../object/object.ts";
import type { Plan } from "../plan/plan.ts";
import type { RuleSet } from "./rule-set.ts";
import { type Judgement, judgePlan } from "./sync-judge.ts";

/** Judges plans with the sync rules of a RuleSet (satisfies agent/engine/ports.ts PolicyPort). */
export class RulePolicy {
  constructor(
    private readonly rules: Pick<RuleSet, "sync">,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The verdicts on one plan and the plan to apply. */
  judge(input: { app: { name: string; namespace?: string }; plan: Plan; commit: CommitInfo }): Judgement {
    return judgePlan(this.rules.sync, { ...input, now: this.now() });
  }
}
