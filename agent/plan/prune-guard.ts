/**
 * Prune safety: deleting a Namespace, a CustomResourceDefinition, a PersistentVolume or a PersistentVolumeClaim
 * takes data or other objects with it, and a plan deleting most of an app is more likely a broken render than an
 * intent. Both are held for an explicit consent instead of pruned. `guardPrunes` is the pure decision;
 * `describeCascade` asks the cluster what one deletion would take with it.
 */
import { type KubeObject, type ObjectRef, objectId, PRUNE_ANNOTATION, subject } from "../object/object.ts";
import { mapLimit } from "../object/pool.ts";

/** The share of an app's inventory one plan may delete without an approval. */
export const DEFAULT_MAX_FRACTION = 0.5;

/** The annotation value on a live object that lets an approval prune it although its deletion cascades. */
export const PRUNE_CONFIRM = "confirm";

/** The app's prune settings the guard reads; absent fields take the defaults (cascade held, 0.5). */
export interface PruneSafetySettings {
  cascade?: "allow" | "hold";
  maxFraction?: number;
}

/** Why a sync is held before anything is written. */
export interface PlanHold {
  /** The object, or `app NAME` for the mass-prune guard. */
  subject: string;
  /** The object's id, for a hold on one object's deletion (a sync rule that protects it lifts the hold). */
  id?: string;
  message: string;
  /** False when an approval alone does not lift it (the object lacks `berth.dev/prune: confirm`). */
  approvable: boolean;
}

/** One planned deletion as the guard sees it. */
export interface GuardedDeletion {
  ref: ObjectRef;
  live?: KubeObject;
  /** What deleting it takes with it (from describeCascade); undefined when it does not cascade. */
  cascade?: string;
}

/** Kinds whose deletion takes data or other objects with it, by `group/kind`. */
const CASCADE_KINDS = new Set([
  "/Namespace",
  "apiextensions.k8s.io/CustomResourceDefinition",
  "/PersistentVolume",
  "/PersistentVolumeClaim",
]);

/** True if deleting an object of this kind deletes data or other objects with it. */
export function cascades(ref: ObjectRef): boolean {
  return CASCADE_KINDS.has(`${ref.group}/${ref.kind}`);
}

/** The holds a set of planned deletions calls for (pure). */
export function guardPrunes(input: {
  app: string;
  revision: string;
  settings?: PruneSafetySettings;
  deletions: readonly GuardedDeletion[];
  inventorySize: number;
}): PlanHold[] {
  const holds: PlanHold[] = [];
  const cascadeAllowed = input.settings?.cascade === "allow";
  for (const d of input.deletions) {
    if (!cascades(d.ref) || cascadeAllowed) continue;
    const confirmed = d.live?.metadata.annotations?.[PRUNE_ANNOTATION] === PRUNE_CONFIRM;
    const what = d.cascade ?? `${subject(d.ref)}: deleting it deletes what it holds`;
    holds.push({
      subject: subject(d.ref),
      id: objectId(d.ref),
      approvable: confirmed,
      message: confirmed
        ? `${what}; it is annotated ${PRUNE_ANNOTATION}: ${PRUNE_CONFIRM}, so an approval prunes it`
        : `${what}; to prune it, annotate it ${PRUNE_ANNOTATION}=${PRUNE_CONFIRM} and approve the revision, or set prune: { cascade: allow } on app ${input.app}`,
    });
  }
  const max = input.settings?.maxFraction ?? DEFAULT_MAX_FRACTION;
  const n = input.deletions.length;
  if (input.inventorySize > 0 && n / input.inventorySize > max) {
    holds.push({
      subject: `app ${input.app}`,
      approvable: true,
      message: `the plan deletes ${n} of the app's ${input.inventorySize} objects (${percent(n / input.inventorySize)}), more than prune.maxFraction ${percent(max)}`,
    });
  }
  return holds;
}

function percent(x: number): string {
  return `${Math.round(x * 100)}%`;
}

/** A kind the API server serves, as the cascade count needs it. */
export interface ServedKind {
  group: string;
  version: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
}

/** The cluster reads describeCascade uses (KubeClient satisfies it). */
export interface CascadeCluster {
  resource(group: string, version: string, kind: string): { namespaced: boolean } | undefined;
  get(ref: ObjectRef): Promise<KubeObject | undefined>;
  /** Every kind served, one version each. */
  servedKinds(): ServedKind[];
  /** Objects of a kind, in one namespace or (without) across all. */
  listKind(kind: { group: string; version: string; kind: string }, namespace?: string): Promise<KubeObject[]>;
}

/** What deleting a cascading object takes with it, read from the cluster; undefined for other kinds. */
export async function describeCascade(
  ref: ObjectRef,
  live: KubeObject | undefined,
  cluster: CascadeCluster,
): Promise<string | undefined> {
  if (!cascades(ref)) return undefined;
  const s = subject(ref);
  switch (ref.kind) {
    case "Namespace": {
      // Events come and go by themselves; counting them would make the number meaningless.
      const kinds = cluster
        .servedKinds()
        .filter((k) => k.namespaced && k.verbs.includes("list") && k.kind !== "Event");
      const counts = new Map<string, number>();
      const unlisted: string[] = [];
      await mapLimit(kinds, 8, async (k) => {
        try {
          const n = (await cluster.listKind(k, ref.name)).length;
          if (n > 0) counts.set(k.kind, (counts.get(k.kind) ?? 0) + n);
        } catch {
          // An unavailable aggregated API must not hide the rest of the count; the hold says what it missed.
          unlisted.push(k.group ? `${k.kind}.${k.group}` : k.kind);
        }
      });
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      const byKind = [...counts.entries()]
        .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
        .map(([k, n]) => `${n} ${k}`)
        .join(", ");
      const missed = unlisted.length > 0 ? `; could not list ${unlisted.sort().join(", ")}` : "";
      return `${s} holds ${unlisted.length > 0 ? "at least " : ""}${total} object${total === 1 ? "" : "s"}${total > 0 ? ` (${byKind})` : ""}${missed}`;
    }
    case "CustomResourceDefinition": {
      const spec = (live?.spec ?? {}) as {
        group?: string;
        names?: { kind?: string; plural?: string };
        versions?: Array<{ name?: string; served?: boolean }>;
      };
      const kind = spec.names?.kind;
      const version = spec.versions?.find((v) => v.served !== false && v.name)?.name;
      if (!spec.group || !kind || !version || !cluster.resource(spec.group, version, kind))
        return `${s}: deleting it deletes every custom resource it defines`;
      const n = (await cluster.listKind({ group: spec.group, version, kind })).length;
      return `${s} defines ${n} ${kind} object${n === 1 ? "" : "s"}, deleted with it`;
    }
    case "PersistentVolumeClaim": {
      const volume = (live?.spec as { volumeName?: string } | undefined)?.volumeName;
      if (!volume) return `${s} is not bound to a volume`;
      const pv = await cluster.get({
        group: "",
        version: "v1",
        kind: "PersistentVolume",
        namespace: "",
        name: volume,
      });
      const policy = (pv?.spec as { persistentVolumeReclaimPolicy?: string } | undefined)
        ?.persistentVolumeReclaimPolicy;
      return `${s} is bound to PersistentVolume/${volume}${policy ? ` (reclaimPolicy ${policy}${policy === "Delete" ? ": its data is deleted" : ""})` : ""}`;
    }
    case "PersistentVolume": {
      const spec = (live?.spec ?? {}) as {
        persistentVolumeReclaimPolicy?: string;
        claimRef?: { namespace?: string; name?: string };
      };
      const claim = spec.claimRef?.name
        ? `, bound to PersistentVolumeClaim/${spec.claimRef.namespace ?? ""}/${spec.claimRef.name}`
        : "";
      return `${s} holds its volume's data (reclaimPolicy ${spec.persistentVolumeReclaimPolicy ?? "unknown"})${claim}`;
    }
    default:
      return `${s}: deleting it deletes what it holds`;
  }
}

/**
 * Why an object is deleted, for `berth plan` and the ledger: the commit it left Git in, and whether its file
 * was removed or still exists but no longer renders it. `source` is where it was rendered from last time
 * (`file#doc`, or a tool's label); `fileExists` answers for the current commit.
 */
export async function deletionReason(
  revision: string,
  source: string | undefined,
  fileExists: ((path: string) => Promise<boolean>) | undefined,
): Promise<string> {
  const sha = /sha1:([0-9a-f]+)/.exec(revision)?.[1];
  const left = `left Git in commit ${sha ? sha.slice(0, 12) : revision}`;
  if (!source) return left;
  const hash = source.lastIndexOf("#");
  const file = hash >= 0 ? source.slice(0, hash) : source;
  // A tool's output (`kustomize build apps/web#3`) has no file of its own to have been removed.
  if (!fileExists || /\s/.test(file)) return `${left}: ${source} no longer renders it`;
  return (await fileExists(file))
    ? `${left}: document ${source} no longer renders it (the file is still there)`
    : `${left}: file ${file} removed`;
}
