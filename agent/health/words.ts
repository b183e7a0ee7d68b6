/**
 * What an object that is not ready yet is waiting for, in plain words ("2 of 3 replicas ready", "not bound
 * yet"): the progress lines of a health wait. Only for objects still in progress; a verdict keeps its message.
 */
import type { KubeObject } from "../object/object.ts";
import { conditionsOf, field, findCondition, intField, stringField } from "./fields.ts";

export function waitingWords(obj: KubeObject): string | undefined {
  const want = intField(obj, "spec.replicas", 1);
  const replicas = (what: string, have: number, of = want) => `${have} of ${of} replicas ${what}`;
  switch (obj.kind) {
    case "Deployment":
    case "StatefulSet":
    case "ReplicaSet": {
      const updated = intField(obj, "status.updatedReplicas", intField(obj, "status.replicas", 0));
      const ready = intField(obj, "status.readyReplicas", 0);
      if (obj.kind !== "ReplicaSet" && updated < want) return replicas("updated", updated);
      if (ready < want) return replicas("ready", ready);
      const available = intField(obj, "status.availableReplicas", 0);
      if (obj.kind !== "StatefulSet" && available < want) return replicas("available", available);
      const current = intField(obj, "status.replicas", 0);
      if (current > want) return `${current - want} old replicas still terminating`;
      return undefined;
    }
    case "DaemonSet": {
      const desired = intField(obj, "status.desiredNumberScheduled", 0);
      const ready = intField(obj, "status.numberReady", 0);
      return ready < desired ? `${ready} of ${desired} pods ready` : undefined;
    }
    case "PersistentVolumeClaim": {
      const phase = stringField(obj, "status.phase", "");
      return phase === "Bound" ? undefined : `not bound yet${phase ? ` (${phase})` : ""}`;
    }
    case "Pod": {
      const phase = stringField(obj, "status.phase", "Pending");
      const ready = findCondition(conditionsOf(obj), "Ready");
      return phase === "Running"
        ? `running, not ready yet${ready?.message ? `: ${ready.message}` : ""}`
        : `${phase.toLowerCase()}`;
    }
    case "Job": {
      const completions = intField(obj, "spec.completions", 1);
      const done = intField(obj, "status.succeeded", 0);
      return `${done} of ${completions} completions`;
    }
    case "Service":
      return field(obj, "spec.type") === "LoadBalancer" ? "no load balancer address yet" : undefined;
    default: {
      const ready = findCondition(conditionsOf(obj), "Ready");
      if (ready && ready.status !== "True")
        return `not ready yet${ready.reason ? ` (${ready.reason}${ready.message ? `: ${ready.message}` : ""})` : ""}`;
      return undefined;
    }
  }
}
