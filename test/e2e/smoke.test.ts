/**
 * One smoke suite, run under each runtime berth ships on (the compiled binary, Deno, Node 20), against the
 * real control plane and Git server, with the same assertions: sync an app, prune, read status over HTTP
 * from `berth run`, replay an earlier entry.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeConfig } from "../support/berth.ts";
import { eventually, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import {
  apiUrlIn,
  berthCommand,
  RUNTIME_NAME,
  RUNTIMES,
  type Runtime,
  runUnder,
  startUnder,
} from "../support/runtimes.ts";

let cluster: TestCluster;
let git: GitFixture;
const namespaces: string[] = [];

beforeAll(async () => {
  // Build all three before the Git server starts: the builds are synchronous.
  for (const r of RUNTIMES) berthCommand(r);
  cluster = await useCluster();
  git = await GitFixture.start();
}, 600_000);

afterAll(async () => {
  await git?.close();
  for (const ns of namespaces)
    try {
      kubectl(cluster, "delete", "namespace", ns, "--wait=false");
    } catch {}
});

const cm = (name: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  value: "${value}"\n`;
const deployment = `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: api}}\n  template:\n    metadata: {labels: {app: api}}\n    spec:\n      containers: [{name: api, image: "nginx:1.27"}]\n`;

describe.each(RUNTIMES.map((r) => [r]))("smoke under %s", (runtime: Runtime) => {
  const ns = `smoke-${runtime}-${Math.random().toString(16).slice(2, 8)}`;
  const TOKEN = `smoke-token-${runtime}-0123456789`;
  let config = "";
  let env: Record<string, string> = {};
  const get = (kind: string, name: string, path: string) =>
    kubectl(cluster, "get", kind, name, "-n", ns, "-o", `jsonpath=${path}`);
  const exists = (kind: string, name: string) =>
    kubectl(cluster, "get", kind, name, "-n", ns, "--ignore-not-found", "-o", "name").trim() !== "";

  beforeAll(() => {
    namespaces.push(ns);
    const url = git.createRepo(ns);
    git.commit(ns, {
      "base/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
      "app/settings.yaml": cm("settings", "one"),
      "app/extra.yaml": cm("extra", "goes-away"),
      "app/api.yaml": deployment,
    });
    config = writeConfig(
      `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", interval: 1s}\napps:\n  - {name: base, path: base}\n  - {name: app, path: app, namespace: ${ns}, dependsOn: [base], timeout: 60s}\nledger: {path: $DIR/ledger.db}\napi: {listen: "127.0.0.1:0", tokenFile: $DIR/api-token}\n`,
    );
    writeFileSync(join(dirname(config), "api-token"), TOKEN);
    env = { KUBECONFIG: cluster.kubeconfigPath };
  });

  test("berth version names the runtime", async () => {
    const r = await runUnder(runtime, ["version", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).runtime.split(" ")[0]).toBe(RUNTIME_NAME[runtime]);
  });

  test("berth sync applies both apps and waits until the Deployment is healthy", async () => {
    const r = await runUnder(runtime, ["sync", "--config", config], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/✓ base main@sha1:[0-9a-f]{40}: Succeeded — 1 created/);
    expect(r.stdout).toMatch(/✓ app main@sha1:[0-9a-f]{40}: Succeeded — 3 created/);
    expect(get("deployment", "api", "{.status.readyReplicas}")).toBe("1");
    expect(get("configmap", "extra", "{.metadata.labels.berth\\.dev/app}")).toBe("app");
  }, 120_000);

  test("a commit that drops a file prunes its object", async () => {
    git.commit(ns, { "app/extra.yaml": null, "app/settings.yaml": cm("settings", "two") });
    const r = await runUnder(runtime, ["sync", "--config", config, "--app", "app"], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("1 configured");
    expect(r.stdout).toContain("1 deleted");
    expect(exists("configmap", "extra")).toBe(false);
    expect(get("configmap", "settings", "{.data.value}")).toBe("two");
  }, 120_000);

  test("berth run serves status over HTTP with a token, and stops on SIGTERM", async () => {
    const run = startUnder(runtime, ["run", "--config", config], env);
    try {
      const base = await eventually("berth run to listen", 30_000, async () => apiUrlIn(run.output()));
      await eventually("/readyz to answer 200", 30_000, async () =>
        (await fetch(`${base}/readyz`)).status === 200 ? true : undefined,
      );
      expect((await fetch(`${base}/api/v1/apps`)).status).toBe(401);
      expect(
        (await fetch(`${base}/api/v1/apps`, { headers: { authorization: "Bearer wrong-token" } })).status,
      ).toBe(401);
      const res = await fetch(`${base}/api/v1/apps`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as {
        apps: Array<{
          name: string;
          syncStatus: string;
          healthStatus: string;
          revision: { applied: string };
        }>;
      };
      const head = `main@sha1:${git.head(ns)}`;
      expect(body.apps.map((a) => [a.name, a.syncStatus, a.healthStatus, a.revision.applied])).toEqual([
        ["base", "Synced", "Current", head],
        ["app", "Synced", "Current", head],
      ]);
    } finally {
      run.child.kill("SIGTERM");
    }
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain("received SIGTERM");
    expect(run.output()).not.toContain(TOKEN);
  }, 90_000);

  test("berth replay restores the first entry without Git, and records the replay", async () => {
    const list = await runUnder(runtime, ["ledger", "list", "--json", "--app", "app", "--config", config]);
    expect(list.code).toBe(0);
    const entries = JSON.parse(list.stdout) as Array<{ id: number; outcome: string }>;
    const first = entries.at(-1);
    expect(first?.outcome).toBe("Succeeded");
    const r = await runUnder(
      runtime,
      ["replay", "--app", "app", "--to", String(first?.id), "--config", config],
      env,
    );
    expect(r.code).toBe(0);
    expect(exists("configmap", "extra")).toBe(true);
    expect(get("configmap", "settings", "{.data.value}")).toBe("one");
    const status = await runUnder(runtime, ["status", "--json", "--config", config]);
    const app = (JSON.parse(status.stdout) as Array<{ app: string; last: { message: string } }>).find(
      (s) => s.app === "app",
    );
    expect(app?.last.message).toContain(`replay of entry ${first?.id}`);
  }, 120_000);

  test("a replay of an entry that does not exist is a usage error (exit 2) and changes nothing", async () => {
    const r = await runUnder(runtime, ["replay", "--app", "app", "--to", "999999", "--config", config], env);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("ledger entry 999999 does not exist");
    expect(get("configmap", "settings", "{.data.value}")).toBe("one");
  }, 60_000);
});
