/**
 * Verdicts in the ledger (hash-chained), approvals of held syncs and window overrides, and the HTTP side:
 * POST approve / pin / unpin and verdicts in the API's ledger entry. Real SQLite ledgers, the Hono app via
 * app.request().
 */
import { beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv } from "ajv";
import type { createApi, LoopControl } from "../../agent/api/app.ts";
import { tokenEntry } from "../../agent/api/auth.ts";
import { API_SCHEMAS } from "../../agent/api/schemas.ts";
import type { AppState } from "../../agent/engine/loop.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import type { Plan } from "../../agent/plan/plan.ts";
import { RulePolicy } from "../../agent/policy/policy.ts";
import { parseRuleFile } from "../../agent/policy/rule-file.ts";
import { judgePlan } from "../../agent/policy/sync-judge.ts";
import { testApi } from "../support/api.ts";
import { withRawDb } from "../support/ledger-fixtures.ts";

const REV = `main@sha1:${"b".repeat(40)}`;
const ref = { group: "", version: "v1", kind: "ConfigMap", namespace: "ns", name: "cm" };
const tmp = () => join(mkdtempSync(join(tmpdir(), "berth-approvals-")), "ledger.db");

const RULES = parseRuleFile(
  `apiVersion: berth.dev/v1alpha1
kind: Rules
sync:
  - name: hold-deletes
    when: change.action == 'deleted'
    verdict: hold
    message: deleting needs a second pair of eyes
  - name: office-hours
    scope: plan
    when: now.getHours('UTC') < 9 || now.getHours('UTC') >= 17
    verdict: defer
    message: syncs run 09:00-17:00 UTC
`,
  "policy.yaml",
).sync;

const plan = (action: "created" | "deleted"): Plan => ({
  app: "web",
  revision: REV,
  errors: [],
  summary: { created: 0, configured: 0, unchanged: 0, deleted: 0, skipped: 0, [action]: 1 },
  changes: [
    {
      id: "v1/ConfigMap/ns/cm",
      ref,
      subject: "ConfigMap/ns/cm",
      action,
      stage: "workloads",
      diff: [],
      owned: true,
      live: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "cm", namespace: "ns" } },
    },
  ],
});
const noon = new Date("2025-03-04T12:00:00Z");
const night = new Date("2025-03-04T23:00:00Z");

describe("hold and defer verdicts with approvals", () => {
  test("a hold blocks with a message naming the rule, file:line and how to approve", () => {
    const j = judgePlan(RULES, { app: { name: "web" }, plan: plan("deleted"), now: noon });
    expect(j.blocked?.verdict).toBe("hold");
    expect(j.blocked?.message).toContain("held for approval by rule hold-deletes at policy.yaml:4");
    expect(j.blocked?.message).toContain(`berth approve --app web --revision ${REV}`);
  });

  test("an approval lifts the hold, and the verdict records who approved", () => {
    const approval = { by: "alice", expiresAt: "2025-03-04T13:00:00Z", overrideWindow: false };
    const j = judgePlan(RULES, { app: { name: "web" }, plan: plan("deleted"), now: noon, approval });
    expect(j.blocked).toBeUndefined();
    expect(j.verdicts).toEqual([expect.objectContaining({ rule: "hold-deletes", approvedBy: "alice" })]);
  });

  test("a window rule defers over `now`; a plain approval does not lift it, an override does", () => {
    const deferred = judgePlan(RULES, { app: { name: "web" }, plan: plan("created"), now: night });
    expect(deferred.blocked?.verdict).toBe("defer");
    expect(deferred.blocked?.message).toContain("deferred by rule office-hours");
    expect(deferred.blocked?.message).toContain("--override-window");
    expect(
      judgePlan(RULES, { app: { name: "web" }, plan: plan("created"), now: noon }).blocked,
    ).toBeUndefined();
    const plain = { by: "bob", expiresAt: "2025-03-05T00:00:00Z", overrideWindow: false };
    expect(
      judgePlan(RULES, { app: { name: "web" }, plan: plan("created"), now: night, approval: plain }).blocked
        ?.verdict,
    ).toBe("defer");
    const override = { ...plain, overrideWindow: true };
    const j = judgePlan(RULES, {
      app: { name: "web" },
      plan: plan("created"),
      now: night,
      approval: override,
    });
    expect(j.blocked).toBeUndefined();
    expect(j.verdicts[0]?.message).toContain("window overridden by bob");
  });

  test("RulePolicy asks the ledger for the approval of the plan's app and revision", async () => {
    const ledger = await Ledger.open(tmp());
    const policy = new RulePolicy(
      { sync: RULES },
      () => noon,
      (a, r) => ledger.approvalFor(a, r),
    );
    const app = { name: "web" } as Parameters<RulePolicy["judge"]>[0]["app"];
    const commit = { sha: "", author: "", message: "", time: "" };
    expect(policy.judge({ app, plan: plan("deleted"), commit }).blocked).toBeDefined();
    ledger.approve("web", "some-other-revision", "carol", new Date(Date.now() + 60_000));
    expect(policy.judge({ app, plan: plan("deleted"), commit }).blocked).toBeDefined();
    ledger.approve("web", REV, "carol", new Date(Date.now() + 60_000));
    expect(policy.judge({ app, plan: plan("deleted"), commit }).blocked).toBeUndefined();
    ledger.close();
  });
});

describe("ledger verdicts and approvals", () => {
  test("verdicts are stored with the entry, returned by get() and covered by the hash chain", async () => {
    const ledger = await Ledger.open(tmp());
    const old = ledger.begin({ app: "web", revision: REV, trigger: "t" });
    ledger.finish(old, {
      outcome: "Succeeded",
      reason: "Succeeded",
      message: "ok",
      objects: [],
      timings: {},
    });
    const id = ledger.begin({ app: "web", revision: REV, trigger: "t" });
    const verdicts = [
      {
        rule: "hold-deletes",
        at: "policy.yaml:4",
        verdict: "hold",
        subject: "ConfigMap/ns/cm",
        message: "m",
      },
      { rule: "office-hours", at: "policy.yaml:8", verdict: "defer", message: "w", approvedBy: "alice" },
    ];
    ledger.finish(id, {
      outcome: "Failed",
      reason: "PlanRejected",
      message: "held",
      objects: [{ ref, action: "deleted" }],
      timings: {},
      verdicts,
    });
    expect(ledger.get(id)?.verdicts).toEqual(verdicts);
    expect(ledger.get(old)?.verdicts).toBeUndefined();
    expect(ledger.verify().ok).toBe(true);
    // Editing a verdict row (through a connection of its own) breaks the chain at that entry.
    const edited = await withRawDb(
      ledger.path,
      (db) =>
        db.run("UPDATE entry_verdicts SET message = 'nothing to see' WHERE entry_id = ? AND seq = 0", [id])
          .changes,
    );
    expect(edited).toBe(1);
    const v = ledger.verify();
    expect(v.ok).toBe(false);
    expect(v.firstBad).toBe(id);
    ledger.close();
  });

  test("approvals expire, refuse a past expiry and are replaced by a newer one", async () => {
    let now = new Date("2025-03-04T12:00:00Z");
    const ledger = await Ledger.open(tmp(), { now: () => now });
    expect(() => ledger.approve("web", REV, "alice", new Date("2025-03-04T11:00:00Z"))).toThrow(
      /not in the future/,
    );
    ledger.approve("web", REV, "alice", new Date("2025-03-04T13:00:00Z"));
    expect(ledger.approvalFor("web", REV)).toMatchObject({ by: "alice", overrideWindow: false });
    expect(ledger.approvalFor("other", REV)).toBeUndefined();
    ledger.approve("web", REV, "bob", new Date("2025-03-04T12:30:00Z"), { overrideWindow: true });
    expect(ledger.approvalFor("web", REV)).toMatchObject({ by: "bob", overrideWindow: true });
    now = new Date("2025-03-04T12:31:00Z");
    expect(ledger.approvalFor("web", REV)).toBeUndefined();
    ledger.close();
  });
});

class FakeLoop implements LoopControl {
  triggered: string[] = [];
  ticks = 1;
  seenRevision: string | undefined = REV;
  gitUnreachableSince: string | undefined;
  gitError: string | undefined;
  constructor(private readonly ledger: Ledger) {}
  status(): AppState[] {
    const pin = this.ledger.pinOf("web");
    return [
      { name: "web", suspended: false, status: "Synced", failures: 0, ...(pin ? { pinned: pin } : {}) },
    ];
  }
  suspend() {
    return true;
  }
  resume() {
    return true;
  }
  trigger(app: string) {
    this.triggered.push(app);
  }
}

describe("HTTP: approve, pin, unpin and verdicts", () => {
  let ledger: Ledger;
  let loop: FakeLoop;
  let api: ReturnType<typeof createApi>;
  let entry: number;
  let approvals: Array<{ app: string; revision: string; by: string }>;
  const operator = { Authorization: "Bearer operator-token", "Content-Type": "application/json" };
  const reader = { Authorization: "Bearer reader-token", "Content-Type": "application/json" };
  const ajv = new Ajv({ strict: false, allowUnionTypes: true, validateFormats: false });

  beforeEach(async () => {
    ledger = await Ledger.open(tmp());
    entry = ledger.begin({ app: "web", revision: REV, trigger: "loop" });
    ledger.finish(entry, {
      outcome: "Failed",
      reason: "PlanRejected",
      message: "held",
      objects: [{ ref, action: "deleted" }],
      timings: {},
      verdicts: [
        {
          rule: "hold-deletes",
          at: "policy.yaml:4",
          verdict: "hold",
          subject: "ConfigMap/ns/cm",
          message: "m",
        },
      ],
    });
    loop = new FakeLoop(ledger);
    approvals = [];
    api = testApi(loop, ledger, {
      apps: [{ name: "web", path: "web", dependsOn: [] }],
      tokens: [tokenEntry("reader-token", "read"), tokenEntry("operator-token", "operate")],
      anonymousRead: false,
      onApproved: (a) => approvals.push(a),
      failingDeliveries: () => [
        {
          receiver: "status:gitea",
          pending: 2,
          attempts: 3,
          lastError: "cannot connect",
          since: "2026-01-01T00:00:00Z",
        },
      ],
    });
  });

  test("GET /api/v1/ledger/ID carries the verdicts and matches ledger-entry.json", async () => {
    const r = await api.request(`/api/v1/ledger/${entry}`, { headers: reader });
    const body = (await r.json()) as { verdicts: unknown[] };
    expect(body.verdicts).toEqual([expect.objectContaining({ rule: "hold-deletes", at: "policy.yaml:4" })]);
    expect(ajv.validate(API_SCHEMAS.LedgerEntry, body)).toBe(true);
  });

  test("POST approve (operate) records an approval of the newest revision and triggers the app", async () => {
    const denied = await api.request("/api/v1/apps/web/approve", { method: "POST", headers: reader });
    expect(denied.status).toBe(403);
    const r = await api.request("/api/v1/apps/web/approve", {
      method: "POST",
      headers: operator,
      body: JSON.stringify({ expires: "30m", by: "dana" }),
    });
    expect(r.status).toBe(200);
    const body = await r.json();
    expect(body).toMatchObject({ app: "web", revision: REV, by: "dana", overrideWindow: false });
    expect(ajv.validate(API_SCHEMAS.Approval, body)).toBe(true);
    expect(ledger.approvalFor("web", REV)?.by).toBe("dana");
    expect(loop.triggered).toEqual(["web"]);
    // The notifier hears of it (the Approved event).
    expect(approvals).toEqual([expect.objectContaining({ app: "web", revision: REV, by: "dana" })]);
    const apps = (await (await api.request("/api/v1/apps", { headers: reader })).json()) as {
      failingDeliveries?: Array<{ receiver: string }>;
    };
    expect(apps.failingDeliveries?.map((f) => f.receiver)).toEqual(["status:gitea"]);
    const bad = await api.request("/api/v1/apps/web/approve", {
      method: "POST",
      headers: operator,
      body: JSON.stringify({ expires: "soon" }),
    });
    expect(bad.status).toBe(422);
    const unknown = await api.request("/api/v1/apps/nope/approve", { method: "POST", headers: operator });
    expect(unknown.status).toBe(404);
  });

  test("POST pin holds the app at an entry (shown in the apps view); unpin releases it; bad entries are 422", async () => {
    const missing = await api.request("/api/v1/apps/web/pin", { method: "POST", headers: operator });
    expect(missing.status).toBe(422);
    const wrong = await api.request("/api/v1/apps/web/pin", {
      method: "POST",
      headers: operator,
      body: JSON.stringify({ entry: 9999 }),
    });
    expect(wrong.status).toBe(422);
    const wrongBody = (await wrong.json()) as { error: { message: string } };
    expect(wrongBody.error.message).toContain("entry 9999 does not exist");
    const r = await api.request("/api/v1/apps/web/pin", {
      method: "POST",
      headers: operator,
      body: JSON.stringify({ entry }),
    });
    expect(r.status).toBe(200);
    const pinned = await r.json();
    expect(pinned).toMatchObject({ app: "web", pinned: { entry } });
    expect(ajv.validate(API_SCHEMAS.PinResult, pinned)).toBe(true);
    const view = (await (await api.request("/api/v1/apps/web", { headers: reader })).json()) as {
      pinned?: { entry: number };
    };
    expect(view.pinned?.entry).toBe(entry);
    expect(ajv.validate(API_SCHEMAS.App, view)).toBe(true);
    const un = await api.request("/api/v1/apps/web/unpin", { method: "POST", headers: operator });
    expect(await un.json()).toEqual({ app: "web" });
    expect(ledger.pinOf("web")).toBeUndefined();
    expect(loop.triggered).toEqual(["web", "web"]);
  });

  test("the OpenAPI document lists approve, pin and unpin", async () => {
    const doc = (await (await api.request("/api/v1/openapi.json", { headers: reader })).json()) as {
      paths: Record<string, unknown>;
    };
    for (const p of ["approve", "pin", "unpin"]) expect(doc.paths[`/api/v1/apps/{name}/${p}`]).toBeDefined();
  });
});
