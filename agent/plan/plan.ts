/**
 * The plan: desired objects vs. the app's inventory and the live cluster, as a
 * value. "Changed" is decided by a server-side dry-run apply compared with the
 * live object, so an unchanged repository causes no writes, yet an out-of-band
 * edit of a field berth owns still shows up as `configured`.
 */
import { digestOf } from "../object/canonical.ts";
import { messageOf } from "../object/errors.ts";
import { invalidNameMessage } from "../object/names.ts";
import {
  type Action,
  APP_LABEL,
  FIELD_MANAGER,
  type KubeObject,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  type ObjectRef,
  objectId,
  PRUNE_ANNOTATION,
  refOf,
  splitApiVersion,
  subject,
} from "../object/object.ts";
import { compareApplyOrder, type Stage, stageOf } from "../object/order.ts";
import { mapLimit } from "../object/pool.ts";
import { type FromDependencies, kindsDefinedByCrds } from "./dependencies.ts";
import { type DiffEntry, diffObjects } from "./diff.ts";
import {
  type CascadeCluster,
  deletionReason,
  describeCascade,
  guardPrunes,
  type PlanHold,
  type PruneSafetySettings,
} from "./prune-guard.ts";
import { outsideTenant, type TenantBounds } from "./tenant.ts";

/** What the plan needs to know about a kind. */
export interface KindInfo {
  namespaced: boolean;
}

/** The cluster operations planning uses (KubeClient satisfies it; tests may fake it). */
export interface PlanCluster {
  resource(group: string, version: string, kind: string): KindInfo | undefined;
  /** The signal abandons a read or dry-run: planning writes nothing, so it can stop at any request. */
  get(ref: ObjectRef, options?: { signal?: AbortSignal }): Promise<KubeObject | undefined>;
  apply(
    obj: KubeObject,
    options: { dryRun?: boolean; force?: boolean; signal?: AbortSignal },
  ): Promise<KubeObject>;
  /** For the cascade guard's counts (KubeClient has them); without them a hold says less. */
  servedKinds?: CascadeCluster["servedKinds"];
  listKind?: CascadeCluster["listKind"];
}

/** The app settings planning reads. */
export interface PlanApp extends TenantBounds {
  name: string;
  namespace?: string;
  prune: boolean;
  /** The prune guards' settings (prune-guard.ts defaults when absent). */
  pruneSafety?: PruneSafetySettings;
  allowEmpty: boolean;
  force: boolean;
  /**
   * A generated app whose directory left its source: its empty render is expected, not an error, but unlike
   * allowEmpty it is no consent to a mass prune (both prune guards still hold it for an approval).
   */
  gone?: boolean;
}

export interface PlanInput {
  app: PlanApp;
  revision: string;
  /** Rendered objects with where they came from (`file#doc`). */
  desired: ReadonlyArray<{ object: KubeObject; source: string }>;
  /** What berth applied for this app before (from the ledger), with where each was rendered from. */
  inventory: ReadonlyArray<{ ref: ObjectRef; source?: string }>;
  /** Live objects already known (a watch view); undefined for a ref means "ask the server". */
  live?: (ref: ObjectRef) => KubeObject | undefined;
  /** Another app whose inventory (ledger) holds this object, if one does. */
  ownerOf?: (ref: ObjectRef) => string | undefined;
  /** Whether a file exists at the revision planned, to say why an object is deleted. */
  fileExists?: (path: string) => Promise<boolean>;
  /**
   * Kinds and namespaces this app's dependencies create but may not have applied yet (`berth plan` plans
   * every app first): objects needing them are planned as "will be validated after <app>", not rejected.
   */
  after?: FromDependencies;
  /** Keep each dry-run result on its change as `merged` (`berth diff` shows it against the live object). */
  keepMerged?: boolean;
  /** Stops the plan's requests (SIGTERM): a 1.8 MB dry-run must not hold a shutdown for the request timeout. */
  signal?: AbortSignal;
  /**
   * A Secret's applied digest, keyed (the ledger's): without it a Secret gets no annotation, as a plain digest
   * would let whoever reads its metadata test guesses of its values, and is dry-run on every resync.
   */
  secretDigest?: (obj: KubeObject) => Promise<string>;
}

/**
 * Annotation with the digest of the manifest berth applied (without this annotation); a Secret's is keyed
 * (PlanInput.secretDigest), or absent.
 */
export const APPLIED_DIGEST_ANNOTATION = "berth.dev/applied-digest";

/** One object's planned action. */
export interface PlannedChange {
  id: string;
  ref: ObjectRef;
  subject: string;
  action: Action;
  stage: Stage;
  source?: string;
  /** The manifest to apply, with namespace and ownership labels set. */
  desired?: KubeObject;
  live?: KubeObject;
  /** What the server would store (the dry-run result), kept only when PlanInput.keepMerged is set. */
  merged?: KubeObject;
  diff: DiffEntry[];
  /** Why the object is skipped, or what the dry-run could not check. */
  note?: string;
  /** The object was applied before (in the inventory), so conflicts are reclaimed drift. */
  owned: boolean;
}

/** A problem that rejects the plan, naming its object and source. */
export interface PlanProblem {
  subject: string;
  source?: string;
  message: string;
}

/** The plan for one app at one revision. */
export interface Plan {
  app: string;
  revision: string;
  changes: PlannedChange[];
  errors: PlanProblem[];
  summary: Record<Action, number>;
  /** Deletions that wait for a consent (prune-guard.ts): the sync is held until they are lifted. */
  holds?: PlanHold[];
}

/**
 * Each rendered object's planned copy (labelled, namespace defaulted, digested), by app and what shaped it. A
 * render reused from the render cache hands the plan the same objects again, so an unchanged app is not cloned
 * and digested on every resync; nothing modifies a planned object after the plan.
 */
const prepared = new WeakMap<KubeObject, Prepared>();

/**
 * A planned copy and what the plan derives from the copy alone. It is kept only once the copy passed every
 * check that depends on nothing but the copy and its key (kind served, namespace, name), so a reused one skips
 * them; the tenant bound is the app's setting and is checked on every plan.
 */
interface Prepared {
  key: string;
  obj: KubeObject;
  ref: ObjectRef;
  id: string;
  subject: string;
  stage: Stage;
}

/** Builds the plan; never writes (only dry-run applies). */
export async function plan(input: PlanInput, server: PlanCluster, concurrency = 16): Promise<Plan> {
  const cluster = stoppable(server, input.signal);
  const errors: PlanProblem[] = [];
  const crdKinds = kindsDefinedByCrds(input.desired.map((d) => d.object));
  const byId = new Map<string, PlannedChange>();
  const inventoryIds = new Set(input.inventory.map((i) => objectId(i.ref)));

  /** Adds a prepared copy as a change, unless another rendered object has its id. */
  const add = (p: Prepared, source: string) => {
    const twin = byId.get(p.id);
    if (twin) {
      errors.push({
        subject: p.subject,
        source,
        message: `duplicate object: also defined in ${twin.source}`,
      });
      return;
    }
    byId.set(p.id, {
      id: p.id,
      ref: p.ref,
      subject: p.subject,
      action: "created",
      stage: p.stage,
      source,
      desired: p.obj,
      diff: [],
      owned: inventoryIds.has(p.id),
    });
  };
  for (const { object, source } of input.desired) {
    const { group, version } = splitApiVersion(object.apiVersion);
    const gvk = `${group}/${version}/${object.kind}`;
    const info =
      cluster.resource(group, version, object.kind) ?? crdKinds.get(gvk) ?? input.after?.kinds.get(gvk);
    const key = `${input.app.name}\u0000${input.app.namespace ?? ""}\u0000${info?.namespaced}\u0000${Boolean(input.secretDigest)}`;
    const memo = prepared.get(object);
    if (memo?.key === key) {
      const outside = outsideTenant(input.app, memo.obj.metadata.namespace ?? "");
      if (outside) errors.push({ subject: memo.subject, source, message: outside });
      else add(memo, source);
      continue;
    }
    const obj = withOwnership(plannedCopy(object), input.app.name);
    const ref0 = refOf(obj);
    if (!info) {
      errors.push({
        subject: subject(ref0),
        source,
        message: `kind ${obj.kind} of apiVersion ${obj.apiVersion} is not served by the API server and no CustomResourceDefinition in this app defines it`,
      });
      continue;
    }
    if (info.namespaced && !obj.metadata.namespace) {
      if (!input.app.namespace) {
        errors.push({
          subject: subject(ref0),
          source,
          message: `namespaced ${obj.kind} has no metadata.namespace and app "${input.app.name}" sets no default namespace`,
        });
        continue;
      }
      obj.metadata.namespace = input.app.namespace;
    }
    if (!info.namespaced && obj.metadata.namespace) {
      errors.push({
        subject: subject(ref0),
        source,
        message: `${obj.kind} is cluster-scoped but sets metadata.namespace "${obj.metadata.namespace}"`,
      });
      continue;
    }
    // A name the API server refuses would fail at apply (with `/`, even address another object's URL).
    const badName = invalidNameMessage(obj);
    if (badName) {
      errors.push({ subject: subject(refOf(obj)), source, message: badName });
      continue;
    }
    // The tenant boundary: refused before any request, so nothing outside it is even dry-run.
    const outside = outsideTenant(input.app, obj.metadata.namespace ?? "");
    if (outside) {
      errors.push({ subject: subject(refOf(obj)), source, message: outside });
      continue;
    }
    // The digest covers the final manifest (namespace defaulted), so a replay of it digests the same.
    withAppliedDigest(obj);
    if (isCoreSecret(obj) && input.secretDigest)
      obj.metadata.annotations = {
        ...(obj.metadata.annotations ?? {}),
        [APPLIED_DIGEST_ANNOTATION]: await input.secretDigest(obj),
      };
    const ref = refOf(obj);
    const id = objectId(ref);
    const made: Prepared = { key, obj, ref, id, subject: subject(ref), stage: stageOf(ref) };
    prepared.set(object, made);
    add(made, source);
  }

  if (input.desired.length === 0 && input.inventory.length > 0 && !input.app.allowEmpty && !input.app.gone) {
    errors.push({
      subject: `app ${input.app.name}`,
      message: `the rendered app is empty; refusing to prune its ${input.inventory.length} objects (set allowEmpty: true to allow)`,
    });
  }

  const desired = [...byId.values()];
  const missingNamespaces = new Set<string>();
  const creates = {
    after: input.after,
    keep: input.keepMerged === true,
    namespaces: new Set(desired.filter((d) => d.ref.kind === "Namespace").map((d) => d.ref.name)),
  };
  const checkOwner = (change: PlannedChange) => {
    const conflict = ownershipConflict(change, input.app.name, input.ownerOf);
    if (conflict) throw new Error(conflict);
  };
  const failed = (change: PlannedChange, err: unknown) =>
    errors.push({
      subject: change.subject,
      ...(change.source ? { source: change.source } : {}),
      message: messageOf(err),
    });
  // Objects the view shows untouched since berth applied them are decided here, without a request (and
  // without a promise each: a warm no-op of 1,000 objects is mostly this loop).
  const ask = desired.filter((change) => {
    if (!untouchedInView(change, input.live)) return true;
    try {
      checkOwner(change);
    } catch (err) {
      failed(change, err);
    }
    return false;
  });
  await mapLimit(ask, concurrency, async (change) => {
    try {
      await compareWithLive(change, cluster, input.app.force, missingNamespaces, creates);
      checkOwner(change);
    } catch (err) {
      failed(change, err);
    }
  });

  const prunes = await mapLimit(
    input.inventory.filter((i) => !byId.has(objectId(i.ref))),
    concurrency,
    async (item) => {
      const change = await planPrune(item.ref, input.app, cluster);
      if (change?.action === "deleted")
        change.note = await deletionReason(input.revision, item.source, input.fileExists);
      return change;
    },
  );
  const changes = [...desired, ...prunes.filter((c): c is PlannedChange => c !== undefined)];
  changes.sort((a, b) => compareApplyOrder(a.ref, b.ref));
  const result: Plan = {
    app: input.app.name,
    revision: input.revision,
    changes,
    errors,
    summary: summarize(changes),
  };
  const holds = await pruneHolds(input, changes, cluster);
  if (holds.length > 0) result.holds = holds;
  return result;
}

/** The prune guards over a plan's deletions (cascading kinds, too large a share of the inventory). */
async function pruneHolds(
  input: PlanInput,
  changes: readonly PlannedChange[],
  cluster: PlanCluster,
): Promise<PlanHold[]> {
  const deleted = changes.filter((c) => c.action === "deleted");
  if (deleted.length === 0) return [];
  const { servedKinds, listKind } = cluster;
  const counting: CascadeCluster | undefined =
    servedKinds && listKind
      ? {
          resource: (g, v, k) => cluster.resource(g, v, k),
          get: (ref) => cluster.get(ref),
          servedKinds: () => servedKinds.call(cluster),
          listKind: (kind, ns) => listKind.call(cluster, kind, ns),
        }
      : undefined;
  const deletions = await Promise.all(
    deleted.map(async (c) => {
      let cascade: string | undefined;
      try {
        if (counting && input.app.pruneSafety?.cascade !== "allow")
          cascade = await describeCascade(c.ref, c.live, counting);
      } catch (err) {
        // Still held (the guard decides by kind); the message says the count is missing and why.
        cascade = `${c.subject}: could not tell what deleting it takes with it (${messageOf(err)})`;
      }
      return { ref: c.ref, ...(c.live ? { live: c.live } : {}), ...(cascade ? { cascade } : {}) };
    }),
  );
  // allowEmpty is the consent to prune everything when the render is empty; the cascade guard still asks.
  const emptyAllowed = input.desired.length === 0 && input.app.allowEmpty && !input.app.gone;
  const settings = emptyAllowed ? { ...input.app.pruneSafety, maxFraction: 1 } : input.app.pruneSafety;
  return guardPrunes({
    app: input.app.name,
    revision: input.revision,
    ...(settings ? { settings } : {}),
    deletions,
    inventorySize: input.inventory.length,
  });
}

/**
 * Why an object another app owns cannot be planned here: the live object's `berth.dev/app` label names
 * the owner; without berth's labels on it (or without a live object), another app's inventory does.
 */
function ownershipConflict(
  change: PlannedChange,
  app: string,
  ownerOf: ((ref: ObjectRef) => string | undefined) | undefined,
): string | undefined {
  const labels = change.live?.metadata.labels ?? {};
  const labelled = labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE ? labels[APP_LABEL] : undefined;
  const owner = labelled ?? ownerOf?.(change.ref);
  if (!owner || owner === app) return undefined;
  const how = labelled ? `its ${APP_LABEL} label` : `the ledger: it is in app ${owner}'s inventory`;
  const move = `an object belongs to one app: remove it from app ${app}, or from app ${owner} first (which prunes it; then app ${app} creates it)`;
  // A renamed app (or one whose objects move to another) finds its objects labelled with the old name, and the
  // advice above would delete and re-create them: the label is what hands an object over.
  const relabel = labelled
    ? `; if app ${owner} was renamed to ${app} or its objects move to it, relabel the object instead (${APP_LABEL}=${app}), and app ${app} takes it over without deleting it`
    : "";
  return `owned by app ${owner} (${how}); ${move}${relabel}`;
}

/** Decides created/configured/unchanged with a dry-run apply; also validates new objects where possible. */
async function compareWithLive(
  change: PlannedChange,
  cluster: PlanCluster,
  force: boolean,
  missingNamespaces: Set<string>,
  creates: { after: FromDependencies | undefined; namespaces: ReadonlySet<string>; keep: boolean },
): Promise<void> {
  const desired = change.desired as KubeObject;
  if (!cluster.resource(change.ref.group, change.ref.version, change.ref.kind)) {
    const { group, version, kind } = change.ref;
    const dependency = creates.after?.kinds.get(`${group}/${version}/${kind}`)?.app;
    change.action = "created";
    change.note = dependency
      ? `will be validated after ${dependency}: its CustomResourceDefinition comes from app ${dependency}`
      : "not validated: its CustomResourceDefinition is created by this plan";
    change.diff = diffObjects(undefined, desired);
    return;
  }
  // Dry-run first: it validates before anything is written, and a result without a resourceVersion is a create,
  // so an absent object (a restore into an empty cluster) costs one request instead of a GET plus a dry-run.
  // Once the server said a namespace is missing, its other objects can neither exist nor be validated.
  const ns = change.ref.namespace;
  const notValidated = () => {
    const dependency = creates.namespaces.has(ns) ? undefined : creates.after?.namespaces.get(ns);
    change.action = "created";
    change.note = dependency
      ? `will be validated after ${dependency}: its Namespace ${ns} comes from app ${dependency}`
      : "not validated: depends on an object this plan creates";
    change.diff = diffObjects(undefined, desired);
  };
  if (ns && missingNamespaces.has(ns)) return notValidated();
  let dry: KubeObject;
  try {
    dry = await dryRun(cluster, desired, force || change.owned);
  } catch (err) {
    // A namespace or CRD created by this same plan can't be checked yet — unless the object exists after all.
    if (!isMissingDependency(err)) throw err;
    if (ns && missingNamespace(err) === ns) {
      // A namespace nothing creates is an error now, not half an apply later.
      if (!creates.namespaces.has(ns) && !creates.after?.namespaces.has(ns)) throw err;
      missingNamespaces.add(ns);
    } else if (await cluster.get(change.ref)) throw err;
    return notValidated();
  }
  if (creates.keep) change.merged = dry;
  const live = dry.metadata.resourceVersion ? await cluster.get(change.ref) : undefined;
  if (!live) {
    change.action = "created";
    change.diff = diffObjects(undefined, dry);
    return;
  }
  change.live = live;
  const diff = diffObjects(live, dry);
  const ownershipChanged = JSON.stringify(stripTimes(live)) !== JSON.stringify(stripTimes(dry));
  change.diff = diff;
  change.action = diff.length > 0 || ownershipChanged ? "configured" : "unchanged";
}

/**
 * No dry-run when the view's live object carries this manifest's digest and nobody but berth wrote it since:
 * the change is "unchanged" (set here) and true is returned.
 */
function untouchedInView(
  change: PlannedChange,
  known: ((ref: ObjectRef) => KubeObject | undefined) | undefined,
): boolean {
  const cached = known?.(change.ref);
  if (!cached || !untouchedSinceApplied(cached, change.desired as KubeObject)) return false;
  change.live = cached;
  change.action = "unchanged";
  return true;
}

/** The cluster with every read and dry-run under the signal. */
function stoppable(cluster: PlanCluster, signal: AbortSignal | undefined): PlanCluster {
  if (!signal) return cluster;
  return {
    resource: (group, version, kind) => cluster.resource(group, version, kind),
    get: (ref) => cluster.get(ref, { signal }),
    apply: (obj, options) => cluster.apply(obj, { ...options, signal }),
    ...(cluster.servedKinds ? { servedKinds: cluster.servedKinds.bind(cluster) } : {}),
    ...(cluster.listKind ? { listKind: cluster.listKind.bind(cluster) } : {}),
  };
}

async function dryRun(cluster: PlanCluster, obj: KubeObject, force: boolean): Promise<KubeObject> {
  try {
    return await cluster.apply(obj, { dryRun: true, force });
  } catch (err) {
    const e = err as { status?: number; message?: string };
    if (e.status === 409) {
      throw new Error(
        `${e.message} (another field manager owns these fields; set force: true on the app to take them over)`,
      );
    }
    throw err;
  }
}

/** The namespace a 404 says is missing, if it says so. */
function missingNamespace(err: unknown): string | undefined {
  const e = err as { status?: number; details?: { kind?: string; name?: string } };
  return e.status === 404 && e.details?.kind === "namespaces" ? e.details.name : undefined;
}

function isMissingDependency(err: unknown): boolean {
  const e = err as { status?: number; details?: { kind?: string } };
  return e.status === 404 && (e.details?.kind === "namespaces" || e.details?.kind === undefined);
}

/** Plans the deletion of an object that left Git, if berth still owns it. */
async function planPrune(
  ref: ObjectRef,
  app: PlanApp,
  cluster: PlanCluster,
): Promise<PlannedChange | undefined> {
  const base = { id: objectId(ref), ref, subject: subject(ref), stage: stageOf(ref), diff: [], owned: true };
  if (!cluster.resource(ref.group, ref.version, ref.kind)) return undefined; // its kind is gone, so is it
  // Outside the tenant boundary berth neither reads nor deletes it (and stops tracking it).
  const outside = outsideTenant(app, ref.namespace);
  if (outside) return { ...base, action: "skipped", note: `left Git; not pruned because it ${outside}` };
  const live = await cluster.get(ref);
  if (!live) return undefined;
  const labels = live.metadata.labels ?? {};
  const skip = (note: string): PlannedChange => ({ ...base, action: "skipped", live, note });
  if (!app.prune) return skip("left Git; not pruned because the app sets prune: false");
  if (labels[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE || labels[APP_LABEL] !== app.name) {
    return skip(
      `left Git; not pruned because it no longer carries berth's ownership labels for app "${app.name}"`,
    );
  }
  if (live.metadata.annotations?.[PRUNE_ANNOTATION] === "disabled") {
    return skip(`left Git; not pruned because of the annotation ${PRUNE_ANNOTATION}: disabled`);
  }
  return { ...base, action: "deleted", live };
}

/**
 * The planned copy of a rendered object: metadata of its own (the plan sets labels, annotations and the
 * namespace on it), every other field shared with the render. Neither is modified after the plan (the render
 * cache hands the rendered objects out again), so a second deep copy of each spec would only cost memory.
 */
function plannedCopy(object: KubeObject): KubeObject {
  const metadata = { ...object.metadata };
  if (metadata.labels) metadata.labels = { ...metadata.labels };
  if (metadata.annotations) metadata.annotations = { ...metadata.annotations };
  return { ...object, metadata };
}

/** Adds berth's ownership labels. */
function withOwnership(obj: KubeObject, app: string): KubeObject {
  obj.metadata.labels = {
    ...(obj.metadata.labels ?? {}),
    [MANAGED_BY_LABEL]: MANAGED_BY_VALUE,
    [APP_LABEL]: app,
  };
  return obj;
}

function isCoreSecret(obj: KubeObject): boolean {
  return obj.kind === "Secret" && obj.apiVersion === "v1";
}

/** Sets (except on Secrets) the applied-digest annotation: the digest of the manifest without it. */
function withAppliedDigest(obj: KubeObject): KubeObject {
  if (obj.metadata.annotations) {
    delete obj.metadata.annotations[APPLIED_DIGEST_ANNOTATION];
    // A manifest replayed from the ledger must digest like the one first rendered (which had no annotations).
    if (Object.keys(obj.metadata.annotations).length === 0) delete obj.metadata.annotations;
  }
  if (isCoreSecret(obj)) return obj;
  obj.metadata.annotations = {
    ...(obj.metadata.annotations ?? {}),
    [APPLIED_DIGEST_ANNOTATION]: digestOf(obj),
  };
  return obj;
}

/**
 * True when `live` is what berth last applied of `desired`: the digest annotations agree, and no manager
 * other than berth (status-subresource writers aside) wrote the object at or after berth's last apply.
 */
export function untouchedSinceApplied(live: KubeObject, desired: KubeObject): boolean {
  const want = desired.metadata.annotations?.[APPLIED_DIGEST_ANNOTATION];
  if (!want || live.metadata.annotations?.[APPLIED_DIGEST_ANNOTATION] !== want) return false;
  if (live.metadata.deletionTimestamp) return false;
  const entries = live.metadata.managedFields ?? [];
  const ours = entries.find((m) => m.manager === FIELD_MANAGER && m.operation === "Apply" && !m.subresource);
  const appliedAt = ours?.time;
  if (!appliedAt) return false;
  return entries.every(
    (m) =>
      m === ours ||
      m.subresource === "status" ||
      // managedFields times have one-second resolution: a write in the same second is not known to be older.
      (m.time !== undefined && m.time !== null && m.time < appliedAt),
  );
}

function stripTimes(obj: KubeObject): KubeObject {
  const copy = structuredClone(obj);
  for (const m of copy.metadata.managedFields ?? []) delete m.time;
  return copy;
}

function summarize(changes: readonly PlannedChange[]): Record<Action, number> {
  const summary: Record<Action, number> = { created: 0, configured: 0, unchanged: 0, deleted: 0, skipped: 0 };
  for (const c of changes) summary[c.action]++;
  return summary;
}

/** True if applying the plan would write anything. */
export function hasWrites(p: Plan): boolean {
  return p.summary.created + p.summary.configured + p.summary.deleted > 0;
}
