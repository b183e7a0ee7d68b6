/**
 * Per-app drift policy: a default action (`heal` or `alert`), ignore lists of JSON pointers per kind,
 * and CEL rules deciding per object (first matching rule wins). Variables of a rule: `object`
 * (group, version, kind, namespace, name), `fields` (list of paths), `manager`, `deleted`.
 */
import { CelEnvironment, type CelProgram, toCel } from "../cel/cel.ts";
import { BerthError, messageOf } from "../object/errors.ts";
import type { DriftFinding } from "./detect.ts";

/** What berth does about one drift. */
export type DriftAction = "heal" | "alert" | "ignore";

/** The drift settings of one app, as berth.yaml gives them (normalised). */
export interface DriftConfig {
  action: "heal" | "alert";
  rules: Array<{ when: string; action: DriftAction }>;
  /** Kind → JSON pointers; a drifted field equal to or under one is not drift. */
  ignore: Record<string, string[]>;
}

/** The default: heal every drift. */
export const DEFAULT_DRIFT: DriftConfig = { action: "heal", rules: [], ignore: {} };

/** A decision about one finding, with the fields that count after the ignore list. */
export interface DriftDecision {
  action: DriftAction;
  fields: string[];
  /** Which rule decided (absent for the default), for the record. */
  rule?: string;
}

/** A compiled drift policy. */
export class DriftPolicy {
  private constructor(
    private readonly config: DriftConfig,
    private readonly rules: Array<{ program: CelProgram; action: DriftAction; name: string }>,
  ) {}

  /** Compiles the rules; a bad expression names `where` (e.g. `berth.yaml: apps[0].drift.rules[1].when`). */
  static compile(config: DriftConfig, where: string): DriftPolicy {
    const env = new CelEnvironment({
      variables: { object: "map", fields: "list", manager: "string", deleted: "bool" },
    });
    const rules = config.rules.map((r, i) => {
      try {
        return { program: env.compile(r.when, ["bool"]), action: r.action, name: `rules[${i}]` };
      } catch (err) {
        throw new BerthError(`drift rule: ${messageOf(err)}`, {
          subject: `${where}.rules[${i}].when`,
          cause: err,
        });
      }
    });
    return new DriftPolicy(config, rules);
  }

  /** Decides what to do about a finding; a rule that fails to evaluate falls back to alert (never heals blindly). */
  decide(finding: DriftFinding): DriftDecision {
    const ignored = this.config.ignore[finding.ref.kind] ?? [];
    const fields = finding.deleted
      ? finding.fields
      : finding.fields.filter((f) => !ignored.some((p) => f === p || f.startsWith(`${p}/`)));
    if (fields.length === 0) return { action: "ignore", fields };
    const vars = toCel({
      object: { ...finding.ref },
      fields,
      manager: finding.manager,
      deleted: finding.deleted,
    }) as Record<string, unknown>;
    for (const rule of this.rules) {
      try {
        if (rule.program.evaluate(vars) === true) return { action: rule.action, fields, rule: rule.name };
      } catch {
        return { action: "alert", fields, rule: `${rule.name} (evaluation failed)` };
      }
    }
    return { action: this.config.action, fields };
  }
}
