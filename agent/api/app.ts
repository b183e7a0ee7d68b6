/**
 * The HTTP API as a Hono app, built from the engine's dependencies and testable with `app.request()`.
 * Errors are HttpError, turned into `{error: {reason, message}}` by the one onError below.
 */
import { Buffer } from "node:buffer";
import { type Context, Hono } from "hono";
import { streamSSE } from "hono/streaming";
import { parseDuration } from "../config/duration.ts";
import type { EventBus } from "../engine/events.ts";
import type { Logger } from "../engine/log.ts";
import type { AppState, TriggerOutcome } from "../engine/loop.ts";
import type { Metrics } from "../engine/metrics.ts";
import type { RefPreview } from "../engine/ports.ts";
import { MAX_LIST_LIMIT } from "../ledger/ledger.ts";
import { BerthError, messageOf } from "../object/errors.ts";
import { type AppSpecView, type AppView, appView, type GitView, type LedgerView } from "./app-view.ts";
import { authorize, type Caller, type TokenEntry } from "./auth.ts";
import { HttpError } from "./http-error.ts";
import { openApiDocument } from "./openapi.ts";
import { validateBody } from "./schemas.ts";
import { STATUS_PAGE } from "./status-page.ts";
import {
  DeliveryLog,
  PROVIDERS,
  type Provider,
  refMatches,
  verifyWebhook,
  type WebhookSettings,
} from "./webhooks.ts";

/** The largest body of an API POST, bytes. */
export const MAX_API_BODY = 16 * 1024;
/** The largest webhook body, bytes (a push of many commits stays well below). */
export const MAX_HOOK_BODY = 1024 * 1024;
/** Seconds between keep-alive comments on the event stream. */
const SSE_HEARTBEAT_MS = 10_000;

/** What the API reads and drives in the run loop. */
export interface LoopControl extends GitView {
  status(): AppState[];
  /** `by` is recorded as the attempt's trigger: `api:<token name>`, `webhook:<provider>`. */
  triggerAndWait(app: string, by?: string): Promise<TriggerOutcome>;
  suspend(app: string): boolean;
  resume(app: string, by?: string): boolean;
  /** Asks for an attempt now without waiting (after an approval, pin or unpin); optional for fakes. */
  trigger?(app: string, by?: string): void;
  /** The apps run now, generated ones included (optional for fakes: then ApiDeps.apps). */
  appSpecs?(): ReadonlyArray<AppSpecView>;
  /** One source's revision and reachability (optional for fakes: then the loop's own GitView). */
  sourceView?(name: string): GitView | undefined;
  /** Completed passes; readiness needs one. */
  readonly ticks: number;
  /** Why the loop found the ledger unable to record (optional for fakes). */
  readonly ledgerError?: string | undefined;
}

/** What the API reads of the previews lane (agent/engine/previews.ts). */
export interface PreviewView {
  list(): RefPreview[];
  get(ref: string): RefPreview | undefined;
  readonly error: string | undefined;
}

/** Everything the API is built from. */
export interface ApiDeps {
  loop: LoopControl;
  ledger: LedgerView;
  apps: ReadonlyArray<AppSpecView>;
  /** The ref berth follows; webhooks for other refs trigger nothing. */
  sourceRef: string;
  /**
   * Every source by name with its ref and its own webhook secret (absent: `webhook`). With it, POST
   * /hooks/<provider>/<source> triggers only that source's apps, and /hooks/<provider> is the `default` source's.
   * `oci`: the source is that OCI artifact, which no push webhook applies to.
   */
  sources?: Readonly<Record<string, { ref: string; webhook?: WebhookSettings; oci?: string }>>;
  metrics: Metrics;
  /** Kubernetes request counts keyed "verb code". */
  kubeCodes: () => Readonly<Record<string, number>>;
  events: EventBus;
  tokens: readonly TokenEntry[];
  /** Tokenless reads (the caller enforces loopback-only). */
  anonymousRead: boolean;
  /** Absent: webhooks answer 404. */
  webhook?: WebhookSettings;
  /** The previews lane; absent: previews are not configured. */
  previews?: PreviewView;
  log?: Logger;
  /** Told of each approval made here (the notification outbox's Approved event). */
  onApproved?: (a: { app: string; revision: string; by: string; expiresAt: string }) => void;
  /** Notification receivers and the forge status outlet whose deliveries keep failing (the status page line). */
  failingDeliveries?: () => ReadonlyArray<{
    receiver: string;
    pending: number;
    attempts: number;
    lastError: string;
    since: string;
  }>;
}

/** What a route knows about its request: who is calling (set by the token check under /api). */
type ApiEnv = { Variables: { caller: Caller } };

/** Builds the Hono app. */
export function createApi(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  const deliveries = new DeliveryLog();
  // Generated apps come and go with their directories: the loop's list is the current one.
  const appsNow = (): ReadonlyArray<AppSpecView> => deps.loop.appSpecs?.() ?? deps.apps;
  const specOf = (name: string) => {
    const spec = appsNow().find((a) => a.name === name);
    if (!spec) throw new HttpError(404, "NotFound", `app ${name}: no such app`);
    return spec;
  };
  const stateOf = (name: string) => deps.loop.status().find((s) => s.name === name);
  const gitOf = (spec: AppSpecView): GitView => deps.loop.sourceView?.(spec.source ?? "default") ?? deps.loop;
  const views = (): AppView[] =>
    appsNow().map((a) => appView(a, stateOf(a.name), gitOf(a), deps.ledger, false));

  app.onError((err, c) => {
    if (err instanceof HttpError)
      return c.json({ error: { reason: err.reason, message: err.message } }, err.status);
    deps.log?.log("error", "HTTP API error", { path: c.req.path, error: err.message });
    return c.json({ error: { reason: "InternalError", message: err.message } }, 500);
  });
  app.notFound((c) =>
    c.json({ error: { reason: "NotFound", message: `${c.req.method} ${c.req.path}: no such route` } }, 404),
  );

  // Open: liveness, readiness, metrics and the page itself (which holds no data; it asks the API).
  app.get("/healthz", (c) => c.json({ status: "ok" }));
  app.get("/readyz", (c) => {
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
  app.get("/metrics", (c) => {
    const text = deps.metrics.render({
      apps: views().map((v) => ({
        app: v.name,
        revision: v.revision.applied ?? "",
        syncStatus: v.syncStatus,
        healthStatus: v.healthStatus,
      })),
      kube: deps.kubeCodes(),
    });
    return c.text(text, 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
  });
  app.get("/", (c) => c.html(STATUS_PAGE, 200, { "Cache-Control": "no-store" }));

  // Everything under /api needs a token: read for GET, operate for POST.
  app.use("/api/*", async (c, next) => {
    const caller = authorize(
      c.req.header("authorization"),
      c.req.method === "GET" ? "read" : "operate",
      deps.tokens,
      deps.anonymousRead,
    );
    c.set("caller", caller);
    await next();
  });
  // Syncs an API call starts are recorded under the token's name.
  const byCaller = (caller: Caller) => `api:${caller.name}`;
  app.get("/api/v1/openapi.json", (c) => c.json(openApiDocument()));
  app.get("/api/v1/apps", (c) =>
    c.json({
      apps: views(),
      ...(deps.failingDeliveries ? { failingDeliveries: deps.failingDeliveries() } : {}),
    }),
  );
  app.get("/api/v1/apps/:name", (c) => {
    const spec = specOf(c.req.param("name"));
    return c.json(appView(spec, stateOf(spec.name), gitOf(spec), deps.ledger, true));
  });
  app.get("/api/v1/ledger", (c) => {
    const query: { app?: string; limit?: number; before?: number } = {};
    const appName = c.req.query("app");
    // A retired generated app (its directory gone, its objects pruned) keeps its history in the ledger.
    if (appName !== undefined)
      query.app = deps.ledger.list({ app: appName, limit: 1 }).length > 0 ? appName : specOf(appName).name;
    const limit = intParam("limit", c.req.query("limit"), 1, MAX_LIST_LIMIT);
    const before = intParam("before", c.req.query("before"), 1, Number.MAX_SAFE_INTEGER);
    if (limit !== undefined) query.limit = limit;
    if (before !== undefined) query.before = before;
    const entries = deps.ledger.list(query);
    const last = entries.at(-1);
    const pageSize = limit ?? 50;
    return c.json({ entries, ...(last && entries.length === pageSize ? { next: last.id } : {}) });
  });
  app.get("/api/v1/ledger/:id", (c) => {
    const id = intParam("id", c.req.param("id"), 1, Number.MAX_SAFE_INTEGER) ?? 0;
    const entry = deps.ledger.get(id);
    if (!entry) throw new HttpError(404, "NotFound", `ledger entry ${id}: not found`);
    return c.json(entry);
  });
  app.post("/api/v1/apps/:name/:action{sync|suspend|resume}", async (c) => {
    const spec = specOf(c.req.param("name"));
    await readJson(c.req.raw, MAX_API_BODY, "ActionRequest", true);
    const action = c.req.param("action");
    if (action === "suspend") {
      deps.loop.suspend(spec.name);
      return c.json({ app: spec.name, syncStatus: "Suspended" });
    }
    if (action === "resume") {
      deps.loop.resume(spec.name, byCaller(c.get("caller")));
      return c.json({ app: spec.name, syncStatus: stateOf(spec.name)?.status ?? "Pending" });
    }
    const outcome = await deps.loop.triggerAndWait(spec.name, byCaller(c.get("caller")));
    if (!outcome.started)
      throw new HttpError(
        outcome.reason === "FetchFailed" ? 503 : 409,
        outcome.reason,
        `app ${spec.name}: ${outcome.message}`,
      );
    return c.json({ app: spec.name, entry: outcome.entry, revision: outcome.revision }, 202);
  });
  // Approve a held sync (or override a sync window), pin and unpin: operator writes to the ledger.
  const control = <K extends "approve" | "pin" | "unpin">(name: K) => {
    const fn = deps.ledger[name];
    if (!fn) throw new HttpError(503, "NotImplemented", `this agent's ledger cannot ${name}`);
    return fn.bind(deps.ledger) as NonNullable<LedgerView[K]>;
  };
  const ledgerWrite = <T>(what: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      if (err instanceof BerthError) throw new HttpError(422, "InvalidRequest", `${what}: ${err.message}`);
      throw err;
    }
  };
  app.post("/api/v1/apps/:name/approve", async (c) => {
    const spec = specOf(c.req.param("name"));
    const body = ((await readJson(c.req.raw, MAX_API_BODY, "ApproveRequest", true)) ?? {}) as {
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
    deps.loop.trigger?.(spec.name, byCaller(c.get("caller")));
    return c.json(approval);
  });
  app.post("/api/v1/apps/:name/:action{pin|unpin}", async (c) => {
    const spec = specOf(c.req.param("name"));
    const pinning = c.req.param("action") === "pin";
    if (pinning) {
      const body = (await readJson(c.req.raw, MAX_API_BODY, "PinRequest", false)) as { entry: number };
      const pin = control("pin");
      ledgerWrite(`app ${spec.name}, entry ${body.entry}`, () => pin(spec.name, body.entry));
    } else {
      await readJson(c.req.raw, MAX_API_BODY, "ActionRequest", true);
      const unpin = control("unpin");
      ledgerWrite(`app ${spec.name}`, () => unpin(spec.name));
    }
    // The next attempt replays the pinned entry (or, after unpin, catches up with Git).
    deps.loop.trigger?.(spec.name, byCaller(c.get("caller")));
    const pinned = deps.ledger.pinOf?.(spec.name);
    return c.json({ app: spec.name, ...(pinned ? { pinned } : {}) });
  });
  app.get("/api/v1/previews", (c) => {
    const lane = deps.previews;
    if (!lane) return c.json({ enabled: false, previews: [] });
    return c.json({ enabled: true, ...(lane.error ? { error: lane.error } : {}), previews: lane.list() });
  });
  app.get("/api/v1/previews/:ref{.+}", (c) => {
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
  app.get("/api/v1/events", (c) => {
    let unsubscribe: (() => void) | undefined;
    const queue: string[] = [];
    let wake: (() => void) | undefined;
    unsubscribe = deps.events.subscribe((p) => {
      queue.push(JSON.stringify({ seq: p.seq, at: p.at, ...p.event }));
      if (queue.length > 1000) queue.shift(); // a slow reader loses the oldest events, not our memory
      wake?.();
    });
    if (!unsubscribe) throw new HttpError(503, "TooManyStreams", "too many event streams are open");
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => {
        unsubscribe?.();
        unsubscribe = undefined;
        wake?.();
      });
      await stream.writeSSE({ event: "hello", data: JSON.stringify({ at: new Date().toISOString() }) });
      while (unsubscribe && !stream.aborted) {
        const data = queue.shift();
        if (data !== undefined) {
          await stream.writeSSE({ event: JSON.parse(data).type, data });
          continue;
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, SSE_HEARTBEAT_MS);
          function done() {
            clearTimeout(timer);
            resolve();
          }
          wake = done;
        });
        if (queue.length === 0 && !stream.aborted) await stream.write(": keep-alive\n\n");
      }
      unsubscribe?.();
    });
  });

  // Webhooks authenticate by signature, not by bearer token. A hook names its source in the path: a URL in a
  // payload comes in many spellings (ssh, https, .git, mirrors), a path is exact and each source has its secret.
  const hook = async (c: Context<ApiEnv>, sourceName: string | undefined) => {
    const provider = c.req.param("provider") as Provider;
    if (!PROVIDERS.includes(provider))
      throw new HttpError(404, "NotFound", `webhook provider ${provider}: unknown`);
    let ref = deps.sourceRef;
    let settings = deps.webhook;
    let apps = () => appsNow().map((a) => a.name);
    if (deps.sources) {
      const name = sourceName ?? "default";
      const source = deps.sources[name];
      if (!source)
        throw new HttpError(
          404,
          "NotFound",
          sourceName === undefined
            ? `there is no default source: name one, POST /hooks/${provider}/<source> (sources: ${Object.keys(deps.sources).join(", ")})`
            : `source ${name}: no such source (sources: ${Object.keys(deps.sources).join(", ")})`,
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
        appsNow()
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
    const body = await readBody(c.req.raw, MAX_HOOK_BODY);
    const push = verifyWebhook(provider, (n) => c.req.header(n), body, settings, deliveries);
    if ("ignored" in push) return c.json({ triggered: [], ignored: push.ignored }, 202);
    if (!refMatches(push.ref, ref))
      return c.json({ triggered: [], ignored: `ref ${push.ref} is not ${ref}` }, 202);
    const ofSource = apps();
    if (push.app !== undefined && !ofSource.includes(specOf(push.app).name))
      throw new HttpError(
        422,
        "InvalidRequest",
        `app ${push.app} does not read source ${sourceName ?? "default"}; its hook is that of its own source`,
      );
    const triggered = (push.app !== undefined ? [push.app] : ofSource).filter((a) => !stateOf(a)?.suspended);
    // Fire and forget: the sender only needs to know we took it.
    for (const a of triggered) void deps.loop.triggerAndWait(a, `webhook:${provider}`);
    deps.log?.log("info", "webhook triggered a sync", {
      provider,
      ...(sourceName !== undefined ? { source: sourceName } : {}),
      ref: push.ref,
      apps: triggered,
    });
    return c.json({ triggered }, 202);
  };
  app.post("/hooks/:provider", (c) => hook(c, undefined));
  app.post("/hooks/:provider/:source", (c) => hook(c, c.req.param("source")));
  return app;
}

/** Parses an optional integer query parameter within bounds; 422 otherwise. */
function intParam(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^[0-9]+$/.test(text) || n < min || n > max)
    throw new HttpError(
      422,
      "InvalidRequest",
      `${name}: expected an integer from ${min} to ${max}, got "${text.slice(0, 40)}"`,
    );
  return n;
}

/** Reads a body of at most `max` bytes, refusing larger ones before and while reading (413). */
export async function readBody(req: Request, max: number): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > max)
    throw new HttpError(
      413,
      "PayloadTooLarge",
      `request body: ${declared} bytes; at most ${max} are accepted`,
    );
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new HttpError(413, "PayloadTooLarge", `request body: more than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, size);
}

/** Reads and validates a JSON body; an empty body is allowed when `optional`. */
async function readJson(
  req: Request,
  max: number,
  schema: "ActionRequest" | "ApproveRequest" | "PinRequest",
  optional: boolean,
): Promise<unknown> {
  const bytes = await readBody(req, max);
  if (bytes.byteLength === 0 && optional) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw new HttpError(422, "InvalidRequest", "request body: not JSON");
  }
  return validateBody(schema, body);
}
