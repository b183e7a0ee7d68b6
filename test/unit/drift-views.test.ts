/**
 * Drift where operators look: the API app view (counts and, in detail, the newest events, matching
 * schemas/api/app.json), the status page's drift badge and line, and the DRIFT column of `berth status`.
 * Uses a real ledger file; the health wait reading the watch view instead of GET is tested here too.
 */
import { beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv } from "ajv";
import { createApi, type LoopControl } from "../../agent/api/app.ts";
import { tokenEntry } from "../../agent/api/auth.ts";
import { API_SCHEMAS } from "../../agent/api/schemas.ts";
import { STATUS_PAGE } from "../../agent/api/status-page.ts";
import { cli } from "../../agent/cli/cli.ts";
import { EventBus } from "../../agent/engine/events.ts";
import type { AppState } from "../../agent/engine/loop.ts";
import { Metrics } from "../../agent/engine/metrics.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import type { KubeObject, ObjectRef } from "../../agent/object/object.ts";
import { waitHealthy } from "../../agent/wait/wait.ts";

const REV = `main@sha1:${"a".repeat(40)}`;
const cm = (name: string): ObjectRef => ({
  group: "",
  version: "v1",
  kind: "ConfigMap",
  namespace: "ns",
  name,
});

const loop: LoopControl = {
  ticks: 1,
  seenRevision: REV,
  gitUnreachableSince: undefined,
  gitError: undefined,
  status: (): AppState[] =>
    ["web", "calm"].map((name) => ({ name, suspended: false, status: "Synced", failures: 0 })),
  trigger: () => {},
  suspend: () => true,
  resume: () => true,
} as unknown as LoopControl;

let dir: string;
let ledger: Ledger;
let api: ReturnType<typeof createApi>;
const reader = { Authorization: "Bearer reader-token" };

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "berth-drift-views-"));
  ledger = await Ledger.open(join(dir, "ledger.db"));
  for (const app of ["web", "calm"]) {
    const id = ledger.begin({ app, revision: REV, trigger: "loop" });
    ledger.finish(id, { outcome: "Succeeded", reason: "Succeeded", message: "", objects: [], timings: {} });
  }
  ledger.recordDrift({
    app: "web",
    ref: cm("a"),
    manager: "kubectl-edit",
    fields: ["/data/x"],
    action: "healed",
  });
  ledger.recordDrift({ app: "web", ref: cm("b"), manager: "kubectl", fields: ["/"], action: "alerted" });
  ledger.recordDrift({
    app: "web",
    ref: cm("c"),
    manager: "kubectl",
    fields: ["/data/y"],
    action: "heal-failed",
    message: "ConfigMap/ns/c: forbidden",
  });
  // Older than a day: not "recent", so neither counted nor listed.
  ledger.recordDrift({
    app: "web",
    ref: cm("old"),
    manager: "kubectl",
    fields: ["/data/z"],
    action: "healed",
    detectedAt: new Date(Date.now() - 2 * 24 * 3600_000).toISOString(),
  });
  api = createApi({
    loop,
    ledger,
    apps: [
      { name: "web", path: "web", dependsOn: [] },
      { name: "calm", path: "calm", dependsOn: [] },
    ],
    sourceRef: "main",
    metrics: new Metrics(),
    kubeCodes: () => ({}),
    events: new EventBus(),
    tokens: [tokenEntry("reader-token", "read")],
    anonymousRead: false,
  } as Parameters<typeof createApi>[0]);
});

describe("drift in the API app view", () => {
  test("the list has counts by action of the last day; an app without drift has zeros", async () => {
    const r = await api.request("/api/v1/apps", { headers: reader });
    expect(r.status).toBe(200);
    const { apps } = (await r.json()) as { apps: Array<{ name: string; drift?: Record<string, unknown> }> };
    const web = apps.find((a) => a.name === "web");
    expect(web?.drift).toMatchObject({ recent: 3, healed: 1, alerted: 1, failed: 1 });
    expect(web?.drift?.events).toBeUndefined();
    expect(apps.find((a) => a.name === "calm")?.drift).toEqual({
      recent: 0,
      healed: 0,
      alerted: 0,
      failed: 0,
    });
    const validate = new Ajv({ strict: true, allowUnionTypes: true, validateFormats: false }).compile(
      API_SCHEMAS.App,
    );
    for (const a of apps) expect(validate(a)).toBe(true);
  });

  test("the detail lists the newest events, with subject, manager, fields and the failure message", async () => {
    const r = await api.request("/api/v1/apps/web", { headers: reader });
    const view = (await r.json()) as { drift: { events: Array<Record<string, unknown>>; lastAt: string } };
    expect(view.drift.events.map((e) => e.subject)).toEqual([
      "ConfigMap/ns/c",
      "ConfigMap/ns/b",
      "ConfigMap/ns/a",
    ]);
    expect(view.drift.events[0]).toMatchObject({
      manager: "kubectl",
      fields: ["/data/y"],
      action: "heal-failed",
      message: "ConfigMap/ns/c: forbidden",
    });
    expect(Date.now() - Date.parse(view.drift.lastAt)).toBeLessThan(60_000);
    expect(
      new Ajv({ strict: true, allowUnionTypes: true, validateFormats: false }).compile(API_SCHEMAS.App)(view),
    ).toBe(true);
  });
});

describe("drift on the status page", () => {
  // The page's own rendering functions, run on an app view (the page is plain script, no build step).
  const fn = (name: string) =>
    new RegExp(`function ${name}\\(a\\) \\{[\\s\\S]*?\\n\\}`).exec(STATUS_PAGE)?.[0];
  const lines = STATUS_PAGE.split("\n");
  const from = lines.findIndex((l) => l.startsWith("const esc ="));
  const to = lines.findIndex((l) => l.includes('" ago" : "in "'));
  const helpers = lines.slice(from, to + 1).join("\n");
  const render = new Function(
    `${helpers}\n${fn("driftBadge")}\n${fn("driftLine")}\nreturn (a) => driftBadge(a) + "|" + driftLine(a);`,
  )() as (a: unknown) => string;

  test("an app with recent drift gets a badge with the count and a line with counts by action", () => {
    const html = render({
      drift: { recent: 3, healed: 1, alerted: 1, failed: 1, lastAt: new Date().toISOString() },
    });
    expect(html).toContain('class="badge drift Drift"');
    expect(html).toContain("drift 3");
    expect(html).toContain("3 in 24h (1 healed, 1 alerted, 1 failed), last");
  });

  test("no drift: no badge, the line says none; no drift block (older agent): nothing", () => {
    expect(render({ drift: { recent: 0, healed: 0, alerted: 0, failed: 0 } })).toBe(
      '|<dt>drift</dt><dd class="drift-line">none in 24h</dd>',
    );
    expect(render({})).toBe("|");
  });
});

describe("berth status", () => {
  test("a DRIFT column counts each app's recent drift events; --json carries the summary", async () => {
    const config = join(dir, "berth.yaml");
    writeFileSync(
      config,
      `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "https://example.invalid/repo.git"}\napps:\n  - {name: web, path: web}\n  - {name: calm, path: calm}\nledger: {path: ${join(dir, "ledger.db")}}\n`,
    );
    ledger.close();
    let out = "";
    let err = "";
    const io = { out: (s: string) => (out += s), err: (s: string) => (err += s), tty: false };
    expect(await cli(["status", "--config", config], io)).toBe(0);
    const lines = out.trim().split("\n");
    // Columns are padded; empty cells (REASON) make splitting on spaces unreliable, so cut at the header.
    const col = (lines[0] ?? "").indexOf("DRIFT");
    expect(col).toBeGreaterThan(0);
    const cell = (app: string) => (lines.find((l) => l.startsWith(app)) ?? "").slice(col).split(/\s/)[0];
    expect(cell("web")).toBe("3");
    expect(cell("calm")).toBe("0");
    out = "";
    expect(await cli(["status", "--config", config, "--json"], io)).toBe(0);
    const rows = JSON.parse(out) as Array<{ app: string; drift: { recent: number; failed: number } }>;
    expect(rows.find((r) => r.app === "web")?.drift).toMatchObject({ recent: 3, failed: 1 });
    expect(err).toBe("");
  });
});

describe("the health wait reads the watch view", () => {
  const judge = { assess: () => ({ status: "Current" as const, reason: "Current", message: "" }) };
  const obj = (name: string, rv: string): KubeObject => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace: "ns", resourceVersion: rv },
  });

  test("objects the view holds are not fetched; absent ones and copies older than the apply are", async () => {
    const gets: string[] = [];
    const cluster = {
      get: async (ref: ObjectRef) => {
        gets.push(ref.name);
        return obj(ref.name, "100");
      },
    };
    const held = new Map([
      ["fresh", obj("fresh", "50")],
      ["written", obj("written", "90")],
      ["stale", obj("stale", "10")],
    ]);
    const r = await waitHealthy(
      [
        { ref: cm("fresh"), subject: "fresh" },
        { ref: cm("written"), subject: "written", appliedVersion: "90" },
        { ref: cm("stale"), subject: "stale", appliedVersion: "99" },
        { ref: cm("absent"), subject: "absent" },
      ],
      cluster,
      judge,
      { timeoutMs: 1000, view: (ref) => held.get(ref.name) },
    );
    expect(r.healthy).toBe(true);
    expect(gets.sort()).toEqual(["absent", "stale"]);
  });

  test("a view copy that predates the apply is never judged: a stale Current does not end the wait", async () => {
    const judgeByVersion = {
      assess: (o: KubeObject) =>
        o.metadata.resourceVersion === "10"
          ? { status: "Current" as const, reason: "Current", message: "" }
          : { status: "Failed" as const, reason: "Failed", message: "new spec fails" },
    };
    const r = await waitHealthy(
      [{ ref: cm("x"), subject: "x", appliedVersion: "11" }],
      { get: async () => obj("x", "11") },
      judgeByVersion,
      { timeoutMs: 1000, view: () => obj("x", "10") },
    );
    expect(r.healthy).toBe(false);
    expect(r.objects[0]?.status).toBe("Failed");
  });
});
