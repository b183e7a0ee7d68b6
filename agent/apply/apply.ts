/**
 * Staged server-side apply of a plan: definitions (CRDs, Namespaces, cluster
 * RBAC) first, then wait until the CRDs are Established, then classes,
 * workloads, and admission webhooks last. A failing stage stops the ones after it.
 */
import { messageOf } from "../object/errors.ts";
import type { KubeObject, ObjectRef } from "../object/object.ts";
import { STAGES } from "../object/order.ts";
import { mapLimit } from "../object/pool.ts";

/** The cluster operations apply needs (KubeClient satisfies it). */
export interface ApplyCluster {
  apply(obj: KubeObject, options: { dryRun?: boolean; force?: boolean }): Promise<KubeObject>;
  get(ref: ObjectRef): Promise<KubeObject | undefined>;
  discover(force?: boolean): Promise<void>;
}

/** The part of a planned change apply reads. */
export interface ApplyChange {
  ref: ObjectRef;
  subject: string;
  action: string;
  stage: string;
  desired?: KubeObject;
  owned: boolean;
}

/** One object apply wrote, or failed to. */
export interface ApplyOutcome {
  subject: string;
  ref: ObjectRef;
  ok: boolean;
  result?: KubeObject;
  error?: string;
}

export interface ApplyOptions {
  force: boolean;
  concurrency?: number;
  crdTimeoutMs?: number;
  onApplied?: (outcome: ApplyOutcome) => void;
}

/** Applies every created/configured change stage by stage; returns per-object outcomes. */
export async function applyStaged(
  changes: readonly ApplyChange[],
  cluster: ApplyCluster,
  options: ApplyOptions,
): Promise<{ outcomes: ApplyOutcome[]; failed: boolean }> {
  const outcomes: ApplyOutcome[] = [];
  for (const stage of STAGES) {
    const batch = changes.filter(
      (c) => c.stage === stage && (c.action === "created" || c.action === "configured"),
    );
    if (batch.length === 0) continue;
    const results = await mapLimit(batch, options.concurrency ?? 8, async (change) => {
      const outcome = await applyOne(change, cluster, options.force || change.owned);
      options.onApplied?.(outcome);
      return outcome;
    });
    outcomes.push(...results);
    if (results.some((r) => !r.ok)) return { outcomes, failed: true };
    const crds = results.filter((r) => r.ref.kind === "CustomResourceDefinition");
    if (crds.length > 0) {
      const waited = await waitEstablished(crds, cluster, options.crdTimeoutMs ?? 60_000);
      if (waited) {
        outcomes.push(waited);
        return { outcomes, failed: true };
      }
      // The new kinds must be known before objects of them are applied.
      await cluster.discover(true);
    }
  }
  return { outcomes, failed: false };
}

async function applyOne(change: ApplyChange, cluster: ApplyCluster, force: boolean): Promise<ApplyOutcome> {
  try {
    const result = await cluster.apply(change.desired as KubeObject, { force });
    return { subject: change.subject, ref: change.ref, ok: true, result };
  } catch (err) {
    return { subject: change.subject, ref: change.ref, ok: false, error: explainApplyError(err) };
  }
}

/** Turns an API error into a message a user can act on. */
export function explainApplyError(err: unknown): string {
  const e = err as { status?: number; message?: string };
  const message = messageOf(err);
  if (e.status === 409) return `conflict: ${message} (set force: true on the app to take these fields over)`;
  if (e.status === 422 && /immutable/i.test(message)) {
    return `immutable field changed: ${message} (revert the change, or delete the object so it can be recreated)`;
  }
  return message;
}

/** Waits until every applied CRD reports Established=True; returns a failed outcome on timeout. */
async function waitEstablished(
  crds: readonly ApplyOutcome[],
  cluster: ApplyCluster,
  timeoutMs: number,
): Promise<ApplyOutcome | undefined> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(crds);
  while (pending.size > 0) {
    for (const crd of [...pending]) {
      const live = await cluster.get(crd.ref);
      const conditions = (
        live?.status as { conditions?: Array<{ type: string; status: string }> } | undefined
      )?.conditions;
      if (conditions?.some((c) => c.type === "Established" && c.status === "True")) pending.delete(crd);
    }
    if (pending.size === 0) return undefined;
    if (Date.now() > deadline) {
      const first = [...pending][0] as ApplyOutcome;
      return { ...first, ok: false, error: `not Established after ${Math.round(timeoutMs / 1000)}s` };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return undefined;
}
