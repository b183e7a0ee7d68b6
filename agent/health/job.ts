/** The batch rules: Job (kstatus jobConditions, but a running Job is InProgress) and CronJob. */
import type { KubeObject } from "../object/object.ts";
import { conditionsOf, describeCondition, intField, stringField, withDetail } from "./fields.ts";
import { current, failed, type HealthResult, inProgress } from "./result.ts";

/** Job: Complete → Current, Failed/FailureTarget → Failed, Suspended → Current, otherwise InProgress. */
export function checkJob(obj: KubeObject): HealthResult {
  const parallelism = intField(obj, "spec.parallelism", 1);
  const completions = intField(obj, "spec.completions", parallelism);
  const succeeded = intField(obj, "status.succeeded", 0);
  const active = intField(obj, "status.active", 0);
  const failedPods = intField(obj, "status.failed", 0);
  for (const c of conditionsOf(obj)) {
    if (c.status !== "True") continue;
    if (c.type === "Complete") return current(`Job completed: ${succeeded}/${completions} succeeded`);
    if (c.type === "Failed" || c.type === "FailureTarget") {
      return failed(
        withDetail(`Job failed (${failedPods} failed pods)`, describeCondition(c)),
        c.reason || "Failed",
      );
    }
    if (c.type === "Suspended") return current("Job is suspended");
  }
  if (stringField(obj, "status.startTime", "") === "") return inProgress("Job not started");
  return inProgress(
    `Job in progress: ${succeeded}/${completions} succeeded, ${active} active, ${failedPods} failed`,
  );
}
