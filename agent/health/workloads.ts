/** Rules for the apps workloads: Deployment, ReplicaSet, StatefulSet, DaemonSet (kstatus core.go). */
import type { KubeObject } from "../object/object.ts";
import {
  conditionsOf,
  describeCondition,
  field,
  findCondition,
  hasInt,
  intField,
  stringField,
  withDetail,
} from "./fields.ts";
import { current, failed, type HealthResult, inProgress } from "./result.ts";

/** Math.MaxInt32: the controller's "no progress deadline" value. */
const NO_DEADLINE = 2147483647;

/** "; ReplicaFailure: reason: message" when a ReplicaFailure=True condition explains missing pods. */
function replicaFailureSuffix(obj: KubeObject): string {
  const c = findCondition(conditionsOf(obj), "ReplicaFailure", "True");
  return c ? `; ReplicaFailure: ${describeCondition(c) || "check the pods"}` : "";
}

/** Deployment: failed past its progress deadline, otherwise counts and the Progressing/Available conditions. */
export function checkDeployment(obj: KubeObject): HealthResult {
  const conditions = conditionsOf(obj);
  const progressingCond = findCondition(conditions, "Progressing");
  if (progressingCond?.reason === "ProgressDeadlineExceeded") {
    return failed(withDetail("Progress deadline exceeded", progressingCond.message), progressingCond.reason);
  }
  const spec = intField(obj, "spec.replicas", 1);
  const replicas = intField(obj, "status.replicas", 0);
  const updated = intField(obj, "status.updatedReplicas", 0);
  const ready = intField(obj, "status.readyReplicas", 0);
  const available = intField(obj, "status.availableReplicas", 0);

  if (field(obj, "spec.paused") === true) {
    return current(`Deployment is paused (${updated}/${spec} replicas updated, ${ready}/${spec} ready)`);
  }
  if (spec === 0 && replicas === 0) return current("Deployment is scaled to zero");
  const failure = replicaFailureSuffix(obj);
  if (spec > replicas) return inProgress(`${replicas}/${spec} replicas created${failure}`);
  if (spec > updated) return inProgress(`${updated}/${spec} replicas updated${failure}`);
  if (replicas > spec) return inProgress(`${replicas - spec} old replicas pending termination`);
  if (updated > available) return inProgress(`${available}/${updated} updated replicas available`);
  if (spec > ready) return inProgress(`${ready}/${spec} replicas ready`);

  const noDeadline = intField(obj, "spec.progressDeadlineSeconds", NO_DEADLINE) === NO_DEADLINE;
  const progressing =
    noDeadline || (progressingCond?.status === "True" && progressingCond.reason === "NewReplicaSetAvailable");
  if (!progressing) {
    return inProgress(
      withDetail(
        "New ReplicaSet not yet available",
        progressingCond ? describeCondition(progressingCond) : "",
      ),
    );
  }
  const availableCond = findCondition(conditions, "Available");
  if (availableCond?.status !== "True") {
    return inProgress(
      withDetail("Deployment not Available", availableCond ? describeCondition(availableCond) : ""),
    );
  }
  return current(`Deployment is available. Replicas: ${replicas}`);
}

/** ReplicaSet: a ReplicaFailure condition, then labelled/available/ready counts. */
export function checkReplicaSet(obj: KubeObject): HealthResult {
  const failure = findCondition(conditionsOf(obj), "ReplicaFailure", "True");
  if (failure) return inProgress(withDetail("Replica failure, check the pods", describeCondition(failure)));
  const spec = intField(obj, "spec.replicas", 1);
  const replicas = intField(obj, "status.replicas", 0);
  const ready = intField(obj, "status.readyReplicas", 0);
  const available = intField(obj, "status.availableReplicas", 0);
  const labelled = intField(obj, "status.fullyLabeledReplicas", 0);
  if (spec > labelled) return inProgress(`${labelled}/${spec} replicas fully labelled`);
  if (spec > available) return inProgress(`${available}/${spec} replicas available`);
  if (spec > ready) return inProgress(`${ready}/${spec} replicas ready`);
  if (replicas > spec) return inProgress(`${replicas - spec} old replicas pending termination`);
  return current(
    spec === 0 ? "ReplicaSet is scaled to zero" : `ReplicaSet is available. Replicas: ${replicas}`,
  );
}

/** StatefulSet: OnDelete is user-managed; otherwise counts, the partition, and current vs update revision. */
export function checkStatefulSet(obj: KubeObject): HealthResult {
  if (stringField(obj, "spec.updateStrategy.type", "") === "OnDelete") {
    return current("StatefulSet uses the OnDelete update strategy");
  }
  const spec = intField(obj, "spec.replicas", 1);
  const replicas = intField(obj, "status.replicas", 0);
  const ready = intField(obj, "status.readyReplicas", 0);
  const currentReplicas = intField(obj, "status.currentReplicas", 0);
  const updated = intField(obj, "status.updatedReplicas", 0);
  if (spec === 0 && replicas === 0) return current("StatefulSet is scaled to zero");
  if (spec > replicas) return inProgress(`${replicas}/${spec} replicas created`);
  if (spec > ready) return inProgress(`${ready}/${spec} replicas ready`);
  if (replicas > spec) return inProgress(`${replicas - spec} old replicas pending termination`);

  const partitionPath = "spec.updateStrategy.rollingUpdate.partition";
  if (hasInt(obj, partitionPath)) {
    const target = spec - intField(obj, partitionPath, 0);
    if (updated < target) return inProgress(`Partitioned rollout: ${updated}/${target} replicas updated`);
    return current(`Partitioned rollout complete: ${updated} replicas updated`);
  }
  if (spec > currentReplicas)
    return inProgress(`${currentReplicas}/${spec} replicas at the current revision`);
  const currentRevision = stringField(obj, "status.currentRevision", "");
  const updateRevision = stringField(obj, "status.updateRevision", "");
  if (currentRevision !== updateRevision) {
    return inProgress(
      `Waiting for update revision ${updateRevision || "(none)"} to become current (current revision ${currentRevision || "(none)"})`,
    );
  }
  return current(`All replicas scheduled as expected. Replicas: ${replicas}`);
}

/** DaemonSet: needs observed generation, then desired vs scheduled/updated/available/ready pods. */
export function checkDaemonSet(obj: KubeObject): HealthResult {
  if (!hasInt(obj, "metadata.generation")) return inProgress("DaemonSet metadata.generation not found");
  if (!hasInt(obj, "status.observedGeneration"))
    return inProgress("DaemonSet status.observedGeneration not found");
  const desired = intField(obj, "status.desiredNumberScheduled", -1);
  if (desired === -1) return inProgress("Missing .status.desiredNumberScheduled");
  const scheduled = intField(obj, "status.currentNumberScheduled", 0);
  const updated = intField(obj, "status.updatedNumberScheduled", 0);
  const available = intField(obj, "status.numberAvailable", 0);
  const ready = intField(obj, "status.numberReady", 0);
  if (desired > scheduled) return inProgress(`${scheduled}/${desired} pods scheduled`);
  if (desired > updated) return inProgress(`${updated}/${desired} pods updated`);
  if (desired > available) return inProgress(`${available}/${desired} pods available`);
  if (desired > ready) return inProgress(`${ready}/${desired} pods ready`);
  return current(`All replicas scheduled as expected. Replicas: ${desired}`);
}
