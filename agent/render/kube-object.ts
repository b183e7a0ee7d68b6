/** Decides whether a parsed document is a Kubernetes object, expands Lists, and drops server-owned fields. */
import type { KubeObject } from "../object/object.ts";

/**
 * The verdict on one document, or on one item of a List (`suffix` is `.items[i]` then, else ""). An error
 * carries the key path it is about (`at`), so the caller can name the line.
 */
export type Verdict = { suffix: string } & (
  | { kind: "object"; object: KubeObject }
  | { kind: "skip"; reason: string }
  | { kind: "error"; message: string; at: Array<string | number> }
);

type Single =
  | { kind: "object"; object: KubeObject }
  | { kind: "skip"; reason: string }
  | { kind: "error"; message: string; at: Array<string | number> };

/** The keys that say a document is meant to be a Kubernetes object, in the case Kubernetes requires. */
const IDENTITY_KEYS = ["apiVersion", "kind", "metadata"] as const;

/** Verdicts for one document: none if it is empty, one per item for a List, else one. */
export function classifyDocument(value: unknown): Verdict[] {
  if (value === null || value === undefined) return [];
  if (typeof value !== "object" || Array.isArray(value)) {
    const got = Array.isArray(value) ? "a list" : typeof value;
    return [{ suffix: "", kind: "skip", reason: `not a Kubernetes object: expected a mapping, got ${got}` }];
  }
  const doc = value as Record<string, unknown>;
  if (!isList(doc)) return [{ suffix: "", ...classifySingle(doc, []) }];
  return (doc.items as unknown[]).map((item, i) => ({
    suffix: `.items[${i}]`,
    ...classifySingle(item, ["items", i]),
  }));
}

/** Files of tools that look like objects but are never applied: kustomize's and berth's own. */
function toolConfig(doc: Record<string, unknown>): string | undefined {
  const api = typeof doc.apiVersion === "string" ? doc.apiVersion : "";
  const kind = typeof doc.kind === "string" ? doc.kind : "";
  if (api.startsWith("kustomize.config.k8s.io/") && (kind === "Kustomization" || kind === "Component"))
    return "a kustomization file: berth applies plain manifests and does not run kustomize";
  if (api.startsWith("berth.dev/") && (kind === "Agent" || kind === "Rules"))
    return `berth's own ${kind === "Agent" ? "configuration" : "rules"} file: not applied`;
  return undefined;
}

/** `kind: List` or `<Kind>List` with an `items` array. */
function isList(doc: Record<string, unknown>): boolean {
  return typeof doc.kind === "string" && doc.kind.endsWith("List") && Array.isArray(doc.items);
}

/**
 * A document is skipped only when it is clearly not an object: no apiVersion, kind or metadata key in any
 * casing. Once it has one of them it is meant to be applied, and leaving it out would prune what it stands
 * for (a Namespace, and all in it, for one `Kind:` typo), so anything missing or miscased is an error.
 */
function classifySingle(value: unknown, base: Array<string | number>): Single {
  const inList = base.length > 0;
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    if (inList)
      return { kind: "error", message: "a List item must be a mapping (a Kubernetes object)", at: base };
    return { kind: "skip", reason: "not a Kubernetes object: expected a mapping" };
  }
  const doc = value as Record<string, unknown>;
  const configFile = toolConfig(doc);
  if (configFile) return { kind: "skip", reason: configFile };
  const keys = Object.keys(doc);
  const identity = keys.filter((k) => IDENTITY_KEYS.some((id) => id.toLowerCase() === k.toLowerCase()));
  if (identity.length === 0 && !inList)
    return { kind: "skip", reason: "not a Kubernetes object: no apiVersion, kind or metadata" };
  const error = (message: string, at: Array<string | number>): Single => ({
    kind: "error",
    message,
    at: [...base, ...at],
  });
  for (const key of identity) {
    const meant = IDENTITY_KEYS.find((id) => id.toLowerCase() === key.toLowerCase()) as string;
    if (key !== meant)
      return error(`"${key}" must be spelled "${meant}" (Kubernetes keys are case-sensitive)`, [key]);
  }
  for (const key of ["apiVersion", "kind"] as const) {
    const v = doc[key];
    if (v === undefined) {
      const why =
        identity.length > 0 ? `a document with ${identity.join(" and ")} must set it` : "a List item";
      return error(`no ${key} (${why})`, []);
    }
    if (typeof v !== "string" || v.trim() === "")
      return error(`${key}: expected a non-empty string, got ${JSON.stringify(v)}`, [key]);
  }
  const meta = doc.metadata;
  if (meta === undefined) return error("no metadata: a Kubernetes object needs metadata.name", []);
  if (meta === null || typeof meta !== "object" || Array.isArray(meta))
    return error("metadata: expected a mapping", ["metadata"]);
  const m = meta as Record<string, unknown>;
  if (m.name === undefined || m.name === null) {
    const why = m.generateName !== undefined ? " (generateName is not supported: berth applies by name)" : "";
    return error(`metadata.name: required${why}`, ["metadata"]);
  }
  if (typeof m.name !== "string" || m.name === "") {
    return error(`metadata.name: expected a non-empty string, got ${JSON.stringify(m.name)}`, [
      "metadata",
      "name",
    ]);
  }
  if (m.namespace !== undefined && m.namespace !== null && typeof m.namespace !== "string") {
    return error(`metadata.namespace: expected a string, got ${JSON.stringify(m.namespace)}`, [
      "metadata",
      "namespace",
    ]);
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
