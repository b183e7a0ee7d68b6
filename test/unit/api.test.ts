/** The HTTP API through app.request(), without a socket: routes, auth, body limits, webhooks, metrics, OpenAPI. */
import { beforeEach, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv } from "ajv";
import { createApi, type LoopControl } from "../../agent/api/app.ts";
import { authorize, isLoopback, tokenEntry } from "../../agent/api/auth.ts";
import { errorAnswer, HttpError } from "../../agent/api/http-error.ts";
import { API_SCHEMAS } from "../../agent/api/schemas.ts";
import { loadTokens } from "../../agent/api/start.ts";
import { DeliveryLog, parseTimestamp } from "../../agent/api/webhooks.ts";
import { EventBus } from "../../agent/engine/events.ts";
import { createLogger } from "../../agent/engine/log.ts";
import type { AppState, TriggerOutcome } from "../../agent/engine/loop.ts";
import { Metrics } from "../../agent/engine/metrics.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { BerthError, type ErrorReason } from "../../agent/object/errors.ts";

const SECRET = "hook-secret";
const REV = `main@sha1:${"a".repeat(40)}`;
const ref = { group: "", version: "v1", kind: "ConfigMap", namespace: "ns", name: "cm" };

class FakeLoop implements LoopControl {
  triggered: string[] = [];
  /** Who each trigger names (recorded as the entry's trigger). */
  triggeredBy: Array<string | undefined> = [];
  suspended = new Set<string>();
  ticks = 1;
  /** Calls of status(): each reads every app's pin from the ledger. */
  statusCalls = 0;
  /** The app each status() call named, "*" for all. */
  statusAsked: string[] = [];
  seenRevision: string | undefined = REV;
  gitUnreachableSince: string | undefined;
  gitError: string | undefined;
  status(only?: string): AppState[] {
    this.statusCalls++;
    this.statusAsked.push(only ?? "*");
    return ["web", "base"].map((name) => ({
      name,
      suspended: this.suspended.has(name),
      status: this.suspended.has(name) ? "Suspended" : "Synced",
      failures: 0,
    }));
  }
  trigger(app: string, by?: string): void {
    this.triggered.push(app);
    this.triggeredBy.push(by);
  }
  refusal(app: string): Extract<TriggerOutcome, { started: false }> | undefined {
    return this.suspended.has(app)
      ? { started: false, reason: "Suspended", message: `${app} is suspended` }
      : undefined;
  }
  suspend(app: string) {
    this.suspended.add(app);
    return true;
  }
  resume(app: string) {
    this.suspended.delete(app);
    return true;
  }
}

let loop: FakeLoop;
let api: ReturnType<typeof createApi>;
let events: EventBus;
let metrics: Metrics;
let ledger: Ledger;

beforeEach(async () => {
  loop = new FakeLoop();
  events = new EventBus();
  metrics = new Metrics();
  ledger = await Ledger.open(join(mkdtempSync(join(tmpdir(), "berth-api-")), "ledger.db"));
  const ok = ledger.begin({ app: "web", revision: REV, trigger: "loop" });
  ledger.finish(ok, {
    outcome: "Succeeded",
    reason: "Succeeded",
    message: "1 created",
    objects: [{ ref, action: "created", health: "Current" }],
    health: "Current",
    timings: { apply: 3 },
  });
  const bad = ledger.begin({ app: "base", revision: REV, trigger: "loop" });
  ledger.finish(bad, {
    outcome: "Failed",
    reason: "BuildFailed",
    message: "x.yaml: bad",
    objects: [],
    timings: {},
  });
  api = createApi({
    loop,
    ledger,
    apps: [
      { name: "base", path: "base", dependsOn: [] },
      { name: "web", path: "web", dependsOn: ["base"] },
    ],
    sourceRef: "main",
    metrics,
    kubeCodes: () => ({ "get 200": 3, "apply 409": 1 }),
    events,
    tokens: [tokenEntry("reader-token", "read"), tokenEntry("operator-token", "operate", "ops")],
    anonymousRead: false,
    webhook: { secret: SECRET, maxAge: 300_000 },
  });
});

const reader = { Authorization: "Bearer reader-token" };
const operator = { Authorization: "Bearer operator-token" };
const errorOf = async (r: Response) =>
  ((await r.json()) as { error: { reason: string; message: string } }).error;

describe("createApi() routes", () => {
  test("healthz, readyz and metrics are open; readyz waits for the first reconcile", async () => {
    expect((await api.request("/healthz")).status).toBe(200);
    expect((await api.request("/readyz")).status).toBe(200);
    loop.ticks = 0;
    const r = await api.request("/readyz");
    expect(r.status).toBe(503);
    expect(((await r.json()) as { checks: { firstReconcile: boolean } }).checks.firstReconcile).toBe(false);
    expect((await api.request("/metrics")).status).toBe(200);
  });

  test("GET /api/v1/apps reports sync status, health, revisions and the last error, matching app.json", async () => {
    const r = await api.request("/api/v1/apps", { headers: reader });
    expect(r.status).toBe(200);
    const { apps } = (await r.json()) as { apps: Array<Record<string, unknown>> };
    // The list asks the loop once, not once per app (that was apps² ledger reads).
    expect(loop.statusCalls).toBe(1);
    const validate = new Ajv({ strict: true, allowUnionTypes: true, validateFormats: false }).compile(
      API_SCHEMAS.App,
    );
    for (const a of apps) expect(validate(a)).toBe(true);
    const [base, web] = apps as [Record<string, any>, Record<string, any>];
    expect(web.syncStatus).toBe("Synced");
    expect(web.healthStatus).toBe("Current");
    expect(web.revision).toEqual({ applied: REV, seen: REV });
    expect(base.syncStatus).toBe("Failed");
    expect(base.lastError).toMatchObject({ reason: "BuildFailed", message: "x.yaml: bad" });
    loop.statusAsked = [];
    const one = (await (await api.request("/api/v1/apps/web", { headers: reader })).json()) as any;
    // One app's request reads that app's state only (its pin), not every app's.
    expect(loop.statusAsked).toEqual(["web"]);
    expect(one.objects).toEqual([{ subject: "ConfigMap/ns/cm", action: "created", health: "Current" }]);
    expect((await api.request("/api/v1/apps/nope", { headers: reader })).status).toBe(404);
  });

  test("metrics say what the app list says, also for a success older than the newest few entries", async () => {
    // Failures after web's success: the views' first short read of the ledger holds no success.
    for (let i = 0; i < 6; i++) {
      const id = ledger.begin({ app: "web", revision: `main@sha1:${String(i).repeat(40)}`, trigger: "cli" });
      ledger.finish(id, {
        outcome: "Failed",
        reason: "ApplyFailed",
        message: `no ${i}`,
        objects: [],
        timings: {},
      });
    }
    const { apps } = (await (await api.request("/api/v1/apps", { headers: reader })).json()) as {
      apps: Array<{ name: string; syncStatus: string; healthStatus: string; revision: { applied?: string } }>;
    };
    const web = apps.find((a) => a.name === "web");
    expect(web).toMatchObject({ syncStatus: "Failed", healthStatus: "Unknown", revision: { applied: REV } });
    const text = await (await api.request("/metrics")).text();
    const info = text
      .split("\n")
      .filter((l) => l.startsWith("berth_app_info{"))
      .sort();
    const expected = apps
      .map(
        (a) =>
          `berth_app_info{app="${a.name}",revision="${a.revision.applied ?? ""}",sync_status="${a.syncStatus}",health_status="${a.healthStatus}"} 1`,
      )
      .sort();
    expect(info).toEqual(expected);
  });

  test("ledger list paginates with before; an entry shows its objects; bad parameters are 422", async () => {
    const first = (await (await api.request("/api/v1/ledger?limit=1", { headers: reader })).json()) as any;
    expect(first.entries.map((e: any) => e.app)).toEqual(["base"]);
    const second = (await (
      await api.request(`/api/v1/ledger?limit=1&before=${first.next}`, { headers: reader })
    ).json()) as any;
    expect(second.entries.map((e: any) => e.app)).toEqual(["web"]);
    const entry = (await (
      await api.request(`/api/v1/ledger/${second.entries[0].id}`, { headers: reader })
    ).json()) as any;
    expect(entry.objects[0].ref.name).toBe("cm");
    expect((await api.request("/api/v1/ledger/999", { headers: reader })).status).toBe(404);
    for (const q of ["limit=0", "limit=abc", "limit=5000", "before=-1"]) {
      const r = await api.request(`/api/v1/ledger?${q}`, { headers: reader });
      expect(r.status).toBe(422);
      expect((await errorOf(r)).reason).toBe("InvalidRequest");
    }
  });

  test("POST sync answers 202 at once with where to look; suspend and resume flip the state", async () => {
    const r = await api.request("/api/v1/apps/web/sync", { method: "POST", headers: operator });
    expect(r.status).toBe(202);
    expect(r.headers.get("location")).toBe("/api/v1/apps/web");
    expect(await r.json()).toEqual({
      app: "web",
      status: "/api/v1/apps/web",
      ledger: "/api/v1/ledger?app=web",
      events: "/api/v1/events",
    });
    expect(loop.triggered).toEqual(["web"]);
    // The attempt is recorded under the token's name.
    expect(loop.triggeredBy).toEqual(["api:ops"]);
    expect(
      (await api.request("/api/v1/apps/web/suspend", { method: "POST", headers: operator })).status,
    ).toBe(200);
    const apps = (await (await api.request("/api/v1/apps", { headers: reader })).json()) as any;
    expect(apps.apps[1].syncStatus).toBe("Suspended");
    // A suspended app's sync is refused at once, naming why; nothing is triggered.
    const refused = await api.request("/api/v1/apps/web/sync", { method: "POST", headers: operator });
    expect(refused.status).toBe(409);
    expect(await errorOf(refused)).toEqual({ reason: "Suspended", message: "app web: web is suspended" });
    expect(loop.triggered).toEqual(["web"]);
    await api.request("/api/v1/apps/web/resume", { method: "POST", headers: operator });
    expect(loop.suspended.size).toBe(0);
  });

  test("unknown routes and errors answer {error: {reason, message}}", async () => {
    const r = await api.request("/nope");
    expect(r.status).toBe(404);
    expect(await errorOf(r)).toMatchObject({ reason: "NotFound" });
  });
});

describe("errors: one table (STATUS_OF) from a BerthError's reason to the status", () => {
  /** The API over a ledger whose reads throw `err`, logging into `logged`. */
  const failingApi = (err: unknown, logged: Array<Record<string, unknown>>) =>
    createApi({
      loop,
      ledger: Object.assign(Object.create(ledger), {
        get: () => {
          throw err;
        },
      }),
      apps: [{ name: "web", path: "web", dependsOn: [] }],
      sourceRef: "main",
      metrics,
      kubeCodes: () => ({}),
      events,
      tokens: [tokenEntry("reader-token", "read")],
      anonymousRead: false,
      log: createLogger({ write: (line) => logged.push(JSON.parse(line)) }),
    });
  const answer = async (err: unknown, logged: Array<Record<string, unknown>> = []) => {
    const r = await failingApi(err, logged).request("/api/v1/ledger/1", { headers: reader });
    return { status: r.status, ...(await errorOf(r)) };
  };

  test("each reason class: input 422, not found 404, conflict and held 409, unavailable 503", async () => {
    const of = (reason?: ErrorReason) =>
      answer(new BerthError("no", { subject: "entry 1", ...(reason ? { reason } : {}) }));
    expect(await of()).toEqual({ status: 422, reason: "InvalidRequest", message: "entry 1: no" });
    expect(await of("InvalidInput")).toMatchObject({ status: 422, reason: "InvalidInput" });
    expect(await of("NotFound")).toMatchObject({ status: 404, reason: "NotFound" });
    expect(await of("Conflict")).toMatchObject({ status: 409, reason: "Conflict" });
    expect(await of("Held")).toMatchObject({ status: 409, reason: "Held" });
    expect(await of("Unavailable")).toMatchObject({ status: 503, reason: "Unavailable" });
  });

  test("an unknown reason is an input error (422) under its own word", async () => {
    const err = new BerthError("odd", { reason: "Bogus" as ErrorReason });
    expect(await answer(err)).toEqual({ status: 422, reason: "Bogus", message: "odd" });
  });

  test("a bug is 500 InternalError saying only 'internal error'; the log has the message and stack", async () => {
    const logged: Array<Record<string, unknown>> = [];
    let bug: unknown;
    try {
      (undefined as unknown as { x: () => void }).x();
    } catch (err) {
      bug = err;
    }
    expect(await answer(bug, logged)).toEqual({
      status: 500,
      reason: "InternalError",
      message: "internal error",
    });
    expect(logged).toHaveLength(1);
    expect(logged[0]?.path).toBe("/api/v1/ledger/1");
    expect(String(logged[0]?.stack)).toContain("TypeError");
    // A refusal the API makes itself keeps its own status and word.
    expect(errorAnswer(new HttpError(413, "PayloadTooLarge", "big"))).toEqual({
      status: 413,
      reason: "PayloadTooLarge",
      message: "big",
    });
  });
});

describe("auth", () => {
  test("tokens are named by their `name`, else their file's or variable's name; the match says which", () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-tokens-"));
    writeFileSync(join(dir, "operate-token"), "tok-a\n");
    writeFileSync(join(dir, "dash"), "tok-b\n");
    writeFileSync(join(dir, "ci.token"), "tok-c\n");
    const tokens = loadTokens(
      {
        listen: "127.0.0.1:0",
        tokenFile: join(dir, "operate-token"),
        tokenEnv: "BERTH_OPS_TOKEN",
        tokens: [
          { file: join(dir, "dash"), scope: "read", name: "dashboard" },
          { file: join(dir, "ci.token"), scope: "operate" },
        ],
      },
      { BERTH_OPS_TOKEN: "tok-d" },
    );
    expect(tokens.map((t) => [t.name, t.scope])).toEqual([
      ["operate-token", "operate"],
      ["BERTH_OPS_TOKEN", "operate"],
      ["dashboard", "read"],
      ["ci.token", "operate"],
    ]);
    const who = (token: string) => authorize(`Bearer ${token}`, "read", tokens, false);
    expect(who("tok-b")).toEqual({ scope: "read", name: "dashboard" });
    expect(who("tok-d")).toEqual({ scope: "operate", name: "BERTH_OPS_TOKEN" });
    expect(authorize(undefined, "read", tokens, true)).toEqual({ scope: "read", name: "anonymous" });
  });

  test("every failure answers 401/403/413/422 and triggers nothing", async () => {
    const cases: Array<[string, RequestInit, number, string]> = [
      ["/api/v1/apps", {}, 401, "Unauthorized"],
      ["/api/v1/apps", { headers: { Authorization: "Bearer wrong" } }, 401, "Unauthorized"],
      ["/api/v1/apps", { headers: { Authorization: "Basic cmVhZGVyLXRva2Vu" } }, 401, "Unauthorized"],
      ["/api/v1/apps/web/sync", { method: "POST" }, 401, "Unauthorized"],
      ["/api/v1/apps/web/sync", { method: "POST", headers: reader }, 403, "Forbidden"],
      ["/api/v1/apps/web/suspend", { method: "POST", headers: reader }, 403, "Forbidden"],
      [
        "/api/v1/apps/web/sync",
        { method: "POST", headers: { ...operator, "Content-Length": "99999999" }, body: "{}" },
        413,
        "PayloadTooLarge",
      ],
      [
        "/api/v1/apps/web/sync",
        { method: "POST", headers: operator, body: "x".repeat(20_000) },
        413,
        "PayloadTooLarge",
      ],
      [
        "/api/v1/apps/web/sync",
        { method: "POST", headers: operator, body: "{not json" },
        422,
        "InvalidRequest",
      ],
      [
        "/api/v1/apps/web/sync",
        { method: "POST", headers: operator, body: '{"force":true}' },
        422,
        "InvalidRequest",
      ],
      ["/api/v1/events", {}, 401, "Unauthorized"],
    ];
    for (const [path, init, status, reason] of cases) {
      const r = await api.request(path, init);
      expect([path, r.status]).toEqual([path, status]);
      expect((await errorOf(r)).reason).toBe(reason);
    }
    expect(loop.triggered).toEqual([]);
    expect(loop.suspended.size).toBe(0);
  });

  test("a valid optional body is accepted; anonymous read works only when allowed, and never operates", async () => {
    const r = await api.request("/api/v1/apps/web/sync", {
      method: "POST",
      headers: operator,
      body: '{"reason":"deploy"}',
    });
    expect(r.status).toBe(202);
    const open = createApi({
      loop,
      ledger,
      apps: [],
      sourceRef: "main",
      metrics,
      kubeCodes: () => ({}),
      events,
      tokens: [],
      anonymousRead: true,
    });
    expect((await open.request("/api/v1/apps")).status).toBe(200);
    expect((await open.request("/api/v1/apps/web/sync", { method: "POST" })).status).toBe(401);
    expect(isLoopback("127.0.0.1:7420")).toBe(true);
    expect(isLoopback("[::1]:7420")).toBe(true);
    expect(isLoopback("0.0.0.0:7420")).toBe(false);
    expect(isLoopback("10.0.0.1:7420")).toBe(false);
  });
});

const sign = (body: string, secret = SECRET) =>
  `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
const push = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    ref: "refs/heads/main",
    repository: { pushed_at: Math.floor(Date.now() / 1000) },
    ...extra,
  });

describe("webhooks", () => {
  test("a signed GitHub push for the followed ref triggers every app (202)", async () => {
    const body = push();
    const r = await api.request("/hooks/github", {
      method: "POST",
      headers: { "X-Hub-Signature-256": sign(body), "X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1" },
      body,
    });
    expect(r.status).toBe(202);
    expect(await r.json()).toEqual({ triggered: ["base", "web"] });
    expect(loop.triggered).toEqual(["base", "web"]);
    expect(loop.triggeredBy).toEqual(["webhook:github", "webhook:github"]);
  });

  test("a push to another ref triggers nothing", async () => {
    const body = push({ ref: "refs/heads/feature" });
    const r = await api.request("/hooks/gitea", {
      method: "POST",
      headers: { "X-Hub-Signature-256": sign(body) },
      body,
    });
    expect(r.status).toBe(202);
    expect(loop.triggered).toEqual([]);
  });

  test("a hook naming an OCI source is refused (422) saying webhooks do not apply; a Git source's still triggers", async () => {
    const multi = createApi({
      loop,
      ledger,
      apps: [
        { name: "base", path: "base", dependsOn: [], source: "infra" },
        { name: "web", path: "web", dependsOn: [], source: "art" },
      ],
      sourceRef: "main",
      sources: {
        infra: { ref: "main" },
        art: { ref: "v1", oci: "oci://reg.example/team/app" },
      },
      metrics,
      kubeCodes: () => ({}),
      events,
      tokens: [],
      anonymousRead: false,
      webhook: { secret: SECRET, maxAge: 300_000 },
    });
    const hook = (source: string, delivery: string) => {
      const body = push();
      return multi.request(`/hooks/github/${source}`, {
        method: "POST",
        headers: {
          "X-Hub-Signature-256": sign(body),
          "X-GitHub-Event": "push",
          "X-GitHub-Delivery": delivery,
        },
        body,
      });
    };
    const r = await hook("art", "oci-1");
    expect(r.status).toBe(422);
    expect((await errorOf(r)).message).toBe(
      "source art is an OCI artifact (oci://reg.example/team/app): push webhooks do not apply; it is polled every interval (POST /api/v1/apps/<app>/sync fetches it at once)",
    );
    expect(loop.triggered).toEqual([]);
    expect((await hook("infra", "oci-2")).status).toBe(202);
    expect(loop.triggered).toEqual(["base"]);
  });

  test("GitLab token and generic HMAC with a timestamp are accepted", async () => {
    const gl = JSON.stringify({ object_kind: "push", ref: "refs/heads/main" });
    const r1 = await api.request("/hooks/gitlab", {
      method: "POST",
      headers: { "X-Gitlab-Token": SECRET, "X-Gitlab-Event": "Push Hook" },
      body: gl,
    });
    expect(r1.status).toBe(202);
    const ts = String(Math.floor(Date.now() / 1000));
    const g = JSON.stringify({ ref: "main", app: "web" });
    const r2 = await api.request("/hooks/generic", {
      method: "POST",
      headers: { "X-Berth-Timestamp": ts, "X-Berth-Signature": sign(`${ts}.${g}`) },
      body: g,
    });
    expect(r2.status).toBe(202);
    expect(loop.triggered).toEqual(["base", "web", "web"]);
    expect(loop.triggeredBy).toEqual(["webhook:gitlab", "webhook:gitlab", "webhook:generic"]);
  });

  test("unsigned, wrongly signed, replayed, too old, oversized and malformed deliveries trigger nothing", async () => {
    const body = push();
    const old = push({ repository: { pushed_at: Math.floor(Date.now() / 1000) - 3600 } });
    const ts = String(Math.floor(Date.now() / 1000) - 3600);
    const g = JSON.stringify({ ref: "main" });
    const big = push({ padding: "x".repeat(1024 * 1024) });
    // A first, valid delivery d-9 to make the replay below a replay.
    await api.request("/hooks/github", {
      method: "POST",
      headers: { "X-Hub-Signature-256": sign(body), "X-GitHub-Delivery": "d-9" },
      body,
    });
    loop.triggered = [];
    const cases: Array<[string, Record<string, string>, string, number, string]> = [
      ["github", {}, body, 401, "Unsigned"],
      ["github", { "X-Hub-Signature-256": sign(body, "other") }, body, 401, "BadSignature"],
      ["github", { "X-Hub-Signature-256": sign(`${body} `) }, body, 401, "BadSignature"],
      ["github", { "X-Hub-Signature-256": "sha256=" }, body, 401, "BadSignature"],
      ["github", { "X-Hub-Signature-256": sign(body), "X-GitHub-Delivery": "d-9" }, body, 403, "Replayed"],
      ["github", { "X-Hub-Signature-256": sign(old) }, old, 403, "TooOld"],
      ["github", { "X-Hub-Signature-256": sign(big) }, big, 413, "PayloadTooLarge"],
      ["github", { "X-Hub-Signature-256": sign("{nope") }, "{nope", 422, "InvalidRequest"],
      ["github", { "X-Hub-Signature-256": sign('{"ref":5}') }, '{"ref":5}', 422, "InvalidRequest"],
      ["gitlab", { "X-Gitlab-Token": "wrong" }, body, 401, "BadSignature"],
      ["gitlab", {}, body, 401, "Unsigned"],
      ["generic", { "X-Berth-Timestamp": ts, "X-Berth-Signature": sign(`${ts}.${g}`) }, g, 403, "TooOld"],
      ["generic", { "X-Berth-Signature": sign(g) }, g, 401, "Unsigned"],
      ["nope", {}, body, 404, "NotFound"],
    ];
    for (const [provider, headers, payload, status, reason] of cases) {
      const r = await api.request(`/hooks/${provider}`, { method: "POST", headers, body: payload });
      expect([provider, reason, r.status]).toEqual([provider, reason, status]);
      expect((await errorOf(r)).reason).toBe(reason);
    }
    expect(loop.triggered).toEqual([]);
  });
});

describe("webhook replays and timestamps", () => {
  const hook = (provider: string, headers: Record<string, string>, body: string) =>
    api.request(`/hooks/${provider}`, { method: "POST", headers, body });
  const expectRefused = async (r: Response, reason: string) => {
    expect(r.status).toBe(403);
    const error = await errorOf(r);
    expect(error.reason).toBe(reason);
    return error.message;
  };
  const seconds = (offset = 0) => Math.floor(Date.now() / 1000) + offset;

  test("the same signed body is a replay without a delivery id, and with a new one", async () => {
    const body = push({ after: "1".repeat(40) });
    expect((await hook("github", { "X-Hub-Signature-256": sign(body) }, body)).status).toBe(202);
    const again = await hook("github", { "X-Hub-Signature-256": sign(body) }, body);
    expect(await expectRefused(again, "Replayed")).toContain("the same signed body was already received");
    const newId = await hook(
      "github",
      { "X-Hub-Signature-256": sign(body), "X-GitHub-Delivery": "fresh" },
      body,
    );
    expect(await expectRefused(newId, "Replayed")).toContain("now as delivery fresh");
    // Sent to another provider's route with the same signature: still the same bytes.
    await expectRefused(await hook("gitea", { "X-Gitea-Signature": sign(body).slice(7) }, body), "Replayed");
    // GitLab (no timestamp in its payload) and the generic hook are de-duplicated the same way.
    const gl = JSON.stringify({ object_kind: "push", ref: "refs/heads/main", after: "2".repeat(40) });
    expect((await hook("gitlab", { "X-Gitlab-Token": SECRET }, gl)).status).toBe(202);
    await expectRefused(
      await hook("gitlab", { "X-Gitlab-Token": SECRET, "X-Gitlab-Event-UUID": "u-2" }, gl),
      "Replayed",
    );
    const ts = String(seconds());
    const g = JSON.stringify({ ref: "main" });
    const generic = { "X-Berth-Timestamp": ts, "X-Berth-Signature": sign(`${ts}.${g}`) };
    expect((await hook("generic", generic, g)).status).toBe(202);
    await expectRefused(await hook("generic", { ...generic, "X-Berth-Delivery": "g-2" }, g), "Replayed");
    expect(loop.triggered).toEqual(["base", "web", "base", "web", "base", "web"]);
  });

  test("a delivery id seen before is a replay even with another body", async () => {
    const one = push({ after: "3".repeat(40) });
    const two = push({ after: "4".repeat(40) });
    const headers = (b: string) => ({ "X-Hub-Signature-256": sign(b), "X-GitHub-Delivery": "same-id" });
    expect((await hook("github", headers(one), one)).status).toBe(202);
    expect(await expectRefused(await hook("github", headers(two), two), "Replayed")).toContain(
      "delivery same-id was already received",
    );
  });

  test("Gitea's string and numeric pushed_at are checked: in range 202, too old or ahead 403", async () => {
    const gitea = (pushedAt: unknown, after: string) => {
      const body = JSON.stringify({ ref: "refs/heads/main", after, repository: { pushed_at: pushedAt } });
      return hook("gitea", { "X-Gitea-Signature": sign(body).slice(7), "X-Gitea-Event": "push" }, body);
    };
    const iso = (offsetSeconds: number) => new Date((seconds() + offsetSeconds) * 1000).toISOString();
    expect((await gitea(iso(-10), "a1")).status).toBe(202);
    expect((await gitea(iso(-10).replace("Z", "+00:00"), "a2")).status).toBe(202);
    expect((await gitea(String(seconds(-10)), "a3")).status).toBe(202);
    expect((await gitea(seconds(-10), "a4")).status).toBe(202);
    expect(await expectRefused(await gitea(iso(-3600), "b1"), "TooOld")).toContain("repository.pushed_at");
    await expectRefused(await gitea(String(seconds(-3600)), "b2"), "TooOld");
    expect(await expectRefused(await gitea(iso(3600), "c1"), "FromTheFuture")).toMatch(
      /is 3[56]\d\ds in the future; at most 60s of clock skew/,
    );
    await expectRefused(await gitea(seconds(365 * 86400), "c2"), "FromTheFuture");
    // Within the 60 s of clock skew allowed.
    expect((await gitea(seconds(30), "c3")).status).toBe(202);
    for (const bad of ["yesterday", "2024-02-31T10:00:00Z", "1e99", "", 1e99, -5, 1.5e9 + 0.5]) {
      const r = await gitea(bad, `d-${String(bad)}`);
      if (typeof bad === "number" && !Number.isInteger(bad)) expect(r.status).toBe(422);
      else expect(await expectRefused(r, "BadTimestamp")).toContain("repository.pushed_at");
    }
    expect(loop.triggered).toHaveLength(2 * 5);
  });

  test("the generic hook's timestamp: 1e99, a year ahead and non-numbers are refused", async () => {
    const g = JSON.stringify({ ref: "main" });
    const signed = (ts: string) => ({ "X-Berth-Timestamp": ts, "X-Berth-Signature": sign(`${ts}.${g}`) });
    const message = await expectRefused(await hook("generic", signed("1e99"), g), "BadTimestamp");
    expect(message).toBe('generic webhook: X-Berth-Timestamp "1e99" is not unix seconds');
    await expectRefused(await hook("generic", signed(String(seconds(365 * 86400))), g), "FromTheFuture");
    await expectRefused(await hook("generic", signed(String(seconds(120))), g), "FromTheFuture");
    await expectRefused(await hook("generic", signed("17e8"), g), "BadTimestamp");
    await expectRefused(await hook("generic", signed("1700000000.5"), g), "BadTimestamp");
    expect(loop.triggered).toEqual([]);
  });
});

describe("DeliveryLog and parseTimestamp", () => {
  test("keys are forgotten once expired, and never more than the capacity are kept", () => {
    const log = new DeliveryLog(3);
    expect(log.check(["a"], 0, 100)).toBeUndefined();
    expect(log.check(["a"], 50, 150)).toBe("a");
    expect(log.check(["a"], 100, 200)).toBeUndefined(); // expired at 100
    for (const k of ["b", "c", "d", "e"]) expect(log.check([k], 110, 1000)).toBeUndefined();
    expect(log.size).toBe(3);
    expect(log.check(["a"], 120, 1000)).toBeUndefined(); // evicted as the oldest
    expect(log.check(["e"], 120, 1000)).toBe("e");
    expect(log.check(["x", "d"], 120, 1000)).toBe("d");
    expect(log.check(["x"], 120, 1000)).toBeUndefined(); // nothing is recorded on a hit
    expect(log.check(["e"], 5000, 6000)).toBeUndefined();
    expect(log.size).toBe(1);
  });

  test("parses unix seconds, RFC 3339 and GitLab's dates; rejects the rest", () => {
    const t = Date.UTC(2024, 4, 1, 10, 20, 30);
    expect(parseTimestamp(t / 1000)).toBe(t);
    expect(parseTimestamp(String(t / 1000))).toBe(t);
    expect(parseTimestamp("2024-05-01T10:20:30Z")).toBe(t);
    expect(parseTimestamp("2024-05-01T10:20:30.250Z")).toBe(t + 250);
    expect(parseTimestamp("2024-05-01T12:20:30+02:00")).toBe(t);
    expect(parseTimestamp("2024-05-01 10:20:30 UTC")).toBe(t);
    expect(parseTimestamp("2024-05-01 05:20:30 -0500")).toBe(t);
    for (const bad of [
      1e99,
      Number.NaN,
      -1,
      1.5,
      "1e9",
      "0x10",
      "2024-13-01T00:00:00Z",
      "2024-05-01",
      null,
      {},
      [],
    ])
      expect([bad, parseTimestamp(bad)]).toEqual([bad, undefined]);
  });
});

describe("events and metrics", () => {
  test("GET /api/v1/events streams engine events as SSE", async () => {
    const r = await api.request("/api/v1/events", { headers: reader });
    expect(r.headers.get("content-type")).toContain("text/event-stream");
    const reader_ = (r.body as ReadableStream<Uint8Array>).getReader();
    let text = "";
    const read = async () => {
      const { value } = await reader_.read();
      text += new TextDecoder().decode(value);
    };
    await read();
    events.emit({ type: "stage", app: "web", stage: "apply" });
    while (!text.includes("event: stage")) await read();
    expect(text).toContain('"stage":"apply"');
    expect(events.size).toBe(1);
    await Bun.sleep(50); // the stream is idle now, waiting on the bus for the next event
    await reader_.cancel();
    // The reader leaving ends the stream's wait on the bus at once (not at the heartbeat) and unsubscribes it.
    for (let i = 0; i < 50 && events.size > 0; i++) await Bun.sleep(10);
    expect(events.size).toBe(0);
  });

  test("/metrics parses as Prometheus text and counts syncs, durations and kube requests", async () => {
    metrics.observe({ type: "started", app: "web", entry: 1, revision: REV, trigger: "loop" });
    metrics.observe({
      type: "finished",
      app: "web",
      entry: 1,
      outcome: "Succeeded",
      reason: "Succeeded",
      message: "",
    });
    metrics.gitRequest(true);
    metrics.gitRequest(false);
    const text = await (await api.request("/metrics")).text();
    const samples = parsePrometheus(text);
    const value = (name: string, labels: Record<string, string>) =>
      samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        ?.value;
    expect(value("berth_sync_total", { app: "web", result: "Succeeded" })).toBe(1);
    expect(value("berth_sync_total", { app: "base", result: "Failed" })).toBe(0);
    expect(value("berth_reconcile_duration_seconds_count", { app: "web" })).toBe(1);
    expect(value("berth_reconcile_duration_seconds_bucket", { app: "web", le: "+Inf" })).toBe(1);
    expect(
      value("berth_app_info", { app: "web", revision: REV, sync_status: "Synced", health_status: "Current" }),
    ).toBe(1);
    expect(value("berth_app_info", { app: "base", sync_status: "Failed" })).toBe(1);
    expect(value("berth_drift_total", { app: "web" })).toBe(0);
    expect(value("berth_git_requests_total", { result: "error" })).toBe(1);
    expect(value("berth_kube_requests_total", { verb: "apply", code: "409" })).toBe(1);
    expect(value("process_resident_memory_bytes", {})).toBeGreaterThan(0);
  });

  test("the strict parser rejects malformed exposition text (so the test above can fail)", () => {
    expect(() => parsePrometheus('x{a="1} 1\n')).toThrow();
    expect(() => parsePrometheus("x 1\n# TYPE x counter\n")).toThrow();
    expect(() => parsePrometheus("x one\n")).toThrow();
  });

  test("GET /api/v1/openapi.json is OpenAPI 3.1 whose schemas are the ones under schemas/api", async () => {
    const doc = (await (await api.request("/api/v1/openapi.json", { headers: reader })).json()) as any;
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toContain("/api/v1/apps/{name}/sync");
    expect(doc.components.schemas.App.properties.syncStatus).toEqual(API_SCHEMAS.App.properties.syncStatus);
    const refs = JSON.stringify(doc).match(/#\/components\/schemas\/\w+/g) ?? [];
    for (const r of refs) expect(doc.components.schemas[r.split("/").at(-1) as string]).toBeDefined();
  });
});

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A strict parser of the Prometheus text format 0.0.4: TYPE before samples, valid names, escapes and numbers. */
function parsePrometheus(text: string): Sample[] {
  if (!text.endsWith("\n")) throw new Error("must end with a newline");
  const types = new Map<string, string>();
  const seenSamples = new Set<string>();
  const out: Sample[] = [];
  const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
  for (const line of text.slice(0, -1).split("\n")) {
    if (line.startsWith("# HELP ")) continue;
    if (line.startsWith("# TYPE ")) {
      const [, , name, type] = line.split(" ");
      if (!name || !/^(counter|gauge|histogram|summary|untyped)$/.test(type ?? ""))
        throw new Error(`bad TYPE: ${line}`);
      if (types.has(name) || seenSamples.has(name)) throw new Error(`TYPE after samples or twice: ${name}`);
      types.set(name, type as string);
      continue;
    }
    if (line.startsWith("#") || line === "") continue;
    const m = NAME.exec(line);
    if (!m) throw new Error(`bad metric name: ${line}`);
    const name = m[0];
    let rest = line.slice(name.length);
    const labels: Record<string, string> = {};
    if (rest.startsWith("{")) {
      rest = rest.slice(1);
      while (!rest.startsWith("}")) {
        const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,?)/.exec(rest);
        if (!lm) throw new Error(`bad labels: ${line}`);
        labels[lm[1] as string] = (lm[2] as string).replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
        rest = rest.slice(lm[0].length);
        if (!lm[3] && !rest.startsWith("}")) throw new Error(`bad labels: ${line}`);
      }
      rest = rest.slice(1);
    }
    const vm = /^ (-?[0-9.e+-]+|\+Inf|-Inf|NaN)( -?[0-9]+)?$/.exec(rest);
    if (!vm) throw new Error(`bad value: ${line}`);
    const value = Number(vm[1]?.replace("Inf", "Infinity"));
    if (Number.isNaN(value) && vm[1] !== "NaN") throw new Error(`bad value: ${line}`);
    const base = name.replace(/_(bucket|sum|count)$/, "");
    const family = types.has(name) ? name : base;
    if (!types.has(family)) throw new Error(`sample without TYPE: ${name}`);
    if (types.get(family) === "histogram" && name.endsWith("_bucket") && labels.le === undefined)
      throw new Error(`bucket without le: ${line}`);
    seenSamples.add(family);
    out.push({ name, labels, value });
  }
  return out;
}
