/** Rules for core and policy kinds: Service, PersistentVolumeClaim, Namespace, PodDisruptionBudget. */
import type { KubeObject } from "../object/object.ts";
import { arrayField, stringField } from "./fields.ts";
import { current, failed, type HealthResult, inProgress, terminating } from "./result.ts";

/** Kinds that are ready as soon as they exist (ConfigMap, Secret, CronJob in kstatus). */
export function alwaysReady(_obj: KubeObject): HealthResult {
  return current("Resource is always ready");
}

/** Service: a LoadBalancer needs a cluster IP and a status.loadBalancer.ingress entry; others are ready. */
export function checkService(obj: KubeObject): HealthResult {
  if (stringField(obj, "spec.type", "ClusterIP") !== "LoadBalancer") return current("Service is ready");
  if (stringField(obj, "spec.clusterIP", "") === "") {
    return inProgress("ClusterIP not set. Service type: LoadBalancer");
  }
  const ingress = arrayField(obj, "status.loadBalancer.ingress");
  if (ingress.length === 0)
    return inProgress("Waiting for the load balancer to get an ingress IP or hostname");
  const first = ingress[0];
  const address = stringField(first, "ip", "") || stringField(first, "hostname", "");
  return current(address ? `Service is ready. Load balancer ingress: ${address}` : "Service is ready");
}

/** PersistentVolumeClaim: Bound → Current, Lost → Failed, anything else InProgress. */
export function checkPersistentVolumeClaim(obj: KubeObject): HealthResult {
  const phase = stringField(obj, "status.phase", "unknown");
  if (phase === "Bound") return current("PVC is Bound");
  if (phase === "Lost") return failed("PVC is Lost: its PersistentVolume no longer exists");
  return inProgress(`PVC is not Bound. phase: ${phase}`);
}

/** Namespace: phase Terminating → Terminating, otherwise Current. */
export function checkNamespace(obj: KubeObject): HealthResult {
  const phase = stringField(obj, "status.phase", "");
  if (phase === "Terminating") return terminating("Namespace is terminating");
  return current(phase ? `Namespace is ${phase}` : "Namespace is current");
}

/** PodDisruptionBudget: Current once its generation is observed (checked generically). */
export function checkPodDisruptionBudget(_obj: KubeObject): HealthResult {
  return current("AllowedDisruptions has been computed");
}
