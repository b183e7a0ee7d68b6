/** What the engine needs from each stage and adapter; main.ts wires the concrete ones. */
import type { ApplyCluster } from "../apply/apply.ts";
import type { PruneCluster } from "../apply/prune.ts";
import type { LeaseRecord, LeaseState } from "../object/lease.ts";
import type { Action, CommitInfo, KubeObject, ObjectRef, Reason, VerdictRecord } from "../object/object.ts";
import type { BeginInput, FinishInput, InventoryItem } from "../object/records.ts";
import type { Snapshot } from "../object/snapshot.ts";
import type { Plan, PlanCluster } from "../plan/plan.ts";
import type { PruneSafetySettings } from "../plan/prune-guard.ts";
import type { HealthJudge, WaitCluster } from "../wait/wait.ts";
import type { Logger } from "./log.ts";

/**
 * Where manifests come from: a Git repository (agent/source/git-source.ts, ssh-source.ts) or an OCI artifact
 * (oci-source.ts). `resolve()` is the cheap poll (one ref or manifest request) naming what to apply: a commit
 * SHA, or `<tag>@sha256:<digest>`; `snapshot()` reads that, from the source's cache when it has it.
 */
export interface SourcePort {
  resolve(): Promise<string>;
  snapshot(id: string): Promise<Snapshot>;
}

/** Rendering one app's path of a snapshot; rejects only when `signal` aborts (the agent is stopping). */
export type RenderPort = (
  snapshot: Snapshot,
  app: { name: string; path: string },
  signal?: AbortSignal,
) => Promise<{
  objects: ReadonlyArray<{ object: KubeObject; source: string }>;
  skipped: ReadonlyArray<{ path: string; message: string }>;
  errors: ReadonlyArray<{ path: string; message: string }>;
  digest: string;
  /** What a remote chart resolved to (`chart name version sha256:…`), recorded with the entry. */
  origin?: string;
  /** Manifest files read. */
  files?: number;
  /**
   * Set when another process may reuse this render (a commit, no input from outside it): the durable render
   * key, recorded with a successful entry's RenderMemo.
   */
  key?: string;
}>;

/** Every cluster operation the pipeline uses. */
export interface ClusterPort extends PlanCluster, ApplyCluster, PruneCluster, WaitCluster {
  discover(force?: boolean): Promise<void>;
  get(ref: ObjectRef, options?: { signal?: AbortSignal }): Promise<KubeObject | undefined>;
  /** The signal abandons a dry-run (planning); a write once sent is always awaited, so its outcome is known. */
  apply(
    obj: KubeObject,
    options: { dryRun?: boolean; force?: boolean; signal?: AbortSignal },
  ): Promise<KubeObject>;
}

/** The ledger operations a sync uses. */
export interface LedgerPort {
  begin(start: BeginInput): number;
  /** A Secret's `berth.dev/applied-digest`, keyed so the cluster cannot test guesses; optional for fakes. */
  secretDigest?(obj: KubeObject): Promise<string>;
  putManifests(objects: KubeObject[]): Promise<Map<string, string>>;
  /**
   * The render digest of the app's last entry if the app's inventory holds that render's manifest digests
   * (a success this ledger instance recorded, or one whose render memo matches the inventory); optional for fakes.
   */
  lastRender?(app: string): string | undefined;
  /** Returns the id the attempt is recorded under: a no-op repeat folds into the app's last entry. */
  finish(id: number, result: FinishInput): number | void;
  inventory(app: string): InventoryItem[];
  /** Object id → app, for every object in an inventory other than this app's; optional for fakes. */
  inventoryOwners?(app: string): Map<string, string>;
  /** Records objects as owned before they are written (crash safety). */
  claimInventory(app: string, items: readonly InventoryItem[]): void;
  /** The entry an operator pinned the app to (the loop replays it instead of Git); optional for fakes. */
  pinOf?(app: string): PinState | undefined;
  /** Every pinned app's pin, in one read (optional for fakes: then pinOf per app). */
  pinsByApp?(): Map<string, PinState>;
  /**
   * Throws (naming the ledger: "ledger: disk full at <path>") when the ledger cannot record a sync now, so
   * nothing is applied unrecorded; optional for fakes.
   */
  preflight?(options?: { writeCheckAgeMs?: number }): void;
  /** The agent's own small state kept across restarts (JSON text); optional for fakes. */
  state?(key: string): string | undefined;
  setState?(key: string, value: string | undefined): void;
}

/** An app held at a ledger entry; `pendingRevision` is the Git revision seen but not applied. */
export interface PinState {
  entry: number;
  pinnedAt: string;
  pendingRevision?: string;
}

/** The app settings a sync reads (the config's AppConfig satisfies it). */
export interface AppSpec {
  name: string;
  path: string;
  /** The source the path is read from (a key of EngineDeps.sources); absent: `default`. */
  source?: string;
  /**
   * A generated app whose directory left its source: it renders nothing, so everything it owns is pruned
   * (under the prune guards) before the loop lets it go.
   */
  gone?: boolean;
  namespace?: string;
  prune: boolean;
  /** When pruning needs an approval (agent/plan/prune-guard.ts defaults when absent). */
  pruneSafety?: PruneSafetySettings;
  allowEmpty: boolean;
  force: boolean;
  /** Health wait timeout, ms. */
  timeout: number;
  dependsOn: string[];
  suspend: boolean;
  /** Impersonated for everything done for the app (the wiring's clusterFor); absent: the agent's identity. */
  serviceAccountName?: string;
  /** The tenant boundary checked at plan time (agent/plan/tenant.ts). */
  allowedNamespaces?: string[];
  clusterScoped?: boolean;
}

/** The cluster port an app's sync must use: its own identity when the wiring gives one. */
export function clusterOf(deps: Pick<EngineDeps, "cluster" | "clusterFor">, app: AppSpec): ClusterPort {
  return deps.clusterFor?.(app) ?? deps.cluster;
}

/** Progress events, for logs, the CLI and (later) the HTTP event stream. */
export type EngineEvent =
  | { type: "started"; app: string; entry: number; revision: string; trigger: string }
  | { type: "stage"; app: string; stage: string; detail?: string }
  | { type: "applied"; app: string; subject: string; action: string; ok: boolean; error?: string }
  | { type: "waiting"; app: string; pending: Array<{ subject: string; status: string; message: string }> }
  | { type: "finished"; app: string; entry: number; outcome: string; reason: Reason; message: string };

/** Sync rules judging a plan before anything is written (agent/policy): the plan to apply, or why not. */
export interface PolicyPort {
  judge(input: { app: AppSpec; plan: Plan; commit: CommitInfo }): {
    plan: Plan;
    /** verdict: hold and defer wait for an approval or a window, and are not failures (CLI exit 3). */
    blocked?: { message: string; verdict?: string };
    verdicts: ReadonlyArray<VerdictRecord>;
  };
}

/** Live objects kept current by watches (agent/kube/view.ts). */
export interface LivePort {
  /** Watches the kinds of these refs for the app; resolves once each kind has been listed. */
  track(app: string, refs: ReadonlyArray<ObjectRef>): Promise<void>;
  /** The live object, or undefined when the view cannot say (not watched, disconnected, absent). */
  lookup(app: string, ref: ObjectRef): KubeObject | undefined;
}

/** The name of the source apps without `source` use. */
export const DEFAULT_SOURCE_NAME = "default";

/** The source an app reads: its named one from `sources`, else `source`. */
export function sourceOf(deps: Pick<EngineDeps, "source" | "sources">, app: AppSpec): SourcePort {
  return deps.sources?.get(app.source ?? DEFAULT_SOURCE_NAME) ?? deps.source;
}

/** Everything reconcile needs. */
export interface EngineDeps {
  /** The `default` source (and the one for apps whose source is not in `sources`). */
  source: SourcePort;
  /** Every source by name (berth.yaml `sources:`, plus `default`); absent: `source` alone. */
  sources?: ReadonlyMap<string, SourcePort>;
  render: RenderPort;
  cluster: ClusterPort;
  /**
   * The cluster as one app may see it (its ServiceAccount impersonated); absent: `cluster` for every app.
   * converge() (agent/engine/reconcile.ts) and replay use it for the app's plan, apply, prune and health reads.
   */
  clusterFor?: (app: AppSpec) => ClusterPort;
  ledger: LedgerPort;
  health: HealthJudge;
  /** Optional sync rules; without it every plan is applied as planned. */
  policy?: PolicyPort;
  /** Optional watch view of live objects (berth run): the plan reads it instead of one GET per object. */
  live?: LivePort;
  log: Logger;
  emit?: (event: EngineEvent) => void;
}

/** What the leader elector needs; kube/lease.ts implements it against the API server. */
export interface LeasePort {
  /** The Lease, or undefined when it does not exist. */
  get(): Promise<LeaseState | undefined>;
  /** Creates it; false when someone else created it first. */
  create(spec: LeaseRecord): Promise<boolean>;
  /** Replaces it if still at `resourceVersion`; false when someone else changed it first. */
  update(spec: LeaseRecord, resourceVersion: string): Promise<boolean>;
}

/**
 * The cluster as a preview sees it: reads and server-side dry-runs only. No delete, no wait and no write
 * exist on this type, and agent/engine/preview.ts wraps whatever it is given so every apply is a dry-run.
 */
export interface PreviewCluster extends PlanCluster {
  discover(force?: boolean): Promise<void>;
}

/** Where previews read unmerged heads from: the matching refs (one request), then a snapshot at one of them. */
export interface PreviewSourcePort {
  refs(): Promise<Array<{ ref: string; sha: string }>>;
  snapshot(ref: string, sha: string): Promise<Snapshot>;
}

/** Tells someone what a preview found (a forge commit status and pull-request comment); may throw. */
export interface PreviewReporter {
  readonly name: string;
  report(preview: RefPreview): Promise<void>;
}

/** One object of a preview: what a sync would do to it. */
export interface PreviewObject {
  subject: string;
  action: Action;
  source?: string;
  /** Why it is skipped or protected, or what the dry-run could not check. */
  note?: string;
  /** The field paths that change (values left out: a preview may be shown to anyone who can open a PR). */
  diff?: string[];
}

/** What previewing one app at a ref found; `outcome` is what a sync of that head would meet. */
export interface AppPreview {
  app: string;
  outcome: "clean" | "changes" | "denied" | "held" | "deferred" | "error";
  /** One line: "3 changed, 1 deleted; held by rule no-pvc-delete". */
  summary: string;
  counts: { created: number; changed: number; deleted: number; unchanged: number; skipped: number };
  /** Every planned object with its action, changes first. */
  objects: PreviewObject[];
  /** The sync rules' verdicts, prune-guard holds included (rule `prune-guard`). */
  verdicts: VerdictRecord[];
  /** What the cascade and mass-prune guards would stop. */
  guard: Array<{ subject: string; message: string; approvable: boolean }>;
  /** Render errors (naming the file) and plan errors (naming the object). */
  errors: Array<{ subject: string; message: string }>;
  /** Why a sync of this head would not apply (deny, hold, defer or rule error), as the ledger would say it. */
  blocked?: string;
}

/** One previewed head of one ref. */
export interface RefPreview {
  ref: string;
  sha: string;
  revision: string;
  /** The pull or merge request the ref belongs to, when its name says. */
  pr?: number;
  commit?: CommitInfo;
  /** When the preview finished (ISO 8601). */
  at: string;
  apps: AppPreview[];
  /** Why the head could not be previewed at all (fetch failed). */
  error?: string;
}
