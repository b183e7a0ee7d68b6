/** `berth plan [APP...] [--ref REF]`: what a sync would change, without writing. */
import { type AppConfig, DEFAULT_SOURCE } from "../../config/config.ts";
import { silentLogger } from "../../engine/log.ts";
import { clusterOf } from "../../engine/ports.ts";
import { dependenciesOf } from "../../object/dependency-order.ts";
import type { VerdictRecord } from "../../object/object.ts";
import { objectId } from "../../object/object.ts";
import type { Snapshot } from "../../object/snapshot.ts";
import { fromDependencies } from "../../plan/dependencies.ts";
import { type Plan, plan } from "../../plan/plan.ts";
import { appsAt, type Ctx, EXIT, fetchSnapshots, type Io, namedApps, printData } from "../common.ts";
import { bookkeeping, formatPlan, formatSkipped, formatVerdicts } from "../format.ts";
import { type GlobalFlags, type Wired, wire } from "../wire.ts";

/** One app's plan as `plan` and `diff` show it. */
export type ShownPlan = Plan & {
  skipped: Array<{ path: string; message: string }>;
  verdicts: VerdictRecord[];
  blocked?: string;
};

export async function planCommand(flags: GlobalFlags, ctx: Ctx, io: Io): Promise<number> {
  const names = namedApps(flags.config, ctx);
  const w = await wire(flags, silentLogger);
  try {
    const { plans, failed } = await planApps(w, names, io, false, ctx.values.ref);
    if (ctx.output === "json" || ctx.output === "yaml") {
      // Live objects and manifests stay out; the diff carries what changes (Secret values redacted), without
      // berth's own bookkeeping labels and annotations.
      const slim = plans.map((p) => ({
        ...p,
        changes: p.changes.map(({ desired: _d, live: _l, merged: _m, ...c }) => ({
          ...c,
          diff: c.diff.filter((d) => !bookkeeping(d.path)),
        })),
      }));
      printData(io, ctx.output, slim);
    } else
      for (const p of plans)
        io.out(
          `${formatPlan(p, ctx.values.verbose)}${formatSkipped(p.skipped)}${formatVerdicts(p.verdicts)}${p.blocked ? `  ✗ blocked: ${p.blocked}\n` : ""}`,
        );
    return failed ? EXIT.failed : EXIT.ok;
  } finally {
    w.close();
  }
}

/** Plans the named apps (all when none) as a sync would; render errors go to stderr and fail the result. */
export async function planApps(
  w: Wired,
  names: readonly string[],
  io: Io,
  keepMerged: boolean,
  ref?: string,
): Promise<{ plans: ShownPlan[]; failed: boolean }> {
  const snapshots = await fetchSnapshots(w, true);
  // --ref: another ref of the default source's repository (a pull request's head), planned as if merged.
  if (ref) {
    const name = snapshots.has(DEFAULT_SOURCE) ? DEFAULT_SOURCE : [...snapshots.keys()][0];
    if (name !== undefined) {
      const other = w.repository(name).withRef(ref);
      snapshots.set(name, await other.snapshot(await other.resolve()));
    }
  }
  const { all: allApps, selected } = await appsAt(w.config, snapshots, names);
  const snapshotOf = (app: AppConfig) => snapshots.get(app.source) as Snapshot;
  await w.kube.discover();
  let failed = false;
  const plans: ShownPlan[] = [];
  // Each app renders once; dependencies render too, even when not selected, for what they create.
  const renders = new Map<string, ReturnType<typeof w.deps.render>>();
  const renderOf = (app: AppConfig) => {
    const cached = renders.get(app.name) ?? w.deps.render(snapshotOf(app), app);
    renders.set(app.name, cached);
    return cached;
  };
  for (const app of selected) {
    const snapshot = snapshotOf(app);
    const rendered = await renderOf(app);
    if (rendered.errors.length > 0) {
      failed = true;
      io.err(rendered.errors.map((e) => `✗ ${app.name}: ${e.path}: ${e.message}\n`).join(""));
      continue;
    }
    const owners = w.ledger.inventoryOwners(app.name);
    // Nothing is applied between plans: what an earlier app in dependsOn order creates is validated after it.
    const dependencies = dependenciesOf(app, allApps);
    const after = fromDependencies(
      await Promise.all(
        dependencies.map(async (d) => ({
          app: d.name,
          objects: (await renderOf(d)).objects.map((o) => o.object),
        })),
      ),
    );
    const p = await plan(
      {
        app,
        revision: snapshot.revision,
        desired: rendered.objects,
        inventory: w.ledger.inventory(app.name),
        ownerOf: (ref) => owners.get(objectId(ref)),
        fileExists: async (path) => (await snapshot.stat(path)) !== undefined,
        after,
        keepMerged,
        // Without it a Secret would plan "configured" (its keyed digest annotation dropped) on every run.
        secretDigest: (o) => w.ledger.secretDigest(o),
      },
      // A generated app's identity comes from its own spec (the wiring's clusterFor knows both kinds).
      clusterOf(w.deps, app),
    );
    if (p.errors.length > 0) failed = true;
    // Sync rules judge the plan as a sync would: their verdicts show, and a blocked plan fails.
    const judged =
      p.errors.length === 0 && w.deps.policy
        ? w.deps.policy.judge({ app, plan: p, commit: snapshot.commit })
        : undefined;
    if (judged?.blocked) failed = true;
    plans.push({
      ...(judged?.plan ?? p),
      skipped: rendered.skipped.map((x) => ({ path: x.path, message: x.message })),
      verdicts: [...(judged?.verdicts ?? [])],
      ...(judged?.blocked ? { blocked: judged.blocked.message } : {}),
    });
  }
  return { plans, failed };
}
