/** The Pod rule (kstatus podConditions), with the waiting/terminated container reasons in the message. */
import type { KubeObject } from "../object/object.ts";
import {
  arrayField,
  conditionsOf,
  describeCondition,
  field,
  findCondition,
  stringField,
  withDetail,
} from "./fields.ts";
import { type CheckContext, current, failed, type HealthResult, inProgress, unknown } from "./result.ts";

/** How long a pod may stay unschedulable before it is reported Failed (kstatus ScheduleWindow). */
export const SCHEDULE_WINDOW_MS = 15_000;

/** Both init and regular container statuses. */
function containerStatuses(obj: KubeObject): unknown[] {
  return [...arrayField(obj, "status.initContainerStatuses"), ...arrayField(obj, "status.containerStatuses")];
}

/** Names of containers waiting in CrashLoopBackOff. */
function crashLooping(obj: KubeObject): string[] {
  return containerStatuses(obj)
    .filter((cs) => stringField(cs, "state.waiting.reason", "") === "CrashLoopBackOff")
    .map((cs) => stringField(cs, "name", "?"));
}

/** "container app: ImagePullBackOff (message)" for each waiting or failed container, joined. */
function containerReasons(obj: KubeObject): string {
  const out: string[] = [];
  for (const cs of containerStatuses(obj)) {
    const name = stringField(cs, "name", "?");
    const waiting = stringField(cs, "state.waiting.reason", "");
    const terminated = stringField(cs, "state.terminated.reason", "");
    if (waiting) {
      const msg = stringField(cs, "state.waiting.message", "");
      out.push(`container ${name}: ${waiting}${msg ? ` (${msg})` : ""}`);
    } else if (terminated && terminated !== "Completed") {
      const code = field(cs, "state.terminated.exitCode");
      out.push(`container ${name}: ${terminated}${typeof code === "number" ? ` (exit code ${code})` : ""}`);
    }
  }
  return out.join("; ");
}

/** The pod-level reason/message of status (e.g. Evicted), as "reason: message". */
function podReason(obj: KubeObject): string {
  const reason = stringField(obj, "status.reason", "");
  const message = stringField(obj, "status.message", "");
  return reason && message ? `${reason}: ${message}` : reason || message;
}

/** Pod: Succeeded/Running+Ready → Current, Failed phase or CrashLoopBackOff → Failed, else InProgress. */
export function checkPod(obj: KubeObject, ctx: CheckContext): HealthResult {
  const conditions = conditionsOf(obj);
  const phase = stringField(obj, "status.phase", "");
  switch (phase) {
    case "Succeeded":
      return current("Pod has completed successfully");
    case "Failed":
      return failed(
        withDetail("Pod has completed, but not successfully", podReason(obj) || containerReasons(obj)),
      );
    case "Running": {
      if (findCondition(conditions, "Ready", "True")) return current("Pod is Ready");
      const looping = crashLooping(obj);
      if (looping.length > 0)
        return failed(`Containers in CrashLoop state: ${looping.join(", ")}`, "CrashLoopBackOff");
      const ready = findCondition(conditions, "Ready");
      const detail = containerReasons(obj) || (ready ? describeCondition(ready) : "");
      return inProgress(withDetail("Pod is running but is not Ready", detail));
    }
    case "Pending": {
      const scheduled = findCondition(conditions, "PodScheduled", "False");
      if (scheduled?.reason === "Unschedulable") {
        const created = Date.parse(stringField(obj, "metadata.creationTimestamp", ""));
        if (!Number.isNaN(created) && ctx.now - SCHEDULE_WINDOW_MS < created) {
          return inProgress(withDetail("Pod has not been scheduled", scheduled.message));
        }
        return failed(withDetail("Pod could not be scheduled", scheduled.message), scheduled.reason);
      }
      return inProgress(withDetail("Pod is in the Pending phase", containerReasons(obj)));
    }
    case "":
      return inProgress("Pod phase not available");
    default:
      return unknown(withDetail(`Pod phase is ${phase}`, podReason(obj)));
  }
}
