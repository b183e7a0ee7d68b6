/** The apps: their views, and the operator's actions on one (sync, suspend, resume, approve, pin, unpin). */
import { Hono } from "hono";
import { parseDuration } from "../../config/duration.ts";
import { BerthError } from "../../object/errors.ts";
import type { ApiDeps, ApiEnv } from "../app.ts";
import { appView, type LedgerView } from "../app-view.ts";
import { HttpError } from "../http-error.ts";
import { type AppLookup, byCaller, readJson } from "./context.ts";

export function appRoutes(deps: ApiDeps, apps: AppLookup): Hono<ApiEnv> {
  const r = new Hono<ApiEnv>();
  r.get("/api/v1/apps", (c) =>
    c.json({
      apps: apps.views(),
      ...(deps.failingDeliveries ? { failingDeliveries: deps.failingDeliveries() } : {}),
    }),
  );
  r.get("/api/v1/apps/:name", (c) => {
    const spec = apps.specOf(c.req.param("name"));
    return c.json(appView(spec, apps.stateOf(spec.name), apps.gitOf(spec), deps.ledger, true));
  });
  r.post("/api/v1/apps/:name/:action{sync|suspend|resume}", async (c) => {
    const spec = apps.specOf(c.req.param("name"));
    await readJson(c, "ActionRequest", true);
    const action = c.req.param("action");
    if (action === "suspend") {
      deps.loop.suspend(spec.name);
      return c.json({ app: spec.name, syncStatus: "Suspended" });
    }
    if (action === "resume") {
      deps.loop.resume(spec.name, byCaller(c));
      return c.json({ app: spec.name, syncStatus: apps.stateOf(spec.name)?.status ?? "Pending" });
    }
    // Answered at once, not when the attempt starts: with many apps queued that can outlast the server's idle
    // timeout. The app's view and the event stream tell how it went.
    const refused = deps.loop.refusal?.(spec.name);
    if (refused) throw new HttpError(409, refused.reason, `app ${spec.name}: ${refused.message}`);
    deps.loop.trigger(spec.name, byCaller(c));
    const status = `/api/v1/apps/${encodeURIComponent(spec.name)}`;
    c.header("Location", status);
    return c.json(
      {
        app: spec.name,
        status,
        ledger: `/api/v1/ledger?app=${encodeURIComponent(spec.name)}`,
        events: "/api/v1/events",
      },
      202,
    );
  });

  // Approve a held sync (or override a sync window), pin and unpin: operator writes to the ledger.
  const control = <K extends "approve" | "pin" | "unpin">(name: K) => {
    const fn = deps.ledger[name];
    if (!fn) throw new HttpError(503, "NotImplemented", `this agent's ledger cannot ${name}`);
    return fn.bind(deps.ledger) as NonNullable<LedgerView[K]>;
  };
  // The ledger's refusal names the object; the subject says which request it was.
  const ledgerWrite = <T>(what: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof BerthError)
        throw new BerthError(err.message, {
          subject: what,
          cause: err,
          ...(err.reason ? { reason: err.reason } : {}),
        });
      throw err;
    }
  };
  r.post("/api/v1/apps/:name/approve", async (c) => {
    const spec = apps.specOf(c.req.param("name"));
    const body = ((await readJson(c, "ApproveRequest", true)) ?? {}) as {
      revision?: string;
      expires?: string;
      overrideWindow?: boolean;
      by?: string;
    };
    const revision = body.revision ?? deps.ledger.list({ app: spec.name, limit: 1 })[0]?.revision;
    if (!revision)
      throw new HttpError(409, "NothingToApprove", `app ${spec.name}: no ledger entry yet; give a revision`);
    const ms = parseDuration(body.expires ?? "1h") ?? 3_600_000;
    const approve = control("approve");
    const approval = ledgerWrite(`app ${spec.name}`, () =>
      approve(spec.name, revision, body.by ?? "api", new Date(Date.now() + ms), {
        overrideWindow: body.overrideWindow === true,
      }),
    );
    deps.log?.log("info", "sync approved", { app: spec.name, revision, by: approval.by });
    deps.onApproved?.({ app: spec.name, revision, by: approval.by, expiresAt: approval.expiresAt });
    deps.loop.trigger(spec.name, byCaller(c));
    return c.json(approval);
  });
  r.post("/api/v1/apps/:name/:action{pin|unpin}", async (c) => {
    const spec = apps.specOf(c.req.param("name"));
    if (c.req.param("action") === "pin") {
      const body = (await readJson(c, "PinRequest", false)) as { entry: number };
      const pin = control("pin");
      ledgerWrite(`app ${spec.name}, entry ${body.entry}`, () => pin(spec.name, body.entry));
    } else {
      await readJson(c, "ActionRequest", true);
      const unpin = control("unpin");
      ledgerWrite(`app ${spec.name}`, () => unpin(spec.name));
    }
    // The next attempt replays the pinned entry (or, after unpin, catches up with Git).
    deps.loop.trigger(spec.name, byCaller(c));
    const pinned = deps.ledger.pinOf?.(spec.name);
    return c.json({ app: spec.name, ...(pinned ? { pinned } : {}) });
  });
  return r;
}
