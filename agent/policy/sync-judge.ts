/**
 * Sync rules judged against a Plan before anything is written. deny/hold/defer stop the sync
 * (nothing applied); skip leaves one object out; protect keeps an object from being pruned or deleted.
 * A rule that fails to evaluate denies (fail closed), naming the rule.
 */
import { toCel } from "../cel/cel.ts";
import { messageOf } from "../object/errors.ts";
import type { Action, CommitInfo } from "../object/object.ts";
import type { Plan, PlannedChange } from "../plan/plan.ts";
import type { SyncRule, VerdictKind } from "./rule-file.ts";

/** The rule name of the prune guards' holds (built in, not from a rule file). */
export const PRUNE_GUARD = "prune-guard";

/** One rule's verdict, with where the rule was written. */
export interface Verdict {
  rule: string;
  verdict: VerdictKind | "error";
  /** The object, for change-scoped rules. */
  subject?: string;
  message: string;
  /** `file:line` of the rule. */
  at: string;
  /** Who approved the hold (or window override) that lifted this verdict. */
  approvedBy?: string;
}

/** An operator's approval of this app at this revision (Ledger.approvalFor). */
export interface ApprovalGrant {
  by: string;
  expiresAt: string;
  /** Also lifts defer verdicts (an emergency sync outside the window). */
  overrideWindow: boolean;
}

/** What the judge needs besides the rules. */
export interface JudgeInput {
  app: { name: string; namespace?: string };
  plan: Plan;
  commit?: CommitInfo;
  now: Date;
  /** An unexpired approval of the app at the plan's revision: it lifts hold (and, if so marked, defer). */
  approval?: ApprovalGrant;
}

/** The outcome: verdicts, the plan with skip/protect applied, and why the sync is blocked (if it is). */
export interface Judgement {
  verdicts: Verdict[];
  plan: Plan;
  blocked?: { verdict: "deny" | "hold" | "defer" | "error"; message: string };
}

/** The `change` variable of one planned change. */
function changeVariable(c: PlannedChange): Record<string, unknown> {
  return {
    action: c.action,
    object: c.desired ??
      c.live ?? { apiVersion: c.ref.version, kind: c.ref.kind, metadata: { name: c.ref.name } },
    live: c.live ?? null,
    diff: c.diff.map((d) => d.path),
    subject: c.subject,
    id: c.id,
  };
}

/** The variables shared by every rule of one sync. */
export function planVariables(input: JudgeInput): Record<string, unknown> {
  const byAction: Record<string, number> = {};
  const byKind: Record<string, number> = {};
  for (const c of input.plan.changes) {
    byAction[c.action] = (byAction[c.action] ?? 0) + 1;
    if (c.action !== "unchanged") byKind[c.ref.kind] = (byKind[c.ref.kind] ?? 0) + 1;
  }
  return {
    plan: toCel({ changes: input.plan.changes.map(changeVariable), counts: { byAction, byKind } }),
    commit: toCel(input.commit ?? { sha: "", author: "", message: "", time: "" }),
    app: toCel({ name: input.app.name, namespace: input.app.namespace ?? "" }),
    now: input.now,
  };
}

/** Evaluates the rules over a plan and returns the verdicts and the edited plan. */
export function judgePlan(rules: readonly SyncRule[], input: JudgeInput): Judgement {
  const verdicts: Verdict[] = [];
  const mine = rules.filter((r) => !r.apps || r.apps.includes(input.app.name));
  // The plan as CEL copies every object planned: only worth it when a rule will read it.
  const shared = mine.length > 0 ? planVariables(input) : {};
  const changes = input.plan.changes.map((c) => ({ ...c }));
  const run = (rule: SyncRule, vars: Record<string, unknown>, subject?: string): boolean => {
    const at = `${rule.source.file}:${rule.source.line}`;
    try {
      const v = rule.when.evaluate(vars);
      if (typeof v !== "boolean") throw new Error(`returned ${typeof v}, not a bool`);
      return v;
    } catch (err) {
      verdicts.push({
        rule: rule.name,
        verdict: "error",
        ...(subject ? { subject } : {}),
        message: `rule ${rule.name} at ${at} failed${subject ? ` on ${subject}` : ""}: ${messageOf(err)}`,
        at,
      });
      return false;
    }
  };
  for (const rule of mine) {
    const at = `${rule.source.file}:${rule.source.line}`;
    if (rule.scope === "plan") {
      if (run(rule, shared))
        verdicts.push({ rule: rule.name, verdict: rule.verdict, message: rule.message, at });
      continue;
    }
    for (const c of changes) {
      if (c.action === "unchanged" || c.action === "skipped") continue;
      const vars = { ...shared, change: toCel(changeVariable(c)) };
      if (!run(rule, vars, c.subject)) continue;
      verdicts.push({
        rule: rule.name,
        verdict: rule.verdict,
        subject: c.subject,
        message: rule.message,
        at,
      });
      if (rule.verdict === "skip") {
        c.note = `skipped by rule ${rule.name} at ${at}: ${rule.message}`;
        if (c.action === "created") delete c.desired;
        c.action = "skipped";
      } else if (rule.verdict === "protect" && c.action === "deleted") {
        c.note = `protected by rule ${rule.name} at ${at}: ${rule.message}`;
        c.action = "skipped";
      }
    }
  }
  // The prune guards' holds (agent/plan/prune-guard.ts) join the verdicts, so one approval path lifts them.
  const unapprovable = new Set<Verdict>();
  const deleting = new Set(changes.filter((c) => c.action === "deleted").map((c) => c.id));
  for (const h of input.plan.holds ?? []) {
    if (h.id && !deleting.has(h.id)) continue; // a rule protected or skipped it: nothing to hold

    const v: Verdict = {
      rule: PRUNE_GUARD,
      verdict: "hold",
      subject: h.subject,
      message: h.message,
      at: "built-in",
    };
    if (!h.approvable) unapprovable.add(v);
    verdicts.push(v);
  }
  // An approval lifts holds (and, as an override, deferrals); the verdict stays recorded with who approved.
  const approval = input.approval;
  if (approval) {
    for (const v of verdicts) {
      if (unapprovable.has(v)) continue;
      if (v.verdict === "hold" || (v.verdict === "defer" && approval.overrideWindow)) {
        v.approvedBy = approval.by;
        v.message = `${v.message} (${v.verdict === "defer" ? "window overridden" : "approved"} by ${approval.by}, until ${approval.expiresAt})`;
      }
    }
  }
  const summary = { created: 0, configured: 0, unchanged: 0, deleted: 0, skipped: 0 } as Record<
    Action,
    number
  >;
  for (const c of changes) summary[c.action]++;
  const judgement: Judgement = { verdicts, plan: { ...input.plan, changes, summary } };
  for (const kind of ["error", "deny", "hold", "defer"] as const) {
    const hits = verdicts.filter((v) => v.verdict === kind && v.approvedBy === undefined);
    if (hits.length === 0) continue;
    const word = {
      error: "rule failed",
      deny: "denied by rule",
      hold: "held for approval by rule",
      defer: "deferred by rule",
    }[kind];
    const how = {
      error: "",
      deny: "",
      hold: ` — approve with: berth approve --app ${input.app.name} --revision ${input.plan.revision}`,
      defer: ` — outside a sync window; it runs when the window opens, or now with: berth approve --app ${input.app.name} --revision ${input.plan.revision} --override-window`,
    }[kind];
    const message =
      hits
        .map((v) =>
          kind === "error"
            ? v.message
            : v.rule === PRUNE_GUARD
              ? `held by the prune guard: ${v.message}`
              : `${word} ${v.rule} at ${v.at}${v.subject ? ` (${v.subject})` : ""}: ${v.message}`,
        )
        .join("; ") + how;
    judgement.blocked = { verdict: kind, message };
    break;
  }
  return judgement;
}
