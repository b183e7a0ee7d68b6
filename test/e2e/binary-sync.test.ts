/**
 * The compiled binary end to end: sync, plan, status, ledger, drift, bad
 * input, the run loop picking up a new commit, graceful SIGTERM, and a kill -9
 * that the next start records as Interrupted; then CRDs, Services, exact actions, no-op writes, other
 * managers' fields, health failures and bad inputs in an app of their own.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeConfig } from "../support/berth.ts";
import { runBerth, startBerth } from "../support/binary.ts";
import { auditEvents, eventually, quietSince, writesIn } from "../support/cluster.ts";
import { agentConfig, GIT_TOKEN_ENV, patchConfigMap, useClusterTest } from "../support/cluster-test.ts";
import { configMapYaml, deploymentYaml, namespaceYaml, secretYaml } from "../support/manifests.ts";

const t = useClusterTest({ prefix: "e2e", git: { token: "e2e-token" }, binary: true });
const ns = t.ns;
let config: string;
const cm = (greeting: string) => configMapYaml("settings", greeting);
const deployment = deploymentYaml("api", 2);
const tokenAuth = `auth: {tokenEnv: ${GIT_TOKEN_ENV}}`;

beforeAll(() => {
  t.commit({
    "base/ns.yaml": namespaceYaml(ns),
    "app/settings.yaml": cm("hello"),
    "app/api.yaml": deployment,
    "app/secret.yaml": secretYaml("creds", { password: "e2e-plaintext-never-stored" }),
  });
  config = t.writeConfig(
    [
      { name: "base", path: "base" },
      { name: "app", path: "app", namespace: ns, dependsOn: ["base"], timeout: "60s" },
    ],
    { source: `interval: 1s, ${tokenAuth}` },
  );
});

const env = () => t.env();

describe("the compiled binary", () => {
  test("berth sync applies both apps in dependency order and exits 0", async () => {
    const r = await runBerth(["sync", "--config", config], env());
    expect(r.stderr).not.toContain("e2e-token");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/✓ base main@sha1:[0-9a-f]{40}: Succeeded — 1 created/);
    expect(r.stdout).toMatch(/✓ app main@sha1:[0-9a-f]{40}: Succeeded — 3 created/);
    expect(r.stdout.indexOf("✓ base")).toBeLessThan(r.stdout.indexOf("✓ app"));
    expect(t.kubectl("get", "deployment", "api", "-n", ns, "-o", "jsonpath={.status.readyReplicas}")).toBe(
      "2",
    );
  }, 120_000);

  test("berth plan --json after an out-of-band edit shows exactly that change; sync puts it back", async () => {
    patchConfigMap(t.cluster, ns, "settings", { greeting: "tampered" });
    const since = await quietSince();
    const plan = await runBerth(["plan", "--json", "--config", config, "--app", "app"], env());
    expect(plan.code).toBe(0);
    const [p] = JSON.parse(plan.stdout);
    const changed = p.changes.filter((c: { action: string }) => c.action !== "unchanged");
    expect(changed.map((c: { subject: string; action: string }) => `${c.action} ${c.subject}`)).toEqual([
      `configured ConfigMap/${ns}/settings`,
    ]);
    expect(changed[0].diff).toContainEqual({ path: "/data/greeting", before: "tampered", after: "hello" });
    expect(plan.stdout).not.toContain("e2e-plaintext-never-stored");
    expect(writesIn(auditEvents(t.cluster, since, "berth", ns))).toEqual([]);

    const sync = await runBerth(["sync", "--config", config, "--app", "app"], env());
    expect(sync.code).toBe(0);
    expect(sync.stdout).toContain("1 configured");
    expect(t.kubectl("get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.greeting}")).toBe(
      "hello",
    );
  }, 120_000);

  test("status and ledger list/show read the ledger, as tables and as JSON", async () => {
    const status = JSON.parse((await runBerth(["status", "--json", "--config", config])).stdout);
    expect(status.map((s: { app: string; last: { outcome: string } }) => [s.app, s.last.outcome])).toEqual([
      ["base", "Succeeded"],
      ["app", "Succeeded"],
    ]);
    const list = JSON.parse(
      (await runBerth(["ledger", "list", "--json", "--app", "app", "--config", config])).stdout,
    );
    expect(list.length).toBe(2);
    const shown = await runBerth(["ledger", "show", String(list[0].id), "--config", config]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`configured  ConfigMap/${ns}/settings`);
    const table = await runBerth(["ledger", "list", "--config", config]);
    expect(table.stdout.split("\n")[0]).toMatch(/^ID\s+APP\s+REVISION\s+OUTCOME/);
    expect((await runBerth(["ledger", "show", "99999", "--config", config])).code).toBe(1);
  });

  test("a bad commit fails the sync with exit code 1 and changes nothing", async () => {
    t.commit({ "app/broken.yaml": "kind: [\n" });
    const r = await runBerth(["sync", "--config", config, "--app", "app"], env());
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("BuildFailed");
    expect(r.stdout).toContain("app/broken.yaml");
    t.commit({ "app/broken.yaml": null });
  }, 60_000);

  test("a config error is exit code 2 naming the file and field", async () => {
    const bad = writeConfig(
      "apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: http://x/y.git, interval: soon}\napps: []\n",
    );
    const r = await runBerth(["sync", "--config", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("berth.yaml");
    expect(r.stderr).toContain("source.interval");
  });

  test("berth run picks up a new commit within its interval and stops cleanly on SIGTERM", async () => {
    const run = startBerth(["run", "--config", config, "--kubeconfig", t.cluster.kubeconfigPath], env());
    try {
      await eventually("berth run to start", 20_000, async () =>
        run.output().includes("berth is running") ? true : undefined,
      );
      t.commit({ "app/settings.yaml": cm("from-a-new-commit") });
      await eventually("the new commit applied", 30_000, async () =>
        t.kubectl("get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.greeting}") ===
        "from-a-new-commit"
          ? true
          : undefined,
      );
      run.child.kill("SIGTERM");
      expect(await run.exited).toBe(0);
      expect(run.output()).toContain("received SIGTERM");
      expect(run.output()).toContain('"msg":"stopped"');
    } finally {
      run.child.kill("SIGKILL");
    }
  }, 90_000);

  test("kill -9 during a sync leaves an entry that the next start marks Interrupted", async () => {
    // A Deployment that cannot schedule keeps the sync waiting for health.
    t.commit({
      "app/stuck.yaml": deployment
        .replace("name: api", "name: stuck")
        .replaceAll("app: api", "app: stuck")
        .replace(
          "    spec:\n      containers",
          '    spec:\n      nodeSelector: {nowhere: "true"}\n      containers',
        ),
    });
    const run = startBerth(["run", "--config", config, "--kubeconfig", t.cluster.kubeconfigPath], env());
    await eventually("the stuck Deployment applied", 30_000, async () => {
      try {
        t.kubectl("get", "deployment", "stuck", "-n", ns);
        return true;
      } catch {
        return undefined;
      }
    });
    run.child.kill("SIGKILL");
    await run.exited;
    const running = JSON.parse(
      (await runBerth(["ledger", "list", "--json", "--app", "app", "--limit", "1", "--config", config]))
        .stdout,
    );
    expect(running[0].outcome).toBe("Running");
    t.commit({ "app/stuck.yaml": null });
    const r = await runBerth(["sync", "--config", config, "--app", "app"], env());
    expect(r.code).toBe(0);
    const entry = JSON.parse(
      (await runBerth(["ledger", "show", String(running[0].id), "--json", "--config", config])).stdout,
    );
    expect(entry.outcome).toBe("Failed");
    expect(entry.reason).toBe("Interrupted");
    expect(r.stdout).toContain("1 deleted");
  }, 120_000);
});

/**
 * What the sync-engine issue listed for the binary, in an app of its own: a CRD with its custom resource, a
 * Service, the edit/add/delete triple with exact actions, no writes on a no-op sync, another manager's field
 * left alone, HealthCheckFailed naming the object, and bad inputs that change nothing.
 */
describe("the compiled binary: what sync writes, and what it refuses", () => {
  const ns2 = `e2e-kinds-${Math.random().toString(16).slice(2, 8)}`;
  const group = `${ns2}.example.com`;
  let cfg = "";
  const crd = `apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.${group}\nspec:\n  group: ${group}\n  scope: Namespaced\n  names: {plural: widgets, singular: widget, kind: Widget}\n  versions:\n    - name: v1\n      served: true\n      storage: true\n      schema:\n        openAPIV3Schema:\n          type: object\n          properties:\n            spec: {type: object, properties: {size: {type: integer}}}\n`;
  const map = (name: string, value: string) =>
    `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  value: "${value}"\n`;
  const get = (kind: string, name: string, path: string) =>
    t.kubectl("get", kind, name, "-n", ns2, "-o", `jsonpath=${path}`);
  const sync = (app: string) => runBerth(["sync", "--config", cfg, "--app", app], env());
  /** The actions of the app's newest ledger entry, "action Kind/ns/name", sorted. */
  const lastActions = async (app: string): Promise<string[]> => {
    const list = JSON.parse(
      (await runBerth(["ledger", "list", "--json", "--app", app, "--config", cfg])).stdout,
    );
    const shown = JSON.parse(
      (await runBerth(["ledger", "show", String(list[0].id), "--json", "--config", cfg])).stdout,
    );
    return shown.objects
      .map(
        (o: { action: string; ref: { kind: string; namespace: string; name: string } }) =>
          `${o.action} ${o.ref.kind}/${o.ref.namespace}/${o.ref.name}`,
      )
      .sort();
  };

  beforeAll(() => {
    const url = t.git.createRepo("kinds");
    t.git.commit("kinds", {
      "kinds/ns.yaml": namespaceYaml(ns2),
      "kinds/crd.yaml": crd,
      "kinds/widget.yaml": `apiVersion: ${group}/v1\nkind: Widget\nmetadata:\n  name: w\n  namespace: ${ns2}\nspec:\n  size: 3\n`,
      "kinds/service.yaml": `apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: ${ns2}\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n`,
      "kinds/edit.yaml": map("edit", "one").replace("metadata:\n", `metadata:\n  namespace: ${ns2}\n`),
      "kinds/gone.yaml": map("gone", "one").replace("metadata:\n", `metadata:\n  namespace: ${ns2}\n`),
    });
    cfg = writeConfig(
      agentConfig(
        url,
        [
          { name: "kinds", path: "kinds", timeout: "60s" },
          { name: "stuck", path: "stuck", namespace: ns2, timeout: "4s" },
        ],
        { source: tokenAuth },
      ),
    );
  });

  afterAll(() => {
    for (const args of [
      ["delete", "namespace", ns2, "--wait=false"],
      ["delete", "crd", `widgets.${group}`, "--wait=false"],
    ])
      try {
        t.kubectl(...args);
      } catch {}
  });

  test("a CRD and its custom resource, and a Service, in one sync", async () => {
    const r = await sync("kinds");
    expect(r.code).toBe(0);
    expect(get(`widgets.${group}`, "w", "{.spec.size}")).toBe("3");
    expect(get("service", "web", "{.spec.ports[0].targetPort}")).toBe("8080");
    expect(await lastActions("kinds")).toEqual([
      `created ConfigMap/${ns2}/edit`,
      `created ConfigMap/${ns2}/gone`,
      `created CustomResourceDefinition//widgets.${group}`,
      "created Namespace//" + ns2,
      `created Service/${ns2}/web`,
      `created Widget/${ns2}/w`,
    ]);
  }, 120_000);

  test("a sync with nothing to change writes nothing (audit log)", async () => {
    const since = await quietSince();
    const r = await sync("kinds");
    expect(r.code).toBe(0);
    expect(writesIn(auditEvents(t.cluster, since, "berth", ns2))).toEqual([]);
  }, 60_000);

  test("edit, add and delete in one commit are exactly configured, created, deleted; another manager's field stays", async () => {
    const other = `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: edit\n  namespace: ${ns2}\n  labels: {team: payments}\n`;
    const file = join(dirname(cfg), "other-team.yaml");
    writeFileSync(file, other);
    t.kubectl("apply", "--server-side", "--field-manager=other-team", "-f", file);
    t.git.commit("kinds", {
      "kinds/edit.yaml": map("edit", "two").replace("metadata:\n", `metadata:\n  namespace: ${ns2}\n`),
      "kinds/added.yaml": map("added", "one").replace("metadata:\n", `metadata:\n  namespace: ${ns2}\n`),
      "kinds/gone.yaml": null,
    });
    const r = await sync("kinds");
    expect(r.code).toBe(0);
    const changed = (await lastActions("kinds")).filter((a) => !a.startsWith("unchanged "));
    expect(changed).toEqual([
      `configured ConfigMap/${ns2}/edit`,
      `created ConfigMap/${ns2}/added`,
      `deleted ConfigMap/${ns2}/gone`,
    ]);
    expect(get("configmap", "edit", "{.data.value}")).toBe("two");
    expect(get("configmap", "edit", "{.metadata.labels.team}")).toBe("payments");
    expect(t.kubectl("get", "configmap", "gone", "-n", ns2, "--ignore-not-found", "-o", "name")).toBe("");
  }, 120_000);

  test("a Deployment that never becomes ready fails with HealthCheckFailed naming it (exit 1)", async () => {
    t.git.commit("kinds", {
      "stuck/deploy.yaml": `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stuck\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: stuck}}\n  template:\n    metadata: {labels: {app: stuck}}\n    spec:\n      nodeSelector: {no-such-node: "true"}\n      containers: [{name: c, image: "nginx:1.27"}]\n`,
    });
    const r = await sync("stuck");
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("HealthCheckFailed");
    expect(r.stdout).toContain(`Deployment/${ns2}/stuck`);
  }, 60_000);

  const badInputs: Array<[string, string, string]> = [
    [
      "an unknown kind",
      `apiVersion: ${group}/v1\nkind: Gadget\nmetadata:\n  name: g\n  namespace: ${ns2}\n`,
      "Gadget",
    ],
    [
      "a namespace that does not exist",
      map("lost", "x").replace("metadata:\n", "metadata:\n  namespace: no-such-ns-e2e\n"),
      "no-such-ns-e2e",
    ],
    [
      "an invalid field",
      `apiVersion: ${group}/v1\nkind: Widget\nmetadata:\n  name: bad\n  namespace: ${ns2}\nspec:\n  size: lots\n`,
      "spec.size",
    ],
  ];
  for (const [what, manifest, named] of badInputs) {
    test(`${what} fails the sync (exit 1) naming it, and nothing of the commit is applied`, async () => {
      t.git.commit("kinds", {
        "kinds/edit.yaml": map("edit", "three").replace("metadata:\n", `metadata:\n  namespace: ${ns2}\n`),
        "kinds/bad.yaml": manifest,
      });
      try {
        const since = await quietSince();
        const r = await sync("kinds");
        expect(r.code).toBe(1);
        expect(r.stdout + r.stderr).toContain(named);
        expect(get("configmap", "edit", "{.data.value}")).toBe("two");
        expect(writesIn(auditEvents(t.cluster, since, "berth", ns2))).toEqual([]);
      } finally {
        t.git.commit("kinds", {
          "kinds/edit.yaml": map("edit", "two").replace("metadata:\n", `metadata:\n  namespace: ${ns2}\n`),
          "kinds/bad.yaml": null,
        });
      }
    }, 60_000);
  }
});
