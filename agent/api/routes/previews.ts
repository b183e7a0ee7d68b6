/** Previews of unmerged heads (agent/engine/previews.ts): every followed ref, or one. */
import { Hono } from "hono";
import type { ApiDeps, ApiEnv } from "../app.ts";
import { HttpError } from "../http-error.ts";

export function previewRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const r = new Hono<ApiEnv>();
  r.get("/api/v1/previews", (c) => {
    const lane = deps.previews;
    if (!lane) return c.json({ enabled: false, previews: [] });
    return c.json({ enabled: true, ...(lane.error ? { error: lane.error } : {}), previews: lane.list() });
  });
  r.get("/api/v1/previews/:ref{.+}", (c) => {
    const ref = decodeURIComponent(c.req.param("ref"));
    const found = deps.previews?.get(ref);
    if (!found)
      throw new HttpError(
        404,
        "NotFound",
        deps.previews
          ? `preview of ${ref}: not previewed`
          : "previews are not configured (previews: in berth.yaml)",
      );
    return c.json(found);
  });
  return r;
}
