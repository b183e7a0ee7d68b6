/**
 * The sync engine against the real control plane and the real Git server:
 * first sync, an edit/add/delete commit, a no-op resync with zero writes,
 * drift put back, another manager's field left alone, and a health timeout.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import type { Wired } from "../../agent/cli/wire.ts";
import { syncApp, wireFor, writeConfig } from "../support/berth.ts";
import { auditEvents, quietSince, writesIn } from "../support/cluster.ts";
import { agentConfig, useClusterTest } from "../support/cluster-test.ts";
import { deploymentYaml, namespaceYaml, widgetCrdYaml, widgetYaml } from "../support/manifests.ts";

const t = useClusterTest({ prefix: "sync", crds: (ns) => [`widgets.${ns}.berth.test`] });
const ns = t.ns;
const crdGroup = `${ns}.berth.test`;
let w: Wired;

const files = (cmData: string) => ({
  "apps/web/namespace.yaml": namespaceYaml(ns),
  "apps/web/config.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-config\ndata:\n  greeting: ${cmData}\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: web-secret\nstringData:\n  password: hunter2-very-secret\n`,
  "apps/web/service.yaml": `apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n`,
  "apps/web/deployment.yaml": deploymentYaml("web", 2),
  "apps/web/crd.yaml": widgetCrdYaml(crdGroup),
  "apps/web/widget.yaml": widgetYaml(crdGroup, "gizmo", 3),
  "apps/web/README.md": "not a manifest\n",
});

beforeAll(async () => {
  t.commit(files("hello"), "first version of web");
  w = await t.wire(
    t.writeConfig([{ name: "web", path: "apps/web", namespace: ns, timeout: "60s" }], {
      source: "ref: main, interval: 5s",
    }),
  );
}, 600_000);

describe("berth sync against the real control plane", () => {
  test("the first sync creates every object in stages, waits until healthy and records each in the ledger", async () => {
    const r = await syncApp(w, "web");
    expect(r.message).toContain("7 created");
    expect(r).toMatchObject({ outcome: "Succeeded", reason: "Succeeded" });
    expect(r.revision).toBe(`main@sha1:${t.git.head("infra")}`);

    const dep = JSON.parse(
      t.kubectl("get", "deployment", "web", "-n", ns, "-o", "json", "--show-managed-fields"),
    );
    expect(dep.status.readyReplicas).toBe(2);
    expect(dep.metadata.labels).toMatchObject({
      "app.kubernetes.io/managed-by": "berth",
      "berth.dev/app": "web",
    });
    expect(dep.metadata.managedFields.some((m: { manager: string }) => m.manager === "berth")).toBe(true);
    const widget = JSON.parse(t.kubectl("get", `widgets.${crdGroup}`, "gizmo", "-n", ns, "-o", "json"));
    expect(widget.spec.size).toBe(3);

    const entry = w.ledger.get(r.entry);
    expect(entry?.outcome).toBe("Succeeded");
    const recorded = entry?.objects.map((o) => `${o.action} ${o.ref.kind}/${o.ref.name}`).sort();
    expect(recorded).toEqual(
      [
        "created ConfigMap/web-config",
        `created CustomResourceDefinition/widgets.${crdGroup}`,
        "created Deployment/web",
        `created Namespace/${ns}`,
        "created Secret/web-secret",
        "created Service/web",
        "created Widget/gizmo",
      ].sort(),
    );
    expect(entry?.objects.every((o) => o.health === "Current")).toBe(true);
    expect(entry?.commit?.message.trim()).toBe("first version of web");
    expect(w.ledger.inventory("web")).toHaveLength(7);
  }, 120_000);

  test("a commit that edits one object, adds one and deletes one gives exactly those three actions", async () => {
    const next = files("bonjour");
    const edited: Record<string, string | null> = {
      ...next,
      "apps/web/config.yaml": next["apps/web/config.yaml"].split("---")[0] as string,
      "apps/web/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata: {a: b}\n",
    };
    t.git.commit("infra", edited, { message: "edit, add, delete" });
    const r = await syncApp(w, "web");
    expect(r.outcome).toBe("Succeeded");
    const actions = (w.ledger.get(r.entry)?.objects ?? [])
      .filter((o) => o.action !== "unchanged")
      .map((o) => `${o.action} ${o.ref.kind}/${o.ref.name}`)
      .sort();
    expect(actions).toEqual([
      "configured ConfigMap/web-config",
      "created ConfigMap/extra",
      "deleted Secret/web-secret",
    ]);
    expect(() => t.kubectl("get", "secret", "web-secret", "-n", ns)).toThrow();
    expect(t.kubectl("get", "configmap", "web-config", "-n", ns, "-o", "jsonpath={.data.greeting}")).toBe(
      "bonjour",
    );
  }, 120_000);

  test("a resync with no new commit sends no write to the API server", async () => {
    const since = await quietSince();
    const r = await syncApp(w, "web");
    expect(r.outcome).toBe("Succeeded");
    expect(r.message).toMatch(/^0 created, 0 configured, 7 unchanged, 0 deleted/);
    await new Promise((res) => setTimeout(res, 300)); // the audit log is written asynchronously
    const events = auditEvents(t.cluster, since, "berth", ns);
    expect(events.some((e) => e.verb === "patch" && e.requestURI.includes("dryRun=All"))).toBe(true);
    expect(writesIn(events)).toEqual([]);
  }, 60_000);

  test("an out-of-band edit of a field berth owns is put back; a field another manager owns is left alone", async () => {
    t.kubectl("scale", "deployment", "web", "-n", ns, "--replicas=5");
    t.kubectl("label", "configmap", "extra", "-n", ns, "team=payments");
    const r = await syncApp(w, "web");
    expect(r.outcome).toBe("Succeeded");
    const objects = w.ledger.get(r.entry)?.objects ?? [];
    expect(objects.find((o) => o.ref.kind === "Deployment")?.action).toBe("configured");
    expect(t.kubectl("get", "deployment", "web", "-n", ns, "-o", "jsonpath={.spec.replicas}")).toBe("2");
    expect(objects.find((o) => o.ref.name === "extra")?.action).toBe("unchanged");
    expect(t.kubectl("get", "configmap", "extra", "-n", ns, "-o", "jsonpath={.metadata.labels.team}")).toBe(
      "payments",
    );
  }, 120_000);

  test("a Deployment that never becomes ready fails the sync with HealthCheckFailed naming it", async () => {
    const url = t.git.createRepo("stuck");
    t.git.commit("stuck", {
      "app/deploy.yaml": `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stuck\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: stuck}}\n  template:\n    metadata: {labels: {app: stuck}}\n    spec:\n      nodeSelector: {no-such-node: "true"}\n      containers: [{name: c, image: "nginx:1.27"}]\n`,
    });
    const cfg = writeConfig(agentConfig(url, [{ name: "stuck", path: "app", namespace: ns, timeout: "4s" }]));
    const w2 = await wireFor(cfg, t.cluster.kubeconfigPath);
    try {
      const r = await syncApp(w2, "stuck");
      expect(r.outcome).toBe("Failed");
      expect(r.reason).toBe("HealthCheckFailed");
      expect(r.message).toContain(`Deployment/${ns}/stuck`);
      expect(r.message).toContain("not healthy after 4s");
      const entry = w2.ledger.get(r.entry);
      expect(entry?.reason).toBe("HealthCheckFailed");
      expect(entry?.objects[0]?.health).toBe("InProgress");
    } finally {
      w2.close();
    }
  }, 60_000);
});
