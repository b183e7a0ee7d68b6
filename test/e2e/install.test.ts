/**
 * `berth install manifests`: the generated in-cluster manifests apply cleanly to the real control plane, and
 * a berth using the generated ServiceAccount's token syncs the demo app and is refused what it should not
 * reach — cluster-wide, and in --namespaced mode with Roles only.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { parseAllDocuments, parse as parseYaml, stringify } from "yaml";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, runBerth } from "../support/binary.ts";
import { kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { deployerRbacYaml } from "../support/manifests.ts";

const DEMO = join(import.meta.dir, "..", "fixtures", "demo-repo");
const rand = () => Math.random().toString(16).slice(2, 8);
const demoNs = `demo-${rand()}`;
const installNs = `berth-${rand()}`;
const namespacedInstall = `berthns-${rand()}`;
const tenantInstall = `bertht-${rand()}`;
const tenantNs = `tenant-${rand()}`;

let cluster: TestCluster;
let git: GitFixture;
let url = "";
const admin = () => ({ KUBECONFIG: cluster.kubeconfigPath });

type Obj = { kind: string; metadata: { name: string; namespace?: string }; rules?: Rule[] };
type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

/** The demo repo with its `demo` namespace renamed, so runs never collide on the shared cluster. */
function demoTree(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const e of readdirSync(DEMO, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const full = join(e.parentPath, e.name);
    files[relative(DEMO, full)] = readFileSync(full, "utf8")
      .replace(/^(\s*)name: demo$/m, `$1name: ${demoNs}`)
      .replaceAll("namespace: demo", `namespace: ${demoNs}`);
  }
  return files;
}

function config(apps: string): string {
  return writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", interval: 5s}\napps:\n${apps}ledger: {path: $DIR/ledger.db}\n`,
  );
}
const ALL_APPS = `  - {name: base, path: apps/base}\n  - {name: web, path: apps/web, namespace: ${demoNs}, dependsOn: [base], timeout: 60s}\n  - {name: cache, path: apps/cache, namespace: ${demoNs}, dependsOn: [base], timeout: 60s}\n`;

/** Applies generated manifests with the admin's kubeconfig. */
function applyManifests(yaml: string): string {
  const file = join(dirname(config("")), "install.yaml");
  writeFileSync(file, yaml);
  return kubectl(cluster, "apply", "--server-side", "--field-manager=installer", "-f", file);
}

/** A kubeconfig for the API server with only the ServiceAccount's (freshly minted) token. */
function serviceAccountKubeconfig(namespace: string): string {
  const token = kubectl(cluster, "create", "token", "berth", "-n", namespace, "--duration=1h").trim();
  const adminConfig = parseYaml(readFileSync(cluster.kubeconfigPath, "utf8"));
  const file = join(dirname(config("")), "sa.kubeconfig");
  writeFileSync(
    file,
    stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: adminConfig.clusters,
      users: [{ name: "berth-sa", user: { token } }],
      contexts: [{ name: "berth", context: { cluster: adminConfig.clusters[0].name, user: "berth-sa" } }],
      "current-context": "berth",
    }),
  );
  return file;
}

/** kubectl as the ServiceAccount: `auth can-i` answers yes or no. */
function canI(kubeconfig: string, ...args: string[]): boolean {
  try {
    execFileSync(cluster.kubectl, ["--kubeconfig", kubeconfig, "auth", "can-i", ...args], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

beforeAll(async () => {
  berthBinary();
  cluster = await useCluster();
  git = await GitFixture.start();
  url = git.createRepo("demo");
  git.commit("demo", demoTree());
}, 600_000);

afterAll(async () => {
  await git?.close();
  for (const ns of [demoNs, installNs, namespacedInstall, tenantInstall, tenantNs])
    try {
      kubectl(cluster, "delete", "namespace", ns, "--wait=false", "--ignore-not-found");
    } catch {}
  try {
    kubectl(cluster, "delete", "clusterrole,clusterrolebinding", `berth-${installNs}`, "--ignore-not-found");
    kubectl(
      cluster,
      "delete",
      "clusterrole,clusterrolebinding",
      `berth-${tenantInstall}`,
      "--ignore-not-found",
    );
  } catch {}
});

describe("berth install manifests", () => {
  let manifests: Obj[] = [];
  let yaml = "";

  test("generates a Deployment with a ledger PVC, a ServiceAccount and RBAC for exactly the rendered kinds", async () => {
    const r = await runBerth(
      [
        "install",
        "manifests",
        "--namespace",
        installNs,
        "--image",
        "berth:test",
        "--config",
        config(ALL_APPS),
      ],
      admin(),
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    yaml = r.stdout;
    manifests = parseAllDocuments(yaml).map((d) => d.toJS() as Obj);
    expect(manifests.map((m) => `${m.kind}/${m.metadata.name}`)).toEqual([
      `Namespace/${installNs}`,
      "ServiceAccount/berth",
      `ClusterRole/berth-${installNs}`,
      `ClusterRoleBinding/berth-${installNs}`,
      "ConfigMap/berth-config",
      "PersistentVolumeClaim/berth-ledger",
      "Deployment/berth",
      "Service/berth",
    ]);
    const role = manifests.find((m) => m.kind === "ClusterRole");
    const manage = ["get", "list", "watch", "create", "patch", "delete"];
    const kindRules = (role?.rules ?? []).filter((r) => r.verbs.length === 6);
    expect(kindRules.map((r) => `${r.apiGroups[0]}/${r.resources[0]}`)).toEqual([
      "/configmaps",
      "/namespaces",
      "/serviceaccounts",
      "/services",
      "apps/deployments",
      "apps/statefulsets",
      "rbac.authorization.k8s.io/rolebindings",
      "rbac.authorization.k8s.io/roles",
    ]);
    for (const r of kindRules) expect(r.verbs).toEqual(manage);
    // The demo Role grants configmaps get/list/watch: berth must hold what it grants.
    expect(role?.rules).toContainEqual({
      apiGroups: [""],
      resources: ["configmaps"],
      verbs: ["get", "list", "watch"],
    });
    // The demo RoleBinding references config-reader: bind on that role only.
    expect(role?.rules).toContainEqual({
      apiGroups: ["rbac.authorization.k8s.io"],
      resources: ["roles"],
      verbs: ["bind"],
      resourceNames: ["config-reader"],
    });
    const cm = manifests.find((m) => m.kind === "ConfigMap") as unknown as { data: { "berth.yaml": string } };
    expect(parseYaml(cm.data["berth.yaml"]).ledger.path).toBe("/var/lib/berth/ledger.db");
  }, 60_000);

  test("they apply cleanly to the real control plane", () => {
    const out = applyManifests(yaml);
    expect(out).toContain(`clusterrole.rbac.authorization.k8s.io/berth-${installNs} serverside-applied`);
    expect(out).toContain("deployment.apps/berth serverside-applied");
    expect(kubectl(cluster, "get", "pvc", "berth-ledger", "-n", installNs, "-o", "name").trim()).toBe(
      "persistentvolumeclaim/berth-ledger",
    );
  });

  test("berth with the ServiceAccount's token syncs the demo app", async () => {
    const kubeconfig = serviceAccountKubeconfig(installNs);
    const r = await runBerth(["sync", "--config", config(ALL_APPS), "--kubeconfig", kubeconfig]);
    expect(r.stderr).not.toContain("forbidden");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/✓ base .*Succeeded/);
    expect(r.stdout).toMatch(/✓ web .*Succeeded/);
    expect(r.stdout).toMatch(/✓ cache .*Succeeded/);
    expect(
      kubectl(cluster, "get", "deployment", "web", "-n", demoNs, "-o", "jsonpath={.status.readyReplicas}"),
    ).toBe("2");
  }, 120_000);

  test("and is refused (403) what the apps do not render", async () => {
    const kubeconfig = serviceAccountKubeconfig(installNs);
    expect(canI(kubeconfig, "patch", "deployments", "-n", demoNs)).toBe(true);
    expect(canI(kubeconfig, "get", "secrets", "-n", "kube-system")).toBe(false);
    expect(canI(kubeconfig, "create", "pods", "-n", demoNs)).toBe(false);
    expect(canI(kubeconfig, "update", "deployments", "-n", demoNs)).toBe(false);
    // A commit adding a kind the RBAC was not generated for: the sync fails on the API server's 403.
    git.commit("demo", {
      "apps/web/secret.yaml": `apiVersion: v1\nkind: Secret\nmetadata:\n  name: web-secret\nstringData:\n  k: v\n`,
    });
    const r = await runBerth([
      "sync",
      "--app",
      "web",
      "--config",
      config(ALL_APPS),
      "--kubeconfig",
      kubeconfig,
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout + r.stderr).toMatch(/forbidden/i);
    expect(r.stdout + r.stderr).toContain("secrets");
    expect(
      kubectl(cluster, "get", "secret", "web-secret", "-n", demoNs, "--ignore-not-found", "-o", "name"),
    ).toBe("");
    git.commit("demo", { "apps/web/secret.yaml": null });
  }, 150_000);
});

describe("berth install manifests --namespaced", () => {
  const NAMESPACED_APPS = `  - {name: web, path: apps/web, namespace: ${demoNs}, timeout: 60s}\n  - {name: cache, path: apps/cache, namespace: ${demoNs}, timeout: 60s}\n`;

  test("refuses an app that renders a cluster-scoped object, naming it (exit 2)", async () => {
    const r = await runBerth(
      [
        "install",
        "manifests",
        "--namespaced",
        "--namespace",
        namespacedInstall,
        "--config",
        config(ALL_APPS),
      ],
      admin(),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`Namespace/${demoNs}: is cluster-scoped`);
    expect(r.stdout).toBe("");
  }, 60_000);

  test("generates only Roles and RoleBindings; a berth with that token syncs and cannot reach other namespaces", async () => {
    kubectl(cluster, "create", "namespace", namespacedInstall);
    const cfg = config(NAMESPACED_APPS);
    const r = await runBerth(
      ["install", "manifests", "--namespaced", "--namespace", namespacedInstall, "--config", cfg],
      admin(),
    );
    expect(r.code).toBe(0);
    const objs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
    expect(objs.filter((o) => o.kind.startsWith("Cluster") || o.kind === "Namespace")).toEqual([]);
    const roles = objs.filter((o) => o.kind === "Role");
    expect(roles.map((o) => o.metadata.namespace)).toEqual([demoNs]);
    expect(roles[0]?.rules?.map((x) => `${x.apiGroups[0]}/${x.resources[0]}`)).toEqual([
      "/configmaps",
      "apps/deployments",
      "/services",
      "apps/statefulsets",
    ]);
    applyManifests(r.stdout);
    const kubeconfig = serviceAccountKubeconfig(namespacedInstall);
    const sync = await runBerth(["sync", "--config", cfg, "--kubeconfig", kubeconfig]);
    expect(sync.code).toBe(0);
    expect(sync.stdout).toMatch(/✓ web .*Succeeded/);
    expect(sync.stdout).toMatch(/✓ cache .*Succeeded/);
    expect(canI(kubeconfig, "list", "configmaps", "-n", "default")).toBe(false);
    expect(canI(kubeconfig, "create", "namespaces")).toBe(false);
    expect(canI(kubeconfig, "patch", "configmaps", "-n", demoNs)).toBe(true);
  }, 120_000);
});

describe("berth install manifests with a tenant app (serviceAccountName)", () => {
  const TENANT_APP = `  - {name: team, path: team, namespace: ${tenantNs}, serviceAccountName: deployer, timeout: 30s}\n`;

  test("grants impersonate on exactly that ServiceAccount and none of its kinds; berth syncs the app as it", async () => {
    // The tenant's ServiceAccount and Role are the cluster admin's: ConfigMaps in its namespace only.
    applyManifests(
      `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${tenantNs}}\n---\n${deployerRbacYaml(tenantNs)}`,
    );
    git.commit("demo", {
      "team/settings.yaml":
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: team-settings\ndata: {a: b}\n",
    });
    const cfg = config(TENANT_APP);
    const r = await runBerth(
      ["install", "manifests", "--namespace", tenantInstall, "--config", cfg],
      admin(),
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const objs = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
    // berth itself gets no rights on the app's kinds, so no cluster-wide RBAC at all.
    expect(objs.filter((o) => o.kind.startsWith("Cluster"))).toEqual([]);
    const roles = objs.filter((o) => o.kind === "Role");
    expect(roles.map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual([
      `${tenantNs}/berth-${tenantInstall}-impersonate`,
    ]);
    expect(roles[0]?.rules).toEqual([
      {
        apiGroups: [""],
        resources: ["serviceaccounts"],
        verbs: ["impersonate"],
        resourceNames: ["deployer"],
      },
    ]);
    applyManifests(r.stdout);
    const kubeconfig = serviceAccountKubeconfig(tenantInstall);
    expect(canI(kubeconfig, "impersonate", "serviceaccounts/deployer", "-n", tenantNs)).toBe(true);
    expect(canI(kubeconfig, "impersonate", "serviceaccounts/default", "-n", tenantNs)).toBe(false);
    expect(canI(kubeconfig, "impersonate", "serviceaccounts/deployer", "-n", "kube-system")).toBe(false);
    expect(canI(kubeconfig, "create", "configmaps", "-n", tenantNs)).toBe(false);
    const sync = await runBerth(["sync", "--config", cfg, "--kubeconfig", kubeconfig]);
    expect(sync.stderr).not.toContain("forbidden");
    expect(sync.stdout).toMatch(/✓ team .*Succeeded/);
    expect(sync.code).toBe(0);
    expect(
      kubectl(cluster, "get", "configmap", "team-settings", "-n", tenantNs, "-o", "jsonpath={.data.a}"),
    ).toBe("b");
  }, 120_000);
});
