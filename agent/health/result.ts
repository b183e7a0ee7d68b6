/** The result type of health assessment and its constructors. */
import type { HealthStatus, KubeObject } from "../object/object.ts";

/** The kstatus verdict on one object and the reason a user reads. */
export interface HealthResult {
  status: HealthStatus;
  message: string;
}

/** Facts a check may need besides the object; `now` is epoch milliseconds. */
export interface CheckContext {
  now: number;
}

/** One kind's health rule. */
export type KindCheck = (obj: KubeObject, ctx: CheckContext) => HealthResult;

/** A Current result. */
export function current(message: string): HealthResult {
  return { status: "Current", message };
}

/** An InProgress result. */
export function inProgress(message: string): HealthResult {
  return { status: "InProgress", message };
}

/** A Failed result. */
export function failed(message: string): HealthResult {
  return { status: "Failed", message };
}

/** A Terminating result. */
export function terminating(message: string): HealthResult {
  return { status: "Terminating", message };
}

/** An Unknown result. */
export function unknown(message: string): HealthResult {
  return { status: "Unknown", message };
}
