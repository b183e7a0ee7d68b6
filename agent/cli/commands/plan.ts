/** `berth plan`: what a sync would change, without writing. */
import type { AppConfig } from "../../config/config.ts";
import { dependenciesOf } from "../../config/dependency-order.ts";
import { silentLogger } from "../../engine/log.ts";
import { objectId } from "../../object/object.ts";
import { fromDependencies } from "../../plan/dependencies.ts";
import { plan } from "../../plan/plan.ts";
import { EXIT, type Io, selectApps, type Values } from "../common.ts";
import { formatPlan, formatSkipped, formatVerdicts } from "../format.ts";
import { type GlobalFlags, wire } from "../wire.ts";

export async function planCommand(flags: GlobalFlags, values: Values, io: Io): Promise<number> {
  const w = await wire(flags, silentLogger);
  try {
    const snapshot = await w.source.snapshot(await w.source.resolve());
    await w.kube.discover();
    let failed = false;
    const plans = [];
    // Each app renders once; dependencies render too, even when not selected, for what they create.
    const renders = new Map<string, ReturnType<typeof w.deps.render>>();
    const renderOf = (app: AppConfig) => {
      const cached = renders.get(app.name) ?? w.deps.render(snapshot, app);
      renders.set(app.name, cached);
      return cached;
    };
    for (const app of selectApps(w.config.apps, values.app)) {
      const rendered = await renderOf(app);
      if (rendered.errors.length > 0) {
        failed = true;
        io.err(rendered.errors.map((e) => `✗ ${app.name}: ${e.path}: ${e.message}\n`).join(""));
        continue;
      }
      const owners = w.ledger.inventoryOwners(app.name);
      // Nothing is applied between plans: what an earlier app in dependsOn order creates is validated after it.
      const dependencies = dependenciesOf(app, w.config.apps);
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
        },
        w.clientFor(app.name),
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
    if (values.json) {
      // Live objects and manifests stay out of the JSON; the diff carries what changes (Secret values redacted).
      const slim = plans.map((p) => ({
        ...p,
        changes: p.changes.map(({ desired: _d, live: _l, ...c }) => c),
      }));
      io.out(`${JSON.stringify(slim, null, 2)}\n`);
    } else
      for (const p of plans)
        io.out(
          `${formatPlan(p, values.verbose)}${formatSkipped(p.skipped)}${formatVerdicts(p.verdicts)}${p.blocked ? `  ✗ blocked: ${p.blocked}\n` : ""}`,
        );
    return failed ? EXIT.failed : EXIT.ok;
  } finally {
    w.close();
  }
}
