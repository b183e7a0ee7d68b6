/** The records a sync attempt leaves in the ledger: shared by the engine (which writes them) and the ledger. */
import type { Action, CommitInfo, HealthStatus, ObjectRef, Reason, VerdictRecord } from "./object.ts";

/**
 * Whether a planned write (apply or delete) reached the cluster: `applied` when the API server acknowledged
 * it, `failed` when it answered with an error or no answer came (then `message` says which), `not-attempted`
 * when the sync stopped before sending it. Objects the plan does not write carry none.
 */
export type WriteStatus = "applied" | "failed" | "not-attempted";

/** What a sync did to one object. */
export interface ObjectRecord {
  ref: ObjectRef;
  /** What the plan decided; `status` says whether the write happened. */
  action: Action;
  status?: WriteStatus;
  health?: HealthStatus;
  message?: string;
  /** Digest of the manifest applied (from `putManifests`). */
  digest?: string;
}

/** One object an app owns after a sync, with the digest of its applied manifest. */
export interface InventoryItem {
  ref: ObjectRef;
  digest: string;
  /** Where it was rendered from (`file#doc`), so a later prune can say why it left. */
  source?: string;
}

/** One out-of-band change of fields berth owns, and what berth did about it (what `recordDrift` records). */
export interface DriftRecord {
  app: string;
  ref: ObjectRef;
  /** The field manager that made the change (from managedFields), or "unknown" (deletions). */
  manager: string;
  /** JSON-pointer-style paths berth owned that changed; ["/"] for a deleted object. */
  fields: string[];
  action: "healed" | "alerted" | "heal-failed";
  message?: string;
}

/** What `begin` records. */
export interface BeginInput {
  app: string;
  revision: string;
  commit?: CommitInfo;
  /** What started the attempt: "poll", "webhook", "manual", … */
  trigger: string;
  /**
   * Someone asked for this attempt (an API sync, a webhook) and holds its entry id: it is recorded as an
   * entry of its own even when it repeats the last one, instead of being folded into it.
   */
  requested?: boolean;
}

/** What `finish` records. */
export interface FinishInput {
  outcome: "Succeeded" | "Failed";
  reason: Reason;
  message: string;
  renderedDigest?: string;
  objects: ObjectRecord[];
  health?: HealthStatus;
  /** Phase durations in milliseconds, e.g. { fetch: 120, apply: 800 }. */
  timings: Record<string, number>;
  /** When given, replaces the app's inventory. */
  inventory?: InventoryItem[];
  /** The sync rules' verdicts (hash-chained with the entry). */
  verdicts?: VerdictRecord[];
  /** A successful render a later process may take from the ledger instead of rendering again (RenderMemo). */
  renderMemo?: RenderMemo;
}

/**
 * What a render produced, by the manifests the ledger stores of it: kept per app (the newest success under a
 * durable render key) so a later process holding the same key can take the desired objects from the ledger.
 */
export interface RenderMemo {
  /** The durable render key (agent/render/render-cache.ts durableRenderKey). */
  key: string;
  /** The render digest (digestOfObjects of the rendered objects), as recorded with the entry. */
  digest: string;
  /** The rendered objects in render order: stored manifest digest, source file, and whether the plan gave it the app's namespace. */
  objects: Array<{ digest: string; source: string; defaultedNamespace?: true }>;
  /** Documents the render skipped (said in the entry's message). */
  skipped: Array<{ path: string; message: string }>;
  /** Manifest files read. */
  files: number;
}

/**
 * The remote chart an entry applied, as the engine records it at the end of the entry's message
 * (`…; chart <name> <version> sha256:<hex>`), or undefined for an entry without one.
 */
export function chartOfMessage(message: string | undefined): string | undefined {
  return /; (chart \S+ \S+ sha256:[0-9a-f]{64})(?:;|$)/.exec(message ?? "")?.[1];
}
