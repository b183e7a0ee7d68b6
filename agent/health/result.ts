/** The result type of health assessment and its constructors; each takes the reason word kstatus would give. */
import type { HealthResult } from "../object/health.ts";
import type { KubeObject } from "../object/object.ts";

export type { HealthResult } from "../object/health.ts";

/** Facts a check may need besides the object; `now` is epoch milliseconds. */
export interface CheckContext {
  now: number;
}

/** One kind's health rule. */
export type KindCheck = (obj: KubeObject, ctx: CheckContext) => HealthResult;

/** A Current result. */
export function current(message: string, reason = "Current"): HealthResult {
  return { status: "Current", reason, message };
}

/** An InProgress result. */
export function inProgress(message: string, reason = "Progressing"): HealthResult {
  return { status: "InProgress", reason, message };
}

/** A Failed result. */
export function failed(message: string, reason = "Failed"): HealthResult {
  return { status: "Failed", reason, message };
}

/** A Terminating result. */
export function terminating(message: string, reason = "Terminating"): HealthResult {
  return { status: "Terminating", reason, message };
}

/** An Unknown result. */
export function unknown(message: string, reason = "Unknown"): HealthResult {
  return { status: "Unknown", reason, message };
}
