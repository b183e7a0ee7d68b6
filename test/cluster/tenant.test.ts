/**
 * The tenant boundary on the real control plane (RBAC authorizer): an app with `serviceAccountName` is synced
 * as that ServiceAccount, so the API server refuses what its Role does not allow — already at the plan's
 * dry-run, so nothing of the app is written — while its allowed objects sync. `allowedNamespaces` and
 * `clusterScoped: false` refuse at plan time, naming the object and file, without any RBAC.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { wireDrift } from "../../agent/cli/wire.ts";
import { silentLogger } from "../../agent/engine/log.ts";
import { syncApp, wireFor, writeConfig } from "../support/berth.ts";
import { freshNamespace, quietSince } from "../support/cluster.ts";
import { patchConfigMap, useClusterTest } from "../support/cluster-test.ts";
import { deployerRbacYaml } from "../support/manifests.ts";

const t = useClusterTest({ prefix: "tenant", createNamespace: true, repo: "tenant" });
const ns = t.ns;
let other: string;
let configPath: string;
const crbName = `tenant-escalate-${Math.random().toString(16).slice(2, 8)}`;
const kubeSystemCm = `tenant-planted-${Math.random().toString(16).slice(2, 8)}`;
t.removeAtTeardown(`clusterrolebinding/${crbName}`);
t.onTeardown(() => t.kubectl("delete", "configmap", kubeSystemCm, "-n", "kube-system", "--ignore-not-found"));

const cm = (name: string, value: string, namespace?: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${namespace ? `  namespace: ${namespace}\n` : ""}data: {v: "${value}"}\n`;

function exists(...args: string[]): boolean {
  return t.kubectl("get", ...args, "--ignore-not-found", "-o", "name").trim() !== "";
}

/** Audit events of real writes made as `user` (through impersonation) since `since`. */
function writesAs(user: string, since: Date): Array<{ verb: string; requestURI: string }> {
  const text = readFileSync(join(t.cluster.kubeconfigPath, "..", "audit.log"), "utf8");
  const out: Array<{ verb: string; requestURI: string }> = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    const e = JSON.parse(line) as {
      verb: string;
      requestURI: string;
      requestReceivedTimestamp: string;
      impersonatedUser?: { username?: string };
      stage?: string;
    };
    if (new Date(e.requestReceivedTimestamp) < since || e.impersonatedUser?.username !== user) continue;
    if (!["create", "patch", "update", "delete"].includes(e.verb) || e.requestURI.includes("dryRun=All"))
      continue;
    if (e.stage && e.stage !== "ResponseComplete") continue;
    out.push({ verb: e.verb, requestURI: e.requestURI });
  }
  return out;
}

beforeAll(async () => {
  other = await freshNamespace(t.cluster, "tenant-other");
  t.removeAtTeardown(`namespace/${other}`);
  const file = join(writeConfig(""), "..", "rbac.yaml");
  await Bun.write(file, deployerRbacYaml(ns));
  t.kubectl("apply", "-f", file);
  t.commit({ "team/app.yaml": cm("settings", "one") });
  configPath = t.writeConfig([
    { name: "team", path: "team", namespace: ns, serviceAccountName: "deployer", timeout: "20s" },
    {
      name: "fenced",
      path: "fenced",
      namespace: ns,
      allowedNamespaces: [ns],
      clusterScoped: "false",
      timeout: "20s",
    },
  ]);
}, 600_000);

describe("serviceAccountName: the API server's RBAC decides", () => {
  const user = () => `system:serviceaccount:${ns}:deployer`;

  test("the app's allowed objects sync, written as its ServiceAccount", async () => {
    const since = await quietSince();
    await t.withWired(configPath, async (w) => {
      const r = await syncApp(w, "team");
      expect(r.message).toContain("1 created");
      expect(r.outcome).toBe("Succeeded");
    });
    expect(t.kubectl("get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.v}")).toBe("one");
    const writes = writesAs(user(), since);
    expect(writes.map((e) => e.verb)).toEqual(["patch"]);
    expect(writes[0]?.requestURI).toContain(`/namespaces/${ns}/configmaps/settings`);
  }, 60_000);

  test("a ClusterRoleBinding to cluster-admin and a ConfigMap in kube-system: refused at the dry-run, nothing of the app written", async () => {
    t.commit({
      "team/app.yaml": cm("settings", "two"),
      "team/escalate.yaml": `apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: ${crbName}}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: deployer, namespace: ${ns}}]\n`,
      "team/planted.yaml": cm(kubeSystemCm, "x", "kube-system"),
    });
    const since = await quietSince();
    await t.withWired(configPath, async (w) => {
      const r = await syncApp(w, "team");
      expect(r.outcome).toBe("Failed");
      expect(r.reason).toBe("PlanRejected");
      expect(r.message).toContain(`ClusterRoleBinding/${crbName} (team/escalate.yaml#0)`);
      expect(r.message).toContain(`ConfigMap/kube-system/${kubeSystemCm} (team/planted.yaml#0)`);
      expect(r.message).toContain(`User "${user()}" cannot patch resource "clusterrolebindings"`);
      expect(r.message).toContain(
        `cannot patch resource "configmaps" in API group "" in the namespace "kube-system"`,
      );
      const entry = w.ledger.get(r.entry);
      expect(entry?.reason).toBe("PlanRejected");
      expect(entry?.message).toBe(r.message);
    });
    expect(exists("clusterrolebinding", crbName)).toBe(false);
    expect(exists("configmap", kubeSystemCm, "-n", "kube-system")).toBe(false);
    // The allowed change was not half-applied either: the plan failed as a whole.
    expect(t.kubectl("get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.v}")).toBe("one");
    expect(writesAs(user(), since)).toEqual([]);
  }, 60_000);

  test("berth run's watch view reads as the ServiceAccount too (per namespace), and drift is healed as it", async () => {
    t.commit({
      "team/app.yaml": cm("settings", "three"),
      "team/escalate.yaml": null,
      "team/planted.yaml": null,
    });
    const w = await wireFor(configPath, t.cluster.kubeconfigPath);
    const logs: string[] = [];
    const drift = wireDrift(w, {
      ...silentLogger,
      log: (level: string, message: string, fields?: Record<string, unknown>) =>
        logs.push(`${level} ${message} ${JSON.stringify(fields)}`),
    } as typeof silentLogger);
    try {
      const r = await syncApp(w, "team");
      expect(r.message).toContain("1 configured");
      expect(r.outcome).toBe("Succeeded");
      // A namespace Role allows no cluster-wide list: connected means the view watches the app's namespace.
      expect(logs.filter((l) => !l.startsWith("info"))).toEqual([]);
      expect(drift.view.connected("team")).toBe(true);
      expect(drift.view.objectsOf("team").map((o) => o.metadata.name)).toEqual(["settings"]);
      const since = await quietSince();
      patchConfigMap(t.cluster, ns, "settings", { v: "edited" });
      const deadline = Date.now() + 15_000;
      let value = "";
      while (Date.now() < deadline) {
        value = t.kubectl("get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.v}");
        if (value === "three") break;
        await Bun.sleep(200);
      }
      expect(value).toBe("three");
      expect(writesAs(user(), since).map((e) => e.verb)).toEqual(["patch"]);
    } finally {
      await drift.close();
      w.close();
    }
  }, 60_000);

  test("a prune goes out as the ServiceAccount too", async () => {
    const since = await quietSince();
    await t.withWired(configPath, async (w) => {
      // Two steps, so the prune stays under the mass-prune guard (half of the inventory at most).
      t.commit({ "team/keep.yaml": cm("keep", "1") });
      expect((await syncApp(w, "team")).message).toContain("1 created");
      t.commit({ "team/app.yaml": null });
      const r = await syncApp(w, "team");
      expect(r.message).toContain("1 deleted");
      expect(r.outcome).toBe("Succeeded");
    });
    expect(exists("configmap", "settings", "-n", ns)).toBe(false);
    expect(writesAs(user(), since).map((e) => `${e.verb} ${e.requestURI.split("?")[0]}`)).toEqual([
      `patch /api/v1/namespaces/${ns}/configmaps/keep`,
      `delete /api/v1/namespaces/${ns}/configmaps/settings`,
    ]);
  }, 60_000);
});

describe("allowedNamespaces and clusterScoped: false refuse at plan time", () => {
  test("an object in another namespace and a cluster-scoped one are named with their file; nothing applied", async () => {
    t.commit({
      "fenced/ok.yaml": cm("fenced-ok", "1"),
      "fenced/elsewhere.yaml": cm("fenced-elsewhere", "1", other),
      "fenced/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${other}-new}\n`,
    });
    const since = await quietSince();
    await t.withWired(configPath, async (w) => {
      const r = await syncApp(w, "fenced");
      expect(r.reason).toBe("PlanRejected");
      expect(r.message).toContain(
        `ConfigMap/${other}/fenced-elsewhere (fenced/elsewhere.yaml#0): is in namespace "${other}", outside app "fenced"'s allowedNamespaces (${ns})`,
      );
      expect(r.message).toContain(
        `Namespace/${other}-new (fenced/ns.yaml#0): is cluster-scoped, and app "fenced" sets clusterScoped: false`,
      );
      expect(w.ledger.get(r.entry)?.reason).toBe("PlanRejected");
    });
    expect(exists("configmap", "fenced-ok", "-n", ns)).toBe(false);
    expect(exists("configmap", "fenced-elsewhere", "-n", other)).toBe(false);
    expect(exists("namespace", `${other}-new`)).toBe(false);
    // Refused before any request: not even dry-run.
    const text = readFileSync(join(t.cluster.kubeconfigPath, "..", "audit.log"), "utf8");
    const touched = text
      .split("\n")
      .filter((l) => l && new Date(JSON.parse(l).requestReceivedTimestamp) >= since)
      .filter((l) => JSON.parse(l).userAgent === "berth")
      .filter((l) => l.includes("fenced-elsewhere") || l.includes(`${other}-new`));
    expect(touched).toEqual([]);
  }, 60_000);

  test("once inside the boundary, the app syncs", async () => {
    t.commit({ "fenced/elsewhere.yaml": null, "fenced/ns.yaml": null });
    await t.withWired(configPath, async (w) => {
      const r = await syncApp(w, "fenced");
      expect(r.outcome).toBe("Succeeded");
    });
    expect(exists("configmap", "fenced-ok", "-n", ns)).toBe(true);
  }, 60_000);
});
