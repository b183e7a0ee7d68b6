/** 3b. Rules: sync rules judge the plan before anything is written; deny/hold/defer stop here, skip/protect edit it. */
import type { Planned, Stop } from "../attempt.ts";
import type { EngineDeps } from "../ports.ts";

/** Judges the plan by the sync rules (and the prune guards' holds), keeping every verdict for the entry. */
export function judgePlan(deps: EngineDeps, a: Planned): Stop | undefined {
  const { policy } = deps;
  const { holds } = a.plan;
  // The prune guards' holds are lifted through the policy's approvals; without a policy nothing lifts them.
  if (!policy) {
    if (!holds || holds.length === 0) return undefined;
    const message = holds.map((h) => `held by the prune guard: ${h.message}`).join("; ");
    return { reason: "PlanRejected", message };
  }
  const commit = a.commit ?? { sha: "", author: "", message: "", time: "" };
  const judged = policy.judge({ app: a.app, plan: a.plan, commit });
  a.plan = judged.plan;
  a.verdicts = [...judged.verdicts];
  if (!judged.blocked) return undefined;
  const kind = judged.blocked.verdict;
  if (kind === "hold" || kind === "defer") a.held = kind;
  return { reason: "PlanRejected", message: judged.blocked.message };
}
