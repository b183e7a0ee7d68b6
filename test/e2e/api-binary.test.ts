/**
 * The compiled binary's HTTP API against the real control plane and Git server: a push plus a signed
 * GitHub-style webhook syncs within 2 s, the new ledger entry shows over the API, counters move in /metrics.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { dirname, join } from "node:path";
import { writeBeside } from "../support/berth.ts";
import { apiAddress, getJson, runBerth, untilReady } from "../support/binary.ts";
import { eventually } from "../support/cluster.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { namespaceYaml } from "../support/manifests.ts";

const t = useClusterTest({ prefix: "api-e2e", binary: true });
const ns = t.ns;
let config: string;
let base: string;
const SECRET = "e2e-webhook-secret";
const TOKEN = "e2e-operate-token";
const READ_TOKEN = "e2e-read-token";
const cm = (greeting: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: ${ns}\ndata:\n  greeting: ${greeting}\n`;

// biome-ignore lint/suspicious/noExplicitAny: the tests read many shapes of the API's answers
const get = (path: string, token = READ_TOKEN) => getJson<any>(base, path, token);
const metric = async (pattern: RegExp): Promise<number> => {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split("\n").find((l) => pattern.test(l));
  return line ? Number(line.split(" ").at(-1)) : 0;
};

beforeAll(async () => {
  t.commit({ "app/ns.yaml": namespaceYaml(ns), "app/settings.yaml": cm("one") });
  const api = await apiAddress();
  base = api.base;
  // A long interval: only the webhook can explain a sync within 2 s.
  config = t.writeConfig([{ name: "app", path: "app", timeout: "30s" }], {
    source: "interval: 1h",
    extra: `api:\n  listen: 127.0.0.1:${api.port}\n  tokenFile: $DIR/token\n  tokens: [{file: $DIR/read-token, scope: read}]\n  webhook: {secretFile: $DIR/hook-secret}\n`,
  });
  writeBeside(config, { token: `${TOKEN}\n`, "read-token": `${READ_TOKEN}\n`, "hook-secret": `${SECRET}\n` });
  t.startRun(config);
  await untilReady(base, "the API ready after the first sync", 60_000);
}, 600_000);

describe("berth run serves the API", () => {
  test("a push and a signed GitHub webhook sync the app within 2 s; the ledger and /metrics show it", async () => {
    const before = await get("/api/v1/apps/app");
    expect(before.status).toBe(200);
    expect(before.body.syncStatus).toBe("Synced");
    const syncsBefore = await metric(/^berth_sync_total\{app="app",result="Succeeded"\}/);
    const gitBefore = await metric(/^berth_git_requests_total\{result="success"\}/);
    const kubeBefore = await metric(/^berth_kube_requests_total\{verb="apply",code="200"\}/);
    expect(syncsBefore).toBeGreaterThanOrEqual(1);

    const sha = t.commit({ "app/settings.yaml": cm("two") });
    const body = JSON.stringify({
      ref: "refs/heads/main",
      after: sha,
      repository: { pushed_at: Math.floor(Date.now() / 1000) },
    });
    const t0 = Date.now();
    const hook = await fetch(`${base}/hooks/github`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": `e2e-${sha}`,
        "X-Hub-Signature-256": `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`,
      },
      body,
    });
    expect(hook.status).toBe(202);
    expect(await hook.json()).toEqual({ triggered: ["app"] });
    await eventually("the app synced at the pushed commit", 2_000, async () => {
      const a = (await get("/api/v1/apps/app")).body;
      return a.syncStatus === "Synced" && a.revision.applied === `main@sha1:${sha}` ? true : undefined;
    });
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeLessThan(2_000);
    expect(t.kubectl("get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.greeting}")).toBe(
      "two",
    );

    const { body: page } = await get("/api/v1/ledger?app=app&limit=1");
    const newest = page.entries[0];
    expect(newest).toMatchObject({
      app: "app",
      revision: `main@sha1:${sha}`,
      outcome: "Succeeded",
      trigger: "webhook:github",
    });
    const entry = (await get(`/api/v1/ledger/${newest.id}`)).body;
    expect(entry.objects).toContainEqual(
      expect.objectContaining({ action: "configured", ref: expect.objectContaining({ name: "settings" }) }),
    );
    expect(await metric(/^berth_sync_total\{app="app",result="Succeeded"\}/)).toBe(syncsBefore + 1);
    expect(await metric(/^berth_git_requests_total\{result="success"\}/)).toBeGreaterThan(gitBefore);
    expect(await metric(/^berth_kube_requests_total\{verb="apply",code="200"\}/)).toBeGreaterThan(kubeBefore);
    expect(
      await metric(
        new RegExp(`^berth_app_info\\{app="app",revision="main@sha1:${sha}",sync_status="Synced"`),
      ),
    ).toBe(1);
    console.log(`webhook → Synced in ${elapsed} ms`);
  }, 30_000);

  test("a replayed or wrongly signed webhook and an under-scoped token trigger nothing", async () => {
    const newest = (await get("/api/v1/ledger?limit=1")).body.entries[0].id;
    const body = JSON.stringify({
      ref: "refs/heads/main",
      repository: { pushed_at: Math.floor(Date.now() / 1000) },
    });
    const bad = await fetch(`${base}/hooks/github`, {
      method: "POST",
      headers: { "X-Hub-Signature-256": `sha256=${"0".repeat(64)}` },
      body,
    });
    expect(bad.status).toBe(401);
    const forbidden = await fetch(`${base}/api/v1/apps/app/sync`, {
      method: "POST",
      headers: { Authorization: `Bearer ${READ_TOKEN}` },
    });
    expect(forbidden.status).toBe(403);
    expect((await fetch(`${base}/api/v1/apps`)).status).toBe(401);
    await Bun.sleep(500);
    expect((await get("/api/v1/ledger?limit=1")).body.entries[0].id).toBe(newest);
  });

  test("POST sync answers 202 at once, and the attempt it asked for shows in the ledger; suspend and resume", async () => {
    const newest = (await get("/api/v1/ledger?app=app&limit=1")).body.entries[0].id as number;
    const r = await fetch(`${base}/api/v1/apps/app/sync`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(r.status).toBe(202);
    const answer = (await r.json()) as Record<string, string>;
    expect(answer).toEqual({
      app: "app",
      status: "/api/v1/apps/app",
      ledger: "/api/v1/ledger?app=app",
      events: "/api/v1/events",
    });
    expect(r.headers.get("location")).toBe("/api/v1/apps/app");
    const entry = await eventually("the attempt finished", 10_000, async () => {
      const e = (await get(`${answer.ledger}&limit=1`)).body.entries[0];
      return e.id > newest && e.outcome === "Succeeded" ? (e.id as number) : undefined;
    });
    // The operate token comes from api.tokenFile `token`: its name is the file's.
    expect((await get(`/api/v1/ledger/${entry}`)).body.trigger).toBe("api:token");
    const s = await fetch(`${base}/api/v1/apps/app/suspend`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(s.status).toBe(200);
    expect((await get("/api/v1/apps/app")).body.syncStatus).toBe("Suspended");
    const refused = await fetch(`${base}/api/v1/apps/app/sync`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect(refused.status).toBe(409);
    await fetch(`${base}/api/v1/apps/app/resume`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TOKEN}` },
    });
    expect((await get("/api/v1/apps/app")).body.syncStatus).not.toBe("Suspended");
  }, 30_000);

  test("berth status --server asks the running agent", async () => {
    const dir = dirname(config);
    const table = await runBerth(["status", "--server", base, "--token-file", join(dir, "read-token")]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^APP\s+SYNC\s+HEALTH/);
    expect(table.stdout).toContain("app");
    const json = await runBerth(["status", "--server", base, "--json"], { BERTH_TOKEN: READ_TOKEN });
    expect(JSON.parse(json.stdout)[0].name).toBe("app");
    const denied = await runBerth(["status", "--server", base]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain("401");
  }, 30_000);
});
