/**
 * Tolerant readers for the untyped parts of a Kubernetes object (spec, status). A field that is
 * missing or has the wrong type reads as the fallback, as kstatus's GetIntField/GetStringField do.
 */

/** One entry of status.conditions, with absent strings read as "". */
export interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
}

/** The value at a dotted path ("status.replicas"), or undefined when any step is missing. */
export function field(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const key of path.split(".")) {
    if (cur === null || typeof cur !== "object" || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** The integer at a dotted path, or `fallback` when it is missing or not an integer. */
export function intField(obj: unknown, path: string, fallback: number): number {
  const value = field(obj, path);
  return typeof value === "number" && Number.isInteger(value) ? value : fallback;
}

/** Whether an integer is present at a dotted path. */
export function hasInt(obj: unknown, path: string): boolean {
  const value = field(obj, path);
  return typeof value === "number" && Number.isInteger(value);
}

/** The string at a dotted path, or `fallback` when it is missing or not a string. */
export function stringField(obj: unknown, path: string, fallback: string): string {
  const value = field(obj, path);
  return typeof value === "string" ? value : fallback;
}

/** The array at a dotted path, or [] when it is missing or not an array. */
export function arrayField(obj: unknown, path: string): unknown[] {
  const value = field(obj, path);
  return Array.isArray(value) ? value : [];
}

/** The well-formed entries of status.conditions (entries without a string type are skipped). */
export function conditionsOf(obj: unknown): Condition[] {
  const out: Condition[] = [];
  for (const item of arrayField(obj, "status.conditions")) {
    const type = stringField(item, "type", "");
    if (type === "") continue;
    out.push({
      type,
      status: stringField(item, "status", ""),
      reason: stringField(item, "reason", ""),
      message: stringField(item, "message", ""),
    });
  }
  return out;
}

/** The first condition of a type, optionally with a given status ("True", "False", "Unknown"). */
export function findCondition(conditions: Condition[], type: string, status?: string): Condition | undefined {
  return conditions.find((c) => c.type === type && (status === undefined || c.status === status));
}

/** "Reason: message" of a condition, whichever parts it has ("" when it has neither). */
export function describeCondition(c: Condition): string {
  if (c.reason && c.message) return `${c.reason}: ${c.message}`;
  return c.reason || c.message;
}

/** `base`, followed by ": detail" when there is a detail. */
export function withDetail(base: string, detail: string): string {
  return detail ? `${base}: ${detail}` : base;
}
