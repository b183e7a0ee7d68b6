/**
 * Health rules, Flux healthCheckExprs semantics: deletion → Terminating, then the observedGeneration
 * check, then inProgress → failed → current of the best-matching rule; none true → InProgress.
 * A kind-specific rule beats a group-wide one, which beats a "*" rule; user rules beat built-ins.
 */

import { toCel } from "../cel/cel.ts";
import { messageOf } from "../object/errors.ts";
import type { HealthAssessor, HealthResult } from "../object/health.ts";
import {
  type HealthStatus,
  type KubeObject,
  refOf,
  splitApiVersion,
  subject as subjectOf,
} from "../object/object.ts";
import type { HealthRule } from "./rule-file.ts";

/** A health verdict: status, reason word and the message a user reads. */
export type HealthVerdict = HealthResult;

/** Picks per rule list and group/kind, cached: a RuleSet keeps one array until it reloads. */
const picks = new WeakMap<readonly HealthRule[], Map<string, HealthRule | null>>();

/** Picks the rule for an object: kind-specific, then group-wide, then "*"; user before built-in. */
export function ruleFor(rules: readonly HealthRule[], obj: KubeObject): HealthRule | undefined {
  const { group } = splitApiVersion(obj.apiVersion);
  let cache = picks.get(rules);
  if (!cache) {
    cache = new Map();
    picks.set(rules, cache);
  }
  const key = `${group}/${obj.kind}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit ?? undefined;
  const picked = pickRule(rules, group, obj.kind);
  if (cache.size < 10_000) cache.set(key, picked ?? null);
  return picked;
}

function pickRule(rules: readonly HealthRule[], group: string, kind: string): HealthRule | undefined {
  let best: HealthRule | undefined;
  let bestScore = -1;
  for (const r of rules) {
    if (r.group !== "*" && r.group !== group) continue;
    if (r.kind !== undefined && r.kind !== kind) continue;
    const score = (r.kind !== undefined ? 4 : r.group !== "*" ? 2 : 0) + (r.builtin ? 0 : 1);
    if (score > bestScore) {
      best = r;
      bestScore = score;
    }
  }
  return best;
}

/** The variables of a health expression: the object's top-level fields (status defaults to {}) and self. */
export function healthVariables(obj: KubeObject): Record<string, unknown> {
  const cel = toCel(obj) as Record<string, unknown>;
  return { status: {}, spec: {}, ...cel, self: cel };
}

/** Evaluates one rule on one object; an evaluation error is Unknown, naming the rule and the object. */
export function evaluateHealthRule(rule: HealthRule, obj: KubeObject): HealthVerdict {
  const who = subjectOf(refOf(obj));
  const deletion = obj.metadata.deletionTimestamp;
  if (typeof deletion === "string" && deletion !== "") {
    return { status: "Terminating", reason: "Terminating", message: "Resource scheduled for deletion" };
  }
  const status = obj.status as Record<string, unknown> | undefined;
  const observed = status?.observedGeneration;
  const generation = obj.metadata.generation;
  if (typeof observed === "number" && typeof generation === "number" && observed !== generation) {
    return {
      status: "InProgress",
      reason: "LatestGenerationNotObserved",
      message: `${obj.kind} generation ${generation} not yet observed by its controller (latest observed generation is ${observed})`,
    };
  }
  const vars = healthVariables(obj);
  const steps: Array<[keyof HealthRule & ("inProgress" | "failed" | "current"), HealthStatus, string]> = [
    ["inProgress", "InProgress", "Progressing"],
    ["failed", "Failed", "Failed"],
    ["current", "Current", "Current"],
  ];
  for (const [field, verdict, reason] of steps) {
    const program = rule[field];
    if (!program) continue;
    let value: unknown;
    try {
      value = program.evaluate(vars);
    } catch (err) {
      return {
        status: "Unknown",
        reason: "Unknown",
        message: `health rule ${rule.name} (${rule.source.file}:${rule.source.line}), ${field} on ${who}: ${messageOf(err)}`,
      };
    }
    if (value === true)
      return { status: verdict, reason, message: `${field} of health rule ${rule.name} is true` };
    if (typeof value !== "boolean") {
      return {
        status: "Unknown",
        reason: "Unknown",
        message: `health rule ${rule.name}, ${field} on ${who}: returned ${typeof value}, not a bool`,
      };
    }
  }
  return {
    status: "InProgress",
    reason: "Progressing",
    message: `no condition of health rule ${rule.name} is true yet`,
  };
}

/** A HealthAssessor that uses CEL rules where one matches and the fallback (the kstatus checks) otherwise. */
export class RuleHealthJudge implements HealthAssessor {
  constructor(
    private readonly rules: () => readonly HealthRule[],
    private readonly fallback: HealthAssessor,
  ) {}

  /**
   * Current verdicts by object, with the rules that gave them: a watch view hands the same object until it
   * changes, so a resync of healthy objects evaluates nothing. (Only Current: a Pod's pending verdict moves
   * with the clock.)
   */
  private readonly current = new WeakMap<
    KubeObject,
    { rules: readonly HealthRule[]; verdict: HealthVerdict }
  >();

  /** The health of one live object. */
  assess(obj: KubeObject): HealthVerdict {
    const rules = this.rules();
    const known = this.current.get(obj);
    if (known?.rules === rules) return known.verdict;
    const verdict = this.judge(rules, obj);
    if (verdict.status === "Current") this.current.set(obj, { rules, verdict });
    return verdict;
  }

  private judge(rules: readonly HealthRule[], obj: KubeObject): HealthVerdict {
    const rule = ruleFor(rules, obj);
    const verdict = rule ? evaluateHealthRule(rule, obj) : this.fallback.assess(obj);
    // "no condition of health rule apps-deployment is true yet" says nothing to a reader: say what it waits for.
    if (verdict.status !== "InProgress" || !this.fallback.describe) return verdict;
    const words = this.fallback.describe(obj) ?? (rule ? this.fallback.assess(obj) : undefined);
    if (typeof words === "string") return { ...verdict, message: words };
    return words?.status === "InProgress" ? { ...verdict, message: words.message } : verdict;
  }
}
