/**
 * The leaf vocabulary every stage shares: Kubernetes objects, references to
 * them, ids and subjects. No I/O here.
 */

/** Metadata fields berth reads; everything else passes through untouched. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  generation?: number;
  resourceVersion?: string;
  uid?: string;
  deletionTimestamp?: string;
  managedFields?: ManagedFieldsEntry[];
  [key: string]: unknown;
}

/** One entry of metadata.managedFields. */
export interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  apiVersion?: string;
  fieldsV1?: unknown;
  time?: string;
  subresource?: string;
}

/** A Kubernetes object as plain JSON. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

/** Identifies one object. `namespace` is "" for cluster-scoped objects; `group` is "" for the core group. */
export interface ObjectRef {
  group: string;
  version: string;
  kind: string;
  namespace: string;
  name: string;
}

/** Splits an apiVersion into group and version ("v1" → core group ""). */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf("/");
  return slash === -1
    ? { group: "", version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** The reference of an object. */
export function refOf(obj: KubeObject): ObjectRef {
  const { group, version } = splitApiVersion(obj.apiVersion);
  return { group, version, kind: obj.kind, namespace: obj.metadata.namespace ?? "", name: obj.metadata.name };
}

/** The apiVersion of a reference. */
export function apiVersionOf(ref: ObjectRef): string {
  return ref.group === "" ? ref.version : `${ref.group}/${ref.version}`;
}

/** The stable object id `namespace_name_group_kind` (the format Flux inventories use). */
export function objectId(ref: ObjectRef): string {
  return `${ref.namespace}_${ref.name}_${ref.group}_${ref.kind}`;
}

/** Parses an object id back into a reference (version is not part of the id and comes back ""). */
export function parseObjectId(id: string): ObjectRef {
  const parts = id.split("_");
  if (parts.length !== 4) throw new Error(`object id "${id}": expected namespace_name_group_kind`);
  const [namespace = "", name = "", group = "", kind = ""] = parts;
  return { group, version: "", kind, namespace, name };
}

/** The human subject `Kind/namespace/name` (or `Kind/name` for cluster-scoped objects) used in messages. */
export function subject(ref: ObjectRef): string {
  return ref.namespace === "" ? `${ref.kind}/${ref.name}` : `${ref.kind}/${ref.namespace}/${ref.name}`;
}

/** Field manager name berth applies with. */
export const FIELD_MANAGER = "berth";
/** Ownership labels berth puts on everything it applies. */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY_VALUE = "berth";
export const APP_LABEL = "berth.dev/app";
/** Annotation that keeps an object from being pruned when it leaves Git. */
export const PRUNE_ANNOTATION = "berth.dev/prune";

/** Health vocabulary from kstatus. */
export type HealthStatus = "Current" | "InProgress" | "Failed" | "Terminating" | "NotFound" | "Unknown";
/** What a sync did to one object. */
export type Action = "created" | "configured" | "unchanged" | "deleted" | "skipped";
/** Why a sync attempt ended as it did. */
export type Reason =
  | "Succeeded"
  | "FetchFailed"
  | "BuildFailed"
  | "PlanRejected"
  | "ApplyFailed"
  | "PruneFailed"
  | "HealthCheckFailed"
  | "Interrupted";

/** The revision string `<branch>@sha1:<hash>` (or `sha1:<hash>` for a detached commit). */
export function revisionOf(ref: string, sha: string): string {
  return ref ? `${ref}@sha1:${sha}` : `sha1:${sha}`;
}

/** Metadata of the commit a snapshot was read at. */
export interface CommitInfo {
  sha: string;
  author: string;
  message: string;
  /** ISO 8601 */
  time: string;
  /** The configured source the commit came from (berth.yaml `sources:`; `default` for `source:`). */
  source?: string;
}

/** The most of a commit message berth keeps: it is stored with every ledger entry and shown in status and alerts. */
export const MAX_COMMIT_MESSAGE = 16 * 1024;
const MAX_COMMIT_AUTHOR = 1024;

/** `commit` with its message and author cut to what berth keeps, saying how long they were. */
export function boundedCommit(commit: CommitInfo): CommitInfo {
  const cut = (text: string, max: number) =>
    text.length <= max ? text : `${text.slice(0, max)}… (cut: ${text.length} characters in all)`;
  return {
    ...commit,
    author: cut(commit.author, MAX_COMMIT_AUTHOR),
    message: cut(commit.message, MAX_COMMIT_MESSAGE),
  };
}

/** A sync rule's verdict on an attempt: which rule (and where it is written), on what, and why. */
export interface VerdictRecord {
  rule: string;
  /** `file:line` of the rule. */
  at: string;
  verdict: string;
  /** The object, for change-scoped rules. */
  subject?: string;
  message: string;
  /** Who approved the hold (or the window override) that let this attempt through. */
  approvedBy?: string;
}

/** An app's Helm chart (berth.yaml `helm:`): paths are repository paths, or the chart comes from a Helm repository / OCI registry. */
export interface HelmChart {
  /** A chart directory in the repository, a chart's name in `repo`, or `oci://host/path/name`. */
  chart: string;
  /** HTTP(S) Helm repository the chart is pulled from. */
  repo?: string;
  /** Version or semver constraint of a remote chart. */
  version?: string;
  /** Basic auth of the repository or registry; the password is read from the file. */
  auth?: { username: string; passwordFile: string };
  /** CA bundle for the repository's or registry's certificate. */
  caFile?: string;
  /** Values files, applied in order. */
  values?: string[];
  /** `--set` values: dotted keys as helm reads them. */
  set?: Record<string, string | number | boolean>;
  /** Default: the app name. */
  releaseName?: string;
}
