/**
 * Health assessment with kstatus semantics (kubernetes-sigs/cli-utils pkg/kstatus/status): a pure
 * function of one live object. Generic checks (deletion, observed generation, Reconciling/Stalled)
 * come first, then the rule of the object's group/kind, then the Ready condition, then Current.
 */
import type { HealthAssessor } from "../object/health.ts";
import { type KubeObject, splitApiVersion } from "../object/object.ts";
import {
  alwaysReady,
  checkNamespace,
  checkPersistentVolumeClaim,
  checkPodDisruptionBudget,
  checkService,
} from "./core.ts";
import { checkCustomResourceDefinition } from "./crd.ts";
import { checkGeneric, checkReadyCondition } from "./generic.ts";
import { checkJob } from "./job.ts";
import { checkPod } from "./pod.ts";
import { current, type HealthResult, type KindCheck } from "./result.ts";
import { checkDaemonSet, checkDeployment, checkReplicaSet, checkStatefulSet } from "./workloads.ts";

export type { HealthAssessor } from "../object/health.ts";
export type { CheckContext, HealthResult, KindCheck } from "./result.ts";

/** Options of assessHealth; `now` (epoch ms, default Date.now()) only matters for a Pod's schedule window. */
export interface AssessOptions {
  now?: number;
}

/** The built-in rules by "group/Kind" ("Kind" for the core group), as kstatus's legacyTypes. */
export const kindChecks: Readonly<Record<string, KindCheck>> = {
  Service: checkService,
  Pod: checkPod,
  Secret: alwaysReady,
  ConfigMap: alwaysReady,
  PersistentVolumeClaim: checkPersistentVolumeClaim,
  Namespace: checkNamespace,
  "apps/StatefulSet": checkStatefulSet,
  "apps/DaemonSet": checkDaemonSet,
  "extensions/DaemonSet": checkDaemonSet,
  "apps/Deployment": checkDeployment,
  "extensions/Deployment": checkDeployment,
  "apps/ReplicaSet": checkReplicaSet,
  "extensions/ReplicaSet": checkReplicaSet,
  "policy/PodDisruptionBudget": checkPodDisruptionBudget,
  "batch/CronJob": alwaysReady,
  "batch/Job": checkJob,
  "apiextensions.k8s.io/CustomResourceDefinition": checkCustomResourceDefinition,
};

/** The built-in rule for an object's group and kind, if there is one. */
export function kindCheckFor(obj: KubeObject): KindCheck | undefined {
  const { group } = splitApiVersion(obj.apiVersion);
  const key = group === "" ? obj.kind : `${group}/${obj.kind}`;
  return Object.hasOwn(kindChecks, key) ? kindChecks[key] : undefined;
}

/** The kstatus health of one live object and the reason for it. */
export function assessHealth(obj: KubeObject, options: AssessOptions = {}): HealthResult {
  const generic = checkGeneric(obj);
  if (generic) return generic;
  const check = kindCheckFor(obj);
  if (check) return check(obj, { now: options.now ?? Date.now() });
  return checkReadyCondition(obj) ?? current("Resource is current");
}

/** The built-in assessor: assessHealth with the current time. */
export const defaultHealthChecker: HealthAssessor = {
  assess: (obj) => assessHealth(obj),
};
