/** The OpenAPI 3.1 document of the API, built from the JSON Schemas in schemas/api (one source of truth). */
import { buildInfo } from "../version.ts";
import { API_SCHEMAS, type SchemaName } from "./schemas.ts";

const ref = (name: SchemaName) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: object, description: string) => ({
  description,
  content: { "application/json": { schema } },
});
const errors = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((c) => [String(c), json(ref("Error"), "an error: {error: {reason, message}}")]),
  );
const nameParam = { name: "name", in: "path", required: true, schema: { type: "string" } };
const read = [{ bearer: [] }];

/** The document served at GET /api/v1/openapi.json. */
export function openApiDocument(): object {
  const schemas = Object.fromEntries(
    Object.entries(API_SCHEMAS).map(([name, s]) => {
      const { $schema: _drop, ...rest } = s as Record<string, unknown>;
      return [name, rest];
    }),
  );
  const action = (summary: string, ok: string) => ({
    summary,
    security: read,
    parameters: [nameParam],
    requestBody: { required: false, content: { "application/json": { schema: ref("ActionRequest") } } },
    responses: { [ok]: json(ref("ActionResult"), "done"), ...errors(401, 403, 404, 409, 413, 422) },
  });
  const hook = (schema: SchemaName, how: string) => ({
    summary: `push webhook; ${how}`,
    requestBody: { required: true, content: { "application/json": { schema: ref(schema) } } },
    responses: { "202": json(ref("WebhookResult"), "accepted"), ...errors(401, 403, 404, 413, 422) },
  });
  return {
    openapi: "3.1.0",
    info: { title: "berth agent API", version: buildInfo().version },
    components: {
      schemas,
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "read or operate scope" } },
    },
    paths: {
      "/healthz": { get: { summary: "process alive", responses: { "200": { description: "alive" } } } },
      "/readyz": {
        get: {
          summary: "ledger open, config loaded, first reconcile attempted",
          responses: { "200": { description: "ready" }, "503": { description: "not ready" } },
        },
      },
      "/metrics": {
        get: {
          summary: "Prometheus text format",
          responses: {
            "200": { description: "metrics", content: { "text/plain": { schema: { type: "string" } } } },
          },
        },
      },
      "/api/v1/apps": {
        get: {
          summary: "every app",
          security: read,
          responses: {
            "200": json(
              {
                type: "object",
                properties: {
                  apps: { type: "array", items: ref("App") },
                  failingDeliveries: {
                    description:
                      "Notification receivers (and `status:<provider>`, the commit statuses) whose oldest waiting delivery has failed; present when notify or status is configured.",
                    type: "array",
                    items: {
                      type: "object",
                      properties: {
                        receiver: { type: "string" },
                        pending: { type: "integer" },
                        attempts: { type: "integer" },
                        lastError: { type: "string" },
                        since: { type: "string", format: "date-time" },
                      },
                    },
                  },
                },
              },
              "apps",
            ),
            ...errors(401),
          },
        },
      },
      "/api/v1/apps/{name}": {
        get: {
          summary: "one app with per-object health",
          security: read,
          parameters: [nameParam],
          responses: { "200": json(ref("App"), "the app"), ...errors(401, 404) },
        },
      },
      "/api/v1/apps/{name}/sync": {
        post: action(
          "ask for an attempt now; answers 202 at once (before it starts) with where to follow it: the app's view, its ledger entries, the event stream",
          "202",
        ),
      },
      "/api/v1/apps/{name}/suspend": { post: action("suspend until resumed or restarted", "200") },
      "/api/v1/apps/{name}/resume": { post: action("resume and sync now", "200") },
      "/api/v1/apps/{name}/approve": {
        post: {
          summary: "approve a sync held by a hold rule (overrideWindow: also one deferred by a sync window)",
          security: read,
          parameters: [nameParam],
          requestBody: {
            required: false,
            content: { "application/json": { schema: ref("ApproveRequest") } },
          },
          responses: { "200": json(ref("Approval"), "approved"), ...errors(401, 403, 404, 409, 413, 422) },
        },
      },
      "/api/v1/apps/{name}/pin": {
        post: {
          summary: "hold the app at a ledger entry (replayed instead of Git) until unpinned",
          security: read,
          parameters: [nameParam],
          requestBody: { required: true, content: { "application/json": { schema: ref("PinRequest") } } },
          responses: { "200": json(ref("PinResult"), "pinned"), ...errors(401, 403, 404, 413, 422) },
        },
      },
      "/api/v1/apps/{name}/unpin": { post: action("release the pin; the next attempt syncs Git", "200") },
      "/api/v1/ledger": {
        get: {
          summary: "ledger entries, newest first; pass `next` as `before` for the next page",
          security: read,
          parameters: [
            { name: "app", in: "query", schema: { type: "string" } },
            { name: "limit", in: "query", schema: { type: "integer", minimum: 1, maximum: 1000 } },
            { name: "before", in: "query", schema: { type: "integer", minimum: 1 } },
          ],
          responses: {
            "200": json(
              {
                type: "object",
                properties: {
                  entries: { type: "array", items: ref("LedgerSummary") },
                  next: { type: "integer" },
                },
              },
              "a page",
            ),
            ...errors(401, 404, 422),
          },
        },
      },
      "/api/v1/ledger/{id}": {
        get: {
          summary: "one entry",
          security: read,
          parameters: [{ name: "id", in: "path", required: true, schema: { type: "integer" } }],
          responses: { "200": json(ref("LedgerEntry"), "the entry"), ...errors(401, 404, 422) },
        },
      },
      "/api/v1/previews": {
        get: {
          summary: "the latest preview of every followed ref (previews: in berth.yaml), newest ref first",
          security: read,
          responses: {
            "200": json(
              {
                type: "object",
                properties: {
                  enabled: { type: "boolean" },
                  error: { type: "string", description: "why the last poll could not list the refs" },
                  previews: { type: "array", items: ref("Preview") },
                },
              },
              "previews",
            ),
            ...errors(401),
          },
        },
      },
      "/api/v1/previews/{ref}": {
        get: {
          summary:
            "one ref's latest preview; the ref in full (refs/pull/7/head, slashes as they are) or a branch name",
          security: read,
          parameters: [{ name: "ref", in: "path", required: true, schema: { type: "string" } }],
          responses: { "200": json(ref("Preview"), "the preview"), ...errors(401, 404) },
        },
      },
      "/api/v1/events": {
        get: {
          summary: "server-sent events: started, stage, applied, waiting, finished",
          security: read,
          responses: { "200": { description: "an event stream", content: { "text/event-stream": {} } } },
        },
      },
      "/hooks/github": { post: hook("GitHubPush", "X-Hub-Signature-256") },
      "/hooks/gitea": { post: hook("GitHubPush", "X-Hub-Signature-256 or X-Gitea-Signature") },
      "/hooks/gitlab": { post: hook("GitLabPush", "X-Gitlab-Token") },
      "/hooks/generic": { post: hook("GenericPush", "X-Berth-Signature over X-Berth-Timestamp.body") },
    },
  };
}
