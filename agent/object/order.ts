/** The fixed apply order: definitions first, admission webhooks last; prune runs it backwards. */
import type { ObjectRef } from "./object.ts";

/** Apply stages, in order. */
export const STAGES = ["definitions", "classes", "workloads", "webhooks"] as const;
export type Stage = (typeof STAGES)[number];

const DEFINITIONS = new Set([
  "apiextensions.k8s.io/CustomResourceDefinition",
  "/Namespace",
  "rbac.authorization.k8s.io/ClusterRole",
  "rbac.authorization.k8s.io/ClusterRoleBinding",
]);
const CLASSES = new Set([
  "storage.k8s.io/StorageClass",
  "networking.k8s.io/IngressClass",
  "scheduling.k8s.io/PriorityClass",
  "node.k8s.io/RuntimeClass",
  "/ServiceAccount",
  "rbac.authorization.k8s.io/Role",
  "rbac.authorization.k8s.io/RoleBinding",
]);
const WEBHOOKS = new Set([
  "admissionregistration.k8s.io/MutatingWebhookConfiguration",
  "admissionregistration.k8s.io/ValidatingWebhookConfiguration",
  "admissionregistration.k8s.io/ValidatingAdmissionPolicy",
  "admissionregistration.k8s.io/ValidatingAdmissionPolicyBinding",
]);

/** The stage an object is applied in. */
export function stageOf(ref: Pick<ObjectRef, "group" | "kind">): Stage {
  const key = `${ref.group}/${ref.kind}`;
  if (DEFINITIONS.has(key)) return "definitions";
  if (CLASSES.has(key)) return "classes";
  if (WEBHOOKS.has(key)) return "webhooks";
  return "workloads";
}

/** Sorts references into apply order: by stage, then kind, namespace and name, so plans are stable. */
export function compareApplyOrder(a: ObjectRef, b: ObjectRef): number {
  const sa = STAGES.indexOf(stageOf(a));
  const sb = STAGES.indexOf(stageOf(b));
  if (sa !== sb) return sa - sb;
  // Within definitions, CRDs before Namespaces before RBAC, so objects that need them come after.
  return (
    a.kind.localeCompare(b.kind) ||
    a.namespace.localeCompare(b.namespace) ||
    a.name.localeCompare(b.name) ||
    a.group.localeCompare(b.group)
  );
}
