/**
 * The HTTP API as a Hono app, built from the engine's dependencies and testable with `app.request()`: one
 * sub-app per route group (routes/), the token check, body limits and the one error answer
 * `{error: {reason, message}}` (http-error.ts).
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { EventBus } from "../engine/events.ts";
import type { Logger } from "../engine/log.ts";
import type { AppState, TriggerOutcome } from "../engine/loop.ts";
import type { Metrics } from "../engine/metrics.ts";
import type { RefPreview } from "../engine/ports.ts";
import type { AppSpecView, GitView, LedgerView } from "./app-view.ts";
import { authorize, type Caller, type TokenEntry } from "./auth.ts";
import { bugDetail, errorAnswer, HttpError } from "./http-error.ts";
import { openApiDocument } from "./openapi.ts";
import { appRoutes } from "./routes/apps.ts";
import { appLookup } from "./routes/context.ts";
import { eventRoutes } from "./routes/events.ts";
import { hookRoutes } from "./routes/hooks.ts";
import { ledgerRoutes } from "./routes/ledger.ts";
import { previewRoutes } from "./routes/previews.ts";
import { probeRoutes } from "./routes/probes.ts";
import type { WebhookSettings } from "./webhooks.ts";

/** The largest body of an API POST, bytes. */
export const MAX_API_BODY = 16 * 1024;
/** The largest webhook body, bytes (a push of many commits stays well below). */
export const MAX_HOOK_BODY = 1024 * 1024;

/** What the API reads and drives in the run loop. */
export interface LoopControl extends GitView {
  /** Every app's state, or at least app `only`'s when named (a fake may return them all). */
  status(only?: string): AppState[];
  /**
   * Asks for an attempt now without waiting for it to start; `by` is recorded as the attempt's trigger:
   * `api:<token name>`, `webhook:<provider>`.
   */
  trigger(app: string, by?: string): void;
  /** Why a trigger would start nothing, as known now (suspended, standby, stopping); optional for fakes. */
  refusal?(app: string): Extract<TriggerOutcome, { started: false }> | undefined;
  suspend(app: string): boolean;
  resume(app: string, by?: string): boolean;
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
export type ApiEnv = { Variables: { caller: Caller } };

/** Refuses bodies over `max` bytes, declared or streamed (413). */
const limit = (max: number) =>
  bodyLimit({
    maxSize: max,
    onError: () => {
      throw new HttpError(413, "PayloadTooLarge", `request body: more than ${max} bytes`);
    },
  });

/** Builds the Hono app. */
export function createApi(deps: ApiDeps): Hono<ApiEnv> {
  const app = new Hono<ApiEnv>();
  app.onError((err, c) => {
    const answer = errorAnswer(err);
    if (answer.bug)
      deps.log?.log("error", "HTTP API internal error", { path: c.req.path, ...bugDetail(err) });
    return c.json({ error: { reason: answer.reason, message: answer.message } }, answer.status);
  });
  app.notFound((c) =>
    c.json({ error: { reason: "NotFound", message: `${c.req.method} ${c.req.path}: no such route` } }, 404),
  );
  // Everything under /api needs a token: read for GET, operate for POST.
  app.use("/api/*", async (c, next) => {
    const scope = c.req.method === "GET" ? "read" : "operate";
    c.set("caller", authorize(c.req.header("authorization"), scope, deps.tokens, deps.anonymousRead));
    await next();
  });
  app.use("/api/*", limit(MAX_API_BODY));
  app.use("/hooks/*", limit(MAX_HOOK_BODY));
  app.get("/api/v1/openapi.json", (c) => c.json(openApiDocument()));
  const apps = appLookup(deps);
  for (const routes of [
    probeRoutes(deps, apps),
    appRoutes(deps, apps),
    ledgerRoutes(deps, apps),
    previewRoutes(deps),
    eventRoutes(deps),
    hookRoutes(deps, apps),
  ])
    app.route("/", routes);
  return app;
}
