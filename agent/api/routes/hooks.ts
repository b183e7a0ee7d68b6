/**
 * Push webhooks. They authenticate by signature, not by bearer token. A hook names its source in the path: a
 * URL in a payload comes in many spellings (ssh, https, .git, mirrors), a path is exact and each source has
 * its secret.
 */
import { type Context, Hono } from "hono";
import type { ApiDeps, ApiEnv } from "../app.ts";
import { HttpError } from "../http-error.ts";
import { DeliveryLog, PROVIDERS, type Provider, refMatches, verifyWebhook } from "../webhooks.ts";
import type { AppLookup } from "./context.ts";

export function hookRoutes(deps: ApiDeps, lookup: AppLookup): Hono<ApiEnv> {
  const r = new Hono<ApiEnv>();
  const deliveries = new DeliveryLog();
  const hook = async (c: Context<ApiEnv>, sourceName: string | undefined) => {
    const provider = c.req.param("provider") as Provider;
    if (!PROVIDERS.includes(provider))
      throw new HttpError(404, "NotFound", `webhook provider ${provider}: unknown`);
    let ref = deps.sourceRef;
    let settings = deps.webhook;
    let apps = () => lookup.appsNow().map((a) => a.name);
    if (deps.sources) {
      const name = sourceName ?? "default";
      const source = deps.sources[name];
      const names = Object.keys(deps.sources).join(", ");
      if (!source)
        throw new HttpError(
          404,
          "NotFound",
          sourceName === undefined
            ? `there is no default source: name one, POST /hooks/${provider}/<source> (sources: ${names})`
            : `source ${name}: no such source (sources: ${names})`,
        );
      // A registry sends no Git push event: an OCI source is polled (or synced on request), never hooked.
      if (source.oci !== undefined)
        throw new HttpError(
          422,
          "InvalidRequest",
          `source ${name} is an OCI artifact (${source.oci}): push webhooks do not apply; it is polled every interval (POST /api/v1/apps/<app>/sync fetches it at once)`,
        );
      ref = source.ref;
      settings = source.webhook ?? deps.webhook;
      apps = () =>
        lookup
          .appsNow()
          .filter((a) => (a.source ?? "default") === name)
          .map((a) => a.name);
    } else if (sourceName !== undefined && sourceName !== "default")
      throw new HttpError(404, "NotFound", `source ${sourceName}: no such source (sources: default)`);
    if (!settings)
      throw new HttpError(
        404,
        "WebhooksDisabled",
        "webhooks are not configured (api.webhook.secretFile, or the source's webhook.secretFile)",
      );
    const body = new Uint8Array(await c.req.arrayBuffer());
    const push = verifyWebhook(provider, (n) => c.req.header(n), body, settings, deliveries);
    if ("ignored" in push) return c.json({ triggered: [], ignored: push.ignored }, 202);
    if (!refMatches(push.ref, ref))
      return c.json({ triggered: [], ignored: `ref ${push.ref} is not ${ref}` }, 202);
    const ofSource = apps();
    if (push.app !== undefined && !ofSource.includes(lookup.specOf(push.app).name))
      throw new HttpError(
        422,
        "InvalidRequest",
        `app ${push.app} does not read source ${sourceName ?? "default"}; its hook is that of its own source`,
      );
    const triggered = (push.app !== undefined ? [push.app] : ofSource).filter(
      (a) => !lookup.stateOf(a)?.suspended,
    );
    // Fire and forget: the sender only needs to know we took it.
    for (const a of triggered) deps.loop.trigger(a, `webhook:${provider}`);
    deps.log?.log("info", "webhook triggered a sync", {
      provider,
      ...(sourceName !== undefined ? { source: sourceName } : {}),
      ref: push.ref,
      apps: triggered,
    });
    return c.json({ triggered }, 202);
  };
  r.post("/hooks/:provider", (c) => hook(c, undefined));
  r.post("/hooks/:provider/:source", (c) => hook(c, c.req.param("source")));
  return r;
}
