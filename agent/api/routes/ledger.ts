/** The ledger over HTTP: pages of entries, newest first, and one entry. */
import { Hono } from "hono";
import { MAX_LIST_LIMIT } from "../../ledger/ledger.ts";
import type { ApiDeps, ApiEnv } from "../app.ts";
import { HttpError } from "../http-error.ts";
import { type AppLookup, intParam } from "./context.ts";

export function ledgerRoutes(deps: ApiDeps, apps: AppLookup): Hono<ApiEnv> {
  const r = new Hono<ApiEnv>();
  r.get("/api/v1/ledger", (c) => {
    const query: { app?: string; limit?: number; before?: number } = {};
    const appName = c.req.query("app");
    // A retired generated app (its directory gone, its objects pruned) keeps its history in the ledger.
    if (appName !== undefined)
      query.app =
        deps.ledger.list({ app: appName, limit: 1 }).length > 0 ? appName : apps.specOf(appName).name;
    const limit = intParam("limit", c.req.query("limit"), 1, MAX_LIST_LIMIT);
    const before = intParam("before", c.req.query("before"), 1, Number.MAX_SAFE_INTEGER);
    if (limit !== undefined) query.limit = limit;
    if (before !== undefined) query.before = before;
    const entries = deps.ledger.list(query);
    const last = entries.at(-1);
    const pageSize = limit ?? 50;
    return c.json({ entries, ...(last && entries.length === pageSize ? { next: last.id } : {}) });
  });
  r.get("/api/v1/ledger/:id", (c) => {
    const id = intParam("id", c.req.param("id"), 1, Number.MAX_SAFE_INTEGER) ?? 0;
    const entry = deps.ledger.get(id);
    if (!entry) throw new HttpError(404, "NotFound", `ledger entry ${id}: not found`);
    return c.json(entry);
  });
  return r;
}
