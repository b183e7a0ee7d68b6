/**
 * Checks that apply to every object before (and after) the kind-specific ones, as kstatus's
 * checkGenericProperties does: deletion, observed generation, and the standard Reconciling/Stalled
 * conditions; then, for kinds without a rule of their own, the Ready condition.
 */
import type { KubeObject } from "../object/object.ts";
import {
  conditionsOf,
  describeCondition,
  field,
  findCondition,
  hasInt,
  intField,
  withDetail,
} from "./fields.ts";
import { current, failed, type HealthResult, inProgress, terminating } from "./result.ts";

/** Terminating when metadata.deletionTimestamp is set, naming the finalizers still pending. */
export function checkDeletion(obj: KubeObject): HealthResult | undefined {
  const ts = obj.metadata.deletionTimestamp;
  if (typeof ts !== "string" || ts === "") return undefined;
  const finalizers = field(obj, "metadata.finalizers");
  const names = Array.isArray(finalizers) ? finalizers.filter((f) => typeof f === "string") : [];
  const detail = names.length > 0 ? ` (waiting for finalizers: ${names.join(", ")})` : "";
  return terminating(`Resource scheduled for deletion${detail}`);
}

/** InProgress when status.observedGeneration is present and differs from metadata.generation. */
export function checkGeneration(obj: KubeObject): HealthResult | undefined {
  if (!hasInt(obj, "metadata.generation") || !hasInt(obj, "status.observedGeneration")) return undefined;
  const generation = intField(obj, "metadata.generation", 0);
  const observed = intField(obj, "status.observedGeneration", 0);
  if (observed === generation) return undefined;
  return inProgress(
    `${obj.kind} generation ${generation} not yet observed by its controller (latest observed generation is ${observed})`,
    "LatestGenerationNotObserved",
  );
}

/** InProgress on Reconciling=True, Failed on Stalled=True (the first of either in condition order). */
export function checkStandardConditions(obj: KubeObject): HealthResult | undefined {
  for (const c of conditionsOf(obj)) {
    if (c.status !== "True") continue;
    if (c.type === "Reconciling")
      return inProgress(withDetail("Reconciling", describeCondition(c)), c.reason || "Progressing");
    if (c.type === "Stalled")
      return failed(withDetail("Stalled", describeCondition(c)), c.reason || "Failed");
  }
  return undefined;
}

/** The generic checks in kstatus order; undefined when they cannot decide. */
export function checkGeneric(obj: KubeObject): HealthResult | undefined {
  return checkDeletion(obj) ?? checkGeneration(obj) ?? checkStandardConditions(obj);
}

/** For kinds without a rule: Ready=True → Current, Ready=False/Unknown → InProgress, else undefined. */
export function checkReadyCondition(obj: KubeObject): HealthResult | undefined {
  const ready = findCondition(conditionsOf(obj), "Ready");
  if (ready === undefined) return undefined;
  if (ready.status === "True") return current(withDetail("Resource is Ready", ready.message));
  return inProgress(
    withDetail(`Resource is not Ready (Ready=${ready.status || "Unknown"})`, describeCondition(ready)),
    ready.reason || "Progressing",
  );
}
