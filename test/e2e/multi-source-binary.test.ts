/**
 * Several sources and generated apps, with the compiled binary (`berth run`) against the real control plane and
 * real Git http-backend: an app on one source depends on an app on another and syncs after it; a webhook for one
 * source syncs only that source's apps; an unreachable source holds back no other; a directory added in Git
 * becomes an app, and removing it holds the prune for approval (cascade and mass-prune guards) until approved;
 * a directory removed while the agent is stopped is still pruned after it starts again; a generated app's drift
 * is healed like a static app's.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, runBerth, startBerth } from "../support/binary.ts";
import { eventually, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { freePort } from "../support/ports.ts";

let cluster: TestCluster;
let git: GitFixture;
let base: string;
let run: ReturnType<typeof startBerth>;
let configDir: string;
let configPath: string;
const id = Math.random().toString(16).slice(2, 8);
const ns = `msrc-${id}`;
const SECRET = "multi-source-secret";
const TOKEN = "multi-source-token";
const cm = (name: string, namespace: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\ndata:\n  value: "${value}"\n`;
const nsYaml = (name: string) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`;

const api = async (path: string, init: RequestInit = {}) => {
  const r = await fetch(`${base}${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json", ...init.headers },
  });
  return { status: r.status, body: (await r.json()) as any };
};
const entries = async (app: string) =>
  (await api(`/api/v1/ledger?app=${app}&limit=50`)).body.entries as Array<{
    id: number;
    app: string;
    revision: string;
    source?: string;
    outcome: string;
    reason?: string;
    message?: string;
    startedAt: string;
    finishedAt?: string;
  }>;
let deliveries = 0;
/** A signed generic webhook for one source (each delivery's body differs, so none is a replay). */
const hook = async (source: string) => {
  const body = JSON.stringify({ ref: deliveries++ % 2 === 0 ? "main" : "refs/heads/main" });
  const ts = String(Math.floor(Date.now() / 1000));
  const sig = `sha256=${createHmac("sha256", SECRET).update(`${ts}.${body}`).digest("hex")}`;
  const r = await fetch(`${base}/hooks/generic/${source}`, {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "X-Berth-Timestamp": ts,
      "X-Berth-Signature": sig,
      "X-Berth-Delivery": `d-${deliveries}`,
    },
    body,
  });
  return { status: r.status, body: (await r.json()) as any };
};
const cmValue = (name: string, namespace: string): string | undefined => {
  try {
    return kubectl(cluster, "get", "configmap", name, "-n", namespace, "-o", "jsonpath={.data.value}");
  } catch {
    return undefined;
  }
};

beforeAll(async () => {
  berthBinary();
  cluster = await useCluster();
  git = await GitFixture.start();
  const infra = git.createRepo("infra");
  const apps = git.createRepo("apps");
  git.commit("infra", {
    "base/ns.yaml": nsYaml(ns),
    "base/settings.yaml": cm("base", ns, "infra-1"),
    "gen/one/ns.yaml": nsYaml(`${ns}-one`),
    "gen/one/cm.yaml": cm("gen", `${ns}-one`, "one"),
    "gen/skip/cm.yaml": cm("skip", ns, "excluded"),
  });
  git.commit("apps", { "web/web.yaml": cm("web", ns, "apps-1") });
  const port = await freePort();
  const closed = await freePort();
  base = `http://127.0.0.1:${port}`;
  // Long intervals: only a webhook (or the first poll) explains a sync. The broken source is asked every second.
  const config = writeConfig(`apiVersion: berth.dev/v1alpha1
kind: Agent
sources:
  infra: {url: "${infra}", interval: 1h, webhook: {secretFile: $DIR/hook-secret}}
  apps: {url: "${apps}", interval: 1h}
  broken: {url: "http://127.0.0.1:${closed}/gone.git", interval: 1s, timeout: 2s}
apps:
  - {name: base, source: infra, path: base, timeout: 30s}
  - {name: web, source: apps, path: web, dependsOn: [base], timeout: 30s}
  - {name: lost, source: broken, path: x, timeout: 30s}
generate:
  - source: infra
    dirs: "gen/*"
    exclude: ["gen/skip"]
    template: {name: "gen-{{dir}}", path: "{{path}}", timeout: 30s, dependsOn: [base]}
ledger: {path: $DIR/ledger.db}
api:
  listen: 127.0.0.1:${port}
  tokenFile: $DIR/token
  webhook: {secretFile: $DIR/hook-secret}
`);
  const dir = dirname(config);
  configDir = dir;
  configPath = config;
  writeFileSync(join(dir, "token"), `${TOKEN}\n`, { mode: 0o600 });
  writeFileSync(join(dir, "hook-secret"), `${SECRET}\n`, { mode: 0o600 });
  run = startBerth(["run", "--config", config, "--kubeconfig", cluster.kubeconfigPath]);
  await eventually("base, web and gen-one synced", 90_000, async () => {
    const r = await fetch(`${base}/api/v1/apps`, { headers: { Authorization: `Bearer ${TOKEN}` } }).catch(
      () => undefined,
    );
    if (r?.status !== 200) return undefined;
    const list = ((await r.json()) as any).apps as Array<{ name: string; syncStatus: string }>;
    const synced = (n: string) => list.find((a) => a.name === n)?.syncStatus === "Synced";
    return synced("base") && synced("web") && synced("gen-one") ? true : undefined;
  });
}, 600_000);

afterAll(async () => {
  run?.child.kill("SIGTERM");
  await run?.exited;
  await git?.close();
  for (const n of [ns, `${ns}-one`, `${ns}-new`])
    try {
      kubectl(cluster, "delete", "namespace", n, "--wait=false");
    } catch {}
});

describe("several sources", () => {
  test("an app depending on an app of another source syncs after it; entries and the API name the source", async () => {
    const [b] = (await entries("base")).filter((e) => e.outcome === "Succeeded").slice(-1);
    const [w] = (await entries("web")).filter((e) => e.outcome === "Succeeded").slice(-1);
    expect(b?.source).toBe("infra");
    expect(w?.source).toBe("apps");
    expect(b?.revision).toContain(git.head("infra"));
    expect(w?.revision).toContain(git.head("apps"));
    expect(Date.parse(w?.startedAt ?? "")).toBeGreaterThanOrEqual(Date.parse(b?.finishedAt ?? ""));
    expect(cmValue("base", ns)).toBe("infra-1");
    expect(cmValue("web", ns)).toBe("apps-1");
    const web = (await api("/api/v1/apps/web")).body;
    expect(web.source).toBe("apps");
    expect(web.revision.seen).toContain(git.head("apps"));
    // `berth status --server` shows each app's source.
    const status = await runBerth(["status", "--server", base, "--token-file", join(configDir, "token")]);
    expect(status.code).toBe(0);
    expect(status.stdout.split("\n")[0]).toMatch(/^APP\s+SOURCE\s+SYNC/);
    expect(status.stdout).toMatch(/\nweb\s+apps\s+Synced/);
    expect(status.stdout).toMatch(/\nlost\s+broken\s+/);
  });

  test("an unreachable source fails only its own app; the others stay synced and keep syncing", async () => {
    // The broken source's first poll retries before it gives up: wait for its verdict rather than race it.
    const lost = await eventually("the broken source reported unreachable", 30_000, async () => {
      const body = (await api("/api/v1/apps/lost")).body;
      return body.git?.reachable === false ? body : undefined;
    });
    expect(lost.source).toBe("broken");
    expect(lost.git.reachable).toBe(false);
    expect(lost.git.error).toBeTruthy();
    const base = (await api("/api/v1/apps/base")).body;
    expect(base.git.reachable).toBe(true);
    expect(base.syncStatus).toBe("Synced");
  });

  test("a webhook for one source syncs only its apps; the other source's apps get no new entry", async () => {
    git.commit("apps", { "web/web.yaml": cm("web", ns, "apps-2") });
    git.commit("infra", { "base/settings.yaml": cm("base", ns, "infra-2") });
    const baseBefore = (await entries("base")).map((e) => e.id);
    const r = await hook("apps");
    expect(r.status).toBe(202);
    expect(r.body.triggered).toEqual(["web"]);
    await eventually("web at apps-2", 30_000, async () =>
      cmValue("web", ns) === "apps-2" ? true : undefined,
    );
    const [w] = await entries("web");
    expect(w?.revision).toContain(git.head("apps"));
    expect(w?.source).toBe("apps");
    // The infra source was not asked: base has no new entry and its object is still at infra-1.
    await Bun.sleep(1000);
    expect((await entries("base")).map((e) => e.id)).toEqual(baseBefore);
    expect(cmValue("base", ns)).toBe("infra-1");
    // An unknown source is a 404 naming the sources.
    const unknown = await fetch(`${base}/hooks/generic/nope`, { method: "POST", body: "{}" });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as any).error.message).toContain("source nope: no such source");
  }, 60_000);
});

describe("one app per directory", () => {
  test("a generated app's drift is healed by the watcher, not the next poll", async () => {
    // The sources poll hourly: only the drift watcher can put the value back within seconds.
    kubectl(
      cluster,
      "patch",
      "configmap",
      "gen",
      "-n",
      `${ns}-one`,
      "--type=merge",
      "-p",
      '{"data":{"value":"tampered"}}',
    );
    await eventually("gen-one's ConfigMap healed", 20_000, async () =>
      cmValue("gen", `${ns}-one`) === "one" ? true : undefined,
    );
  }, 60_000);

  test("a new directory becomes an app; its removal holds the prune until approved, then prunes", async () => {
    expect(cmValue("gen", `${ns}-one`)).toBe("one");
    // gen/skip is excluded: no app, no object.
    expect((await api("/api/v1/apps/gen-skip")).status).toBe(404);
    git.commit("infra", {
      "gen/new/ns.yaml": nsYaml(`${ns}-new`),
      "gen/new/cm.yaml": cm("gen", `${ns}-new`, "new"),
    });
    expect((await hook("infra")).status).toBe(202);
    await eventually("app gen-new synced", 60_000, async () => {
      const r = await api("/api/v1/apps/gen-new");
      return r.status === 200 && r.body.syncStatus === "Synced" ? r.body : undefined;
    });
    expect(cmValue("gen", `${ns}-new`)).toBe("new");
    const made = (await api("/api/v1/apps/gen-new")).body;
    expect(made.generated).toEqual({ index: 0, dir: "gen/new" });
    expect(made.source).toBe("infra");

    // Removed from Git: the app renders nothing, and pruning its Namespace and all it owns is held.
    git.commit("infra", { "gen/new/ns.yaml": null, "gen/new/cm.yaml": null });
    expect((await hook("infra")).status).toBe(202);
    const held = await eventually("the prune held", 60_000, async () => {
      const [e] = await entries("gen-new");
      return e?.reason === "PlanRejected" && e.revision.includes(git.head("infra")) ? e : undefined;
    });
    expect(held.message).toContain("held by the prune guard");
    expect(held.message).toContain(`Namespace/${ns}-new`);
    expect(held.message).toMatch(/deletes 2 of the app's 2 objects/);
    expect(cmValue("gen", `${ns}-new`)).toBe("new");
    expect((await api("/api/v1/apps/gen-new")).body.generated).toEqual({
      index: 0,
      dir: "gen/new",
      gone: true,
    });

    // Consent: the Namespace is marked for pruning and the revision approved (the existing approve path).
    kubectl(cluster, "annotate", "namespace", `${ns}-new`, "berth.dev/prune=confirm");
    const approved = await api("/api/v1/apps/gen-new/approve", { method: "POST", body: "{}" });
    expect(approved.status).toBe(200);
    await eventually("gen-new pruned", 60_000, async () => {
      const [e] = await entries("gen-new");
      return e?.outcome === "Succeeded" ? e : undefined;
    });
    expect(cmValue("gen", `${ns}-new`)).toBeUndefined();
    // Owning nothing now, the app is gone from the agent.
    await eventually("gen-new retired", 10_000, async () =>
      (await api("/api/v1/apps/gen-new")).status === 404 ? true : undefined,
    );
    // The other generated app was not touched.
    expect(cmValue("gen", `${ns}-one`)).toBe("one");
  }, 180_000);

  test("a directory removed while the agent is stopped is still pruned after it starts again", async () => {
    kubectl(cluster, "create", "namespace", `${ns}-late`);
    git.commit("infra", { "gen/late/cm.yaml": cm("late", `${ns}-late`, "late") });
    expect((await hook("infra")).status).toBe(202);
    await eventually("app gen-late synced", 60_000, async () => {
      const r = await api("/api/v1/apps/gen-late");
      return r.status === 200 && r.body.syncStatus === "Synced" ? true : undefined;
    });
    expect(cmValue("late", `${ns}-late`)).toBe("late");

    // Stopped; the directory leaves Git; started again: only the ledger still knows the app.
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
    git.commit("infra", { "gen/late/cm.yaml": null });
    run = startBerth(["run", "--config", configPath, "--kubeconfig", cluster.kubeconfigPath]);
    const held = await eventually("the restarted agent holds gen-late's prune", 90_000, async () => {
      const [e] = await entries("gen-late").catch(() => []);
      return e?.reason === "PlanRejected" && e.revision.includes(git.head("infra")) ? e : undefined;
    });
    expect(held.message).toContain("held by the prune guard");
    expect(held.message).toContain("deletes 1 of the app's 1 objects");
    expect(cmValue("late", `${ns}-late`)).toBe("late");
    expect((await api("/api/v1/apps/gen-late")).body.generated).toEqual({
      index: 0,
      dir: "gen/late",
      gone: true,
    });

    expect((await api("/api/v1/apps/gen-late/approve", { method: "POST", body: "{}" })).status).toBe(200);
    await eventually("gen-late pruned and retired", 60_000, async () =>
      cmValue("late", `${ns}-late`) === undefined && (await api("/api/v1/apps/gen-late")).status === 404
        ? true
        : undefined,
    );
    // The apps whose directories are still there came back as they were.
    expect(cmValue("gen", `${ns}-one`)).toBe("one");
    expect((await api("/api/v1/apps/gen-one")).body.syncStatus).toBe("Synced");
  }, 240_000);
});
