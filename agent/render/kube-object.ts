/** Decides whether a parsed document is a Kubernetes object, expands Lists, and drops server-owned fields. */
import type { KubeObject } from "../object/object.ts";

/** The verdict on one document, or on one item of a List (`suffix` is `.items[i]` then, else ""). */
export type Verdict = { suffix: string } & (
  | { kind: "object"; object: KubeObject }
  | { kind: "skip"; reason: string }
  | { kind: "error"; message: string }
);

/** Verdicts for one document: none if it is empty, one per item for a List, else one. */
export function classifyDocument(value: unknown): Verdict[] {
  if (value === null || value === undefined) return [];
  if (typeof value !== "object" || Array.isArray(value)) {
    const got = Array.isArray(value) ? "a list" : typeof value;
    return [{ suffix: "", kind: "skip", reason: `not a Kubernetes object: expected a mapping, got ${got}` }];
  }
  const doc = value as Record<string, unknown>;
  if (!isList(doc)) return [{ suffix: "", ...classifySingle(doc) }];
  return (doc.items as unknown[]).map((item, i) => ({ suffix: `.items[${i}]`, ...classifySingle(item) }));
}

/** `kind: List` or `<Kind>List` with an `items` array. */
function isList(doc: Record<string, unknown>): boolean {
  return typeof doc.kind === "string" && doc.kind.endsWith("List") && Array.isArray(doc.items);
}

function classifySingle(
  value: unknown,
):
  | { kind: "object"; object: KubeObject }
  | { kind: "skip"; reason: string }
  | { kind: "error"; message: string } {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { kind: "skip", reason: "not a Kubernetes object: expected a mapping" };
  }
  const doc = value as Record<string, unknown>;
  if (doc.kind === "Kustomization" && String(doc.apiVersion ?? "").startsWith("kustomize.config.k8s.io/")) {
    return {
      kind: "skip",
      reason: "a kustomization file: berth applies plain manifests and does not run kustomize",
    };
  }
  const missing = (["apiVersion", "kind"] as const).filter(
    (k) => typeof doc[k] !== "string" || doc[k] === "",
  );
  if (missing.length > 0)
    return { kind: "skip", reason: `not a Kubernetes object: no ${missing.join(" or ")}` };
  const meta = doc.metadata;
  if (meta === undefined || meta === null)
    return { kind: "skip", reason: "not a Kubernetes object: no metadata" };
  if (typeof meta !== "object" || Array.isArray(meta))
    return { kind: "error", message: "metadata: expected a mapping" };
  const m = meta as Record<string, unknown>;
  if (m.name === undefined || m.name === null) {
    return { kind: "skip", reason: "not a Kubernetes object: no metadata.name" };
  }
  if (typeof m.name !== "string" || m.name === "") {
    return {
      kind: "error",
      message: `metadata.name: expected a non-empty string, got ${JSON.stringify(m.name)}`,
    };
  }
  if (m.namespace !== undefined && m.namespace !== null && typeof m.namespace !== "string") {
    return {
      kind: "error",
      message: `metadata.namespace: expected a string, got ${JSON.stringify(m.namespace)}`,
    };
  }
  return { kind: "object", object: stripServerFields(doc) };
}

const SERVER_META = new Set(["resourceVersion", "uid", "managedFields"]);

/** A copy without `status`, `metadata.resourceVersion`, `uid`, `managedFields`, a null `creationTimestamp` or a null namespace; key order kept. */
export function stripServerFields(doc: Record<string, unknown>): KubeObject {
  const meta = Object.fromEntries(
    Object.entries(doc.metadata as Record<string, unknown>).filter(
      ([key, value]) =>
        !SERVER_META.has(key) && !((key === "creationTimestamp" || key === "namespace") && value === null),
    ),
  );
  const entries = Object.entries(doc)
    .filter(([key]) => key !== "status")
    .map(([key, value]) => (key === "metadata" ? [key, meta] : [key, value]));
  return Object.fromEntries(entries) as KubeObject;
}
