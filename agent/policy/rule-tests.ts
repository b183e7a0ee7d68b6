/**
 * Rule fixture tests (`berth rules test`): YAML files of objects with their expected health and of plans
 * with their expected verdicts, run against rule files so a rule change is checked in CI before it ships.
 *
 *   rules: [policy.yaml]          # relative to the fixture file; the built-in packs are added unless builtins: false
 *   cases:
 *     - name: ready deployment
 *       object: { apiVersion: apps/v1, kind: Deployment, ... }
 *       health: Current           # and optionally message: a substring of the health message
 *     - name: no secrets outside home
 *       app: web
 *       now: "2025-01-01T03:00:00Z"
 *       changes: [{ action: created, object: {...} }]
 *       verdicts: [{ rule: secrets-stay-home, verdict: deny }]
 *       blocked: deny             # or hold, defer, error, false
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse } from "yaml";
import { BerthError, messageOf } from "../object/errors.ts";
import type { HealthAssessor } from "../object/health.ts";
import { type Action, type KubeObject, objectId, refOf, subject } from "../object/object.ts";
import { stageOf } from "../object/order.ts";
import type { Plan, PlannedChange } from "../plan/plan.ts";
import { RuleHealthJudge } from "./health-rules.ts";
import { RuleSet } from "./rule-set.ts";
import { judgePlan } from "./sync-judge.ts";

/** One case's outcome. */
export interface CaseResult {
  file: string;
  name: string;
  ok: boolean;
  /** What differed, when not ok. */
  problems: string[];
}

interface ExpectedVerdict {
  rule: string;
  verdict: string;
  subject?: string;
}

interface FixtureCase {
  name?: unknown;
  object?: unknown;
  health?: unknown;
  message?: unknown;
  app?: unknown;
  now?: unknown;
  commit?: unknown;
  changes?: unknown;
  verdicts?: unknown;
  blocked?: unknown;
}

/** Runs every case of one fixture file; throws a BerthError naming the file when it cannot be read or is malformed. */
export function runRuleTests(file: string, fallback: HealthAssessor): CaseResult[] {
  let doc: { rules?: unknown; builtins?: unknown; cases?: unknown };
  try {
    doc = (parse(readFileSync(file, "utf8"), { maxAliasCount: 100 }) ?? {}) as typeof doc;
  } catch (cause) {
    throw new BerthError(`cannot read the rule test file: ${messageOf(cause)}`, { subject: file, cause });
  }
  if (!Array.isArray(doc.cases) || doc.cases.length === 0)
    throw new BerthError("cases: expected a non-empty list of test cases", { subject: file });
  const ruleFiles = Array.isArray(doc.rules) ? doc.rules.map((r) => resolve(dirname(file), String(r))) : [];
  const rules = RuleSet.load(ruleFiles, { builtins: doc.builtins !== false });
  const judge = new RuleHealthJudge(() => rules.health, fallback);
  return (doc.cases as FixtureCase[]).map((c, i) => {
    const name = typeof c.name === "string" ? c.name : `case ${i + 1}`;
    const problems: string[] = [];
    try {
      if (c.object !== undefined) checkHealth(c, judge, problems);
      else if (c.changes !== undefined) checkVerdicts(c, rules, problems);
      else problems.push("a case needs `object` (a health case) or `changes` (a sync rule case)");
    } catch (err) {
      problems.push(messageOf(err));
    }
    return { file, name, ok: problems.length === 0, problems };
  });
}

function checkHealth(c: FixtureCase, judge: RuleHealthJudge, problems: string[]): void {
  const obj = asObject(c.object, "object");
  const got = judge.assess(obj);
  if (typeof c.health !== "string") problems.push("health: expected the status this object should have");
  else if (got.status !== c.health)
    problems.push(`health: expected ${c.health}, got ${got.status} (${got.message})`);
  if (typeof c.message === "string" && !got.message.includes(c.message))
    problems.push(`message: expected it to contain "${c.message}", got "${got.message}"`);
}

function checkVerdicts(c: FixtureCase, rules: RuleSet, problems: string[]): void {
  if (!Array.isArray(c.changes)) throw new Error("changes: expected a list");
  const changes: PlannedChange[] = c.changes.map((raw, i) => changeOf(raw, i));
  const summary = { created: 0, configured: 0, unchanged: 0, deleted: 0, skipped: 0 } as Record<
    Action,
    number
  >;
  for (const ch of changes) summary[ch.action]++;
  const app = typeof c.app === "string" ? c.app : "app";
  const plan: Plan = { app, revision: "test", changes, errors: [], summary };
  const now = typeof c.now === "string" ? new Date(c.now) : new Date();
  if (Number.isNaN(now.getTime())) throw new Error(`now: "${String(c.now)}" is not an ISO 8601 time`);
  const judged = judgePlan(rules.sync, {
    app: { name: app },
    plan,
    now,
    ...(c.commit && typeof c.commit === "object"
      ? { commit: { sha: "", author: "", message: "", time: "", ...(c.commit as object) } }
      : {}),
  });
  if (c.verdicts !== undefined) {
    if (!Array.isArray(c.verdicts)) throw new Error("verdicts: expected a list of {rule, verdict}");
    const want = (c.verdicts as ExpectedVerdict[]).map(
      (v) => `${v.rule}=${v.verdict}${v.subject ? `@${v.subject}` : ""}`,
    );
    const got = judged.verdicts.map(
      (v) => `${v.rule}=${v.verdict}${want.some((w) => w.includes("@")) && v.subject ? `@${v.subject}` : ""}`,
    );
    const key = (l: string[]) => [...l].sort().join(", ");
    if (key(want) !== key(got))
      problems.push(`verdicts: expected [${key(want)}], got [${key(got)}]${errorsOf(judged.verdicts)}`);
  }
  if (c.blocked !== undefined) {
    const got = judged.blocked?.verdict ?? false;
    if (got !== c.blocked)
      problems.push(`blocked: expected ${String(c.blocked)}, got ${String(got)}${errorsOf(judged.verdicts)}`);
  }
}

function errorsOf(verdicts: ReadonlyArray<{ verdict: string; message: string }>): string {
  const errors = verdicts.filter((v) => v.verdict === "error").map((v) => v.message);
  return errors.length > 0 ? ` (${errors.join("; ")})` : "";
}

function changeOf(raw: unknown, i: number): PlannedChange {
  const c = raw as { action?: unknown; object?: unknown; live?: unknown; diff?: unknown };
  const actions = ["created", "configured", "unchanged", "deleted", "skipped"];
  const action = typeof c.action === "string" ? c.action : "created";
  if (!actions.includes(action))
    throw new Error(`changes[${i}].action: expected one of ${actions.join(", ")}`);
  const obj = asObject(c.object ?? c.live, `changes[${i}].object`);
  const ref = refOf(obj);
  const change: PlannedChange = {
    id: objectId(ref),
    ref,
    subject: subject(ref),
    action: action as Action,
    stage: stageOf(ref),
    diff: Array.isArray(c.diff)
      ? c.diff.map((p) => ({ path: String(p) }) as PlannedChange["diff"][number])
      : [],
    owned: action !== "created",
  };
  if (action !== "deleted") change.desired = obj;
  if (c.live !== undefined) change.live = asObject(c.live, `changes[${i}].live`);
  else if (action === "deleted") change.live = obj;
  return change;
}

function asObject(v: unknown, field: string): KubeObject {
  const o = v as KubeObject | undefined;
  if (!o || typeof o !== "object" || typeof o.apiVersion !== "string" || typeof o.kind !== "string")
    throw new Error(`${field}: expected a Kubernetes object with apiVersion and kind`);
  o.metadata ??= { name: "" };
  return o;
}
