/** The engine's policy port over a RuleSet: sync rules judge each plan, with an injectable clock. */
import type { CommitInfo } from "../object/object.ts";
import type { Plan } from "../plan/plan.ts";
import type { RuleSet } from "./rule-set.ts";
import { type ApprovalGrant, type Judgement, judgePlan } from "./sync-judge.ts";

/** Looks up the unexpired approval of an app at a revision (the Ledger's approvalFor satisfies it). */
export type ApprovalLookup = (app: string, revision: string) => ApprovalGrant | undefined;

/** Judges plans with the sync rules of a RuleSet (satisfies agent/engine/ports.ts PolicyPort). */
export class RulePolicy {
  constructor(
    private readonly rules: Pick<RuleSet, "sync">,
    private readonly now: () => Date = () => new Date(),
    private readonly approvals: ApprovalLookup = () => undefined,
  ) {}

  /** The verdicts on one plan and the plan to apply. */
  judge(input: { app: { name: string; namespace?: string }; plan: Plan; commit: CommitInfo }): Judgement {
    const approval = this.approvals(input.app.name, input.plan.revision);
    return judgePlan(this.rules.sync, { ...input, now: this.now(), ...(approval ? { approval } : {}) });
  }
}
