/** Open routes: liveness, readiness, metrics and the status page (which holds no data; it asks the API). */
import { Hono } from "hono";
import { messageOf } from "../../object/errors.ts";
import type { ApiDeps, ApiEnv } from "../app.ts";
import { STATUS_PAGE } from "../status-page.ts";
import type { AppLookup } from "./context.ts";

export function probeRoutes(deps: ApiDeps, apps: AppLookup): Hono<ApiEnv> {
  const r = new Hono<ApiEnv>();
  r.get("/healthz", (c) => c.json({ status: "ok" }));
  r.get("/readyz", (c) => {
    let ledgerOpen = true;
    let problem: string | undefined;
    try {
      deps.ledger.list({ limit: 1 });
      // Readable is not enough: a ledger that cannot record (disk full, I/O error) stops every sync.
      problem = deps.ledger.writeProblem?.() ?? deps.loop.ledgerError;
      if (problem) ledgerOpen = false;
    } catch (err) {
      ledgerOpen = false;
      problem = messageOf(err);
    }
    const checks = { ledger: ledgerOpen, config: true, firstReconcile: deps.loop.ticks > 0 };
    const ready = Object.values(checks).every(Boolean);
    return c.json(
      { status: ready ? "ready" : "not ready", checks, ...(problem ? { problem } : {}) },
      ready ? 200 : 503,
    );
  });
  r.get("/metrics", (c) => {
    const text = deps.metrics.render({
      // Statuses, not whole views: a scrape of many apps reads no drift or history it does not report.
      apps: apps.statuses().map((v) => ({
        app: v.name,
        revision: v.applied ?? "",
        syncStatus: v.syncStatus,
        healthStatus: v.healthStatus,
      })),
      kube: deps.kubeCodes(),
    });
    return c.text(text, 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
  });
  r.get("/", (c) => c.html(STATUS_PAGE, 200, { "Cache-Control": "no-store" }));
  return r;
}
