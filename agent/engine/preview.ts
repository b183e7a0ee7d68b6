/**
 * previewApp(): what a sync of an unmerged head would do, without doing any of it — render → plan (server-side
 * dry-run) → sync rules and prune guards → a result. It is a separate entry from reconcile() on purpose: it is
 * given no ledger writer, no apply or prune stage and only a read-only cluster port, so no write path is
 * reachable from it. Nothing throws past here; every failure is an `error` result naming its file or object.
 */
import { messageOf } from "../object/errors.ts";
import { capMessage } from "../object/message.ts";
import { type KubeObject, type ObjectRef, objectId, type VerdictRecord } from "../object/object.ts";
import type { InventoryItem } from "../object/records.ts";
import type { Snapshot } from "../object/snapshot.ts";
import { type Plan, plan } from "../plan/plan.ts";
import type { AppPreview, AppSpec, PolicyPort, PreviewCluster, PreviewObject, RenderPort } from "./ports.ts";

/** What a preview may use: reads only. */
export interface PreviewDeps {
  render: RenderPort;
  /** The cluster as the app sees it (its ServiceAccount, if any); wrapped so every apply is a dry-run. */
  clusterFor: (app: AppSpec) => PreviewCluster;
  /** The app's inventory (ledger read): what a sync would prune is judged against it. */
  inventory: (app: string) => InventoryItem[];
  /** Object id → owning app, for every other app's inventory (ledger read). */
  inventoryOwners?: (app: string) => Map<string, string>;
  /** A Secret's keyed applied digest (ledger): without it every Secret would preview as changed. */
  secretDigest?: (obj: KubeObject) => Promise<string>;
  policy?: PolicyPort;
}

/**
 * The cluster port a preview plans against: reads pass through, and every apply is sent as a server-side
 * dry-run whatever the caller asked for — so even a bug in the plan cannot write.
 */
export function dryRunOnly(cluster: PreviewCluster): PreviewCluster {
  const out: PreviewCluster = {
    discover: (force) => cluster.discover(force),
    resource: (group, version, kind) => cluster.resource(group, version, kind),
    get: (ref) => cluster.get(ref),
    apply: (obj, options) => cluster.apply(obj, { ...options, dryRun: true }),
  };
  const { servedKinds, listKind } = cluster;
  if (servedKinds) out.servedKinds = () => servedKinds.call(cluster);
  if (listKind) out.listKind = (kind, namespace) => listKind.call(cluster, kind, namespace);
  return out;
}

/** Previews one app at a snapshot. */
export async function previewApp(
  deps: PreviewDeps,
  app: AppSpec,
  snapshot: Snapshot,
  signal?: AbortSignal,
): Promise<AppPreview> {
  const failed = (errors: AppPreview["errors"]): AppPreview => ({
    app: app.name,
    outcome: "error",
    summary: `error: ${errors
      .slice(0, 1)
      .map((e) => `${e.subject}: ${e.message}`)
      .join("")}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ""}`,
    counts: { created: 0, changed: 0, deleted: 0, unchanged: 0, skipped: 0 },
    objects: [],
    verdicts: [],
    guard: [],
    errors: errors.map((e) => ({ subject: e.subject, message: capMessage(e.message) })),
  });
  let rendered: Awaited<ReturnType<RenderPort>>;
  try {
    rendered = await deps.render(snapshot, app, signal);
  } catch (err) {
    return failed([{ subject: app.path || ".", message: messageOf(err) }]);
  }
  if (rendered.errors.length > 0)
    return failed(rendered.errors.map((e) => ({ subject: e.path, message: e.message })));
  const cluster = dryRunOnly(deps.clusterFor(app));
  const owners = deps.inventoryOwners?.(app.name);
  let planned: Plan;
  try {
    await cluster.discover();
    planned = await plan(
      {
        app,
        revision: snapshot.revision,
        desired: rendered.objects,
        inventory: deps.inventory(app.name),
        ...(owners ? { ownerOf: (ref: ObjectRef) => owners.get(objectId(ref)) } : {}),
        fileExists: async (path) => (await snapshot.stat(path)) !== undefined,
        ...(deps.secretDigest ? { secretDigest: deps.secretDigest } : {}),
      },
      cluster,
    );
  } catch (err) {
    return failed([{ subject: `app ${app.name}`, message: messageOf(err) }]);
  }
  if (planned.errors.length > 0)
    return {
      ...failed(
        planned.errors.map((e) => ({
          subject: `${e.subject}${e.source ? ` (${e.source})` : ""}`,
          message: e.message,
        })),
      ),
      ...describe(planned),
      outcome: "error",
    };
  const guard = (planned.holds ?? []).map((h) => ({
    subject: h.subject,
    message: h.message,
    approvable: h.approvable,
  }));
  let verdicts: VerdictRecord[] = [];
  let blocked: string | undefined;
  if (deps.policy) {
    let judged: ReturnType<PolicyPort["judge"]>;
    try {
      judged = deps.policy.judge({ app, plan: planned, commit: snapshot.commit });
    } catch (err) {
      return failed([{ subject: `app ${app.name}`, message: `the sync rules failed: ${messageOf(err)}` }]);
    }
    planned = judged.plan;
    verdicts = [...judged.verdicts];
    blocked = judged.blocked?.message;
  } else if (guard.length > 0) {
    // Without sync rules nothing lifts the guard's holds: the sync would stop as reconcile() stops it.
    blocked = guard.map((h) => `held by the prune guard: ${h.message}`).join("; ");
    verdicts = guard.map((h) => ({
      rule: "prune-guard",
      verdict: "hold",
      subject: h.subject,
      message: h.message,
      at: "built-in",
    }));
  }
  const described = describe(planned);
  const stop = blocked ? stoppedBy(verdicts) : undefined;
  const changed = described.counts.created + described.counts.changed + described.counts.deleted > 0;
  const outcome: AppPreview["outcome"] = stop?.outcome ?? (changed ? "changes" : "clean");
  return {
    app: app.name,
    outcome,
    summary: [countsLine(described.counts), stop?.line].filter(Boolean).join("; "),
    ...described,
    verdicts,
    guard,
    errors: [],
    ...(blocked ? { blocked: capMessage(blocked) } : {}),
  };
}

/** Counts and the object list of a plan, changes first. */
function describe(p: Plan): Pick<AppPreview, "counts" | "objects"> {
  const s = p.summary;
  const counts = {
    created: s.created,
    changed: s.configured,
    deleted: s.deleted,
    unchanged: s.unchanged,
    skipped: s.skipped,
  };
  const rank = { deleted: 0, created: 1, configured: 2, skipped: 3, unchanged: 4 } as const;
  const objects: PreviewObject[] = [...p.changes]
    .sort((a, b) => rank[a.action] - rank[b.action] || a.subject.localeCompare(b.subject))
    .map((c) => ({
      subject: c.subject,
      action: c.action,
      ...(c.source ? { source: c.source } : {}),
      ...(c.note ? { note: c.note } : {}),
      ...(c.diff.length > 0 ? { diff: c.diff.map((d) => d.path) } : {}),
    }));
  return { counts, objects };
}

/** "3 changed, 1 deleted" (only the actions that write), or "no changes". */
export function countsLine(c: AppPreview["counts"]): string {
  const parts = [
    c.created ? `${c.created} created` : "",
    c.changed ? `${c.changed} changed` : "",
    c.deleted ? `${c.deleted} deleted` : "",
  ].filter(Boolean);
  return parts.length > 0 ? parts.join(", ") : "no changes";
}

/** What would stop the sync, in the judge's order (a failed rule, deny, hold, defer), and who says so. */
function stoppedBy(
  verdicts: readonly VerdictRecord[],
): { outcome: AppPreview["outcome"]; line: string } | undefined {
  const kinds = [
    ["error", "error", "error in"],
    ["deny", "denied", "denied by"],
    ["hold", "held", "held by"],
    ["defer", "deferred", "deferred by"],
  ] as const;
  for (const [verdict, outcome, words] of kinds) {
    const hits = verdicts.filter((v) => v.verdict === verdict && v.approvedBy === undefined);
    if (hits.length === 0) continue;
    const names = [...new Set(hits.map((v) => v.rule))].map((r) =>
      r === "prune-guard" ? "the prune guard" : `rule ${r}`,
    );
    return { outcome, line: `${words} ${names.join(", ")}` };
  }
  return undefined;
}
