/**
 * The tenant boundary without a cluster: the pure plan-time check, the plan refusing before any request, the
 * config's tenant keys, and the client sending `Impersonate-User` (but not for discovery).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appClients } from "../../agent/cli/wire.ts";
import { parseConfig } from "../../agent/config/config.ts";
import { KubeClient } from "../../agent/kube/client.ts";
import { KindWatch } from "../../agent/kube/watch.ts";
import type { KubeObject, ObjectRef } from "../../agent/object/object.ts";
import { type PlanCluster, plan } from "../../agent/plan/plan.ts";
import { outsideTenant } from "../../agent/plan/tenant.ts";
import { configErrorOf } from "../support/config.ts";

describe("outsideTenant", () => {
  const fenced = { name: "team", allowedNamespaces: ["a", "b"], clusterScoped: false };
  test("namespaced objects must be in allowedNamespaces", () => {
    expect(outsideTenant(fenced, "a")).toBeUndefined();
    expect(outsideTenant(fenced, "kube-system")).toBe(
      `is in namespace "kube-system", outside app "team"'s allowedNamespaces (a, b)`,
    );
  });
  test("clusterScoped: false refuses cluster-scoped objects; absent or true allows them", () => {
    expect(outsideTenant(fenced, "")).toContain(
      `is cluster-scoped, and app "team" sets clusterScoped: false`,
    );
    expect(outsideTenant({ name: "x", allowedNamespaces: ["a"] }, "")).toBeUndefined();
    expect(outsideTenant({ name: "x", clusterScoped: true }, "")).toBeUndefined();
  });
  test("without settings, anything goes", () => {
    expect(outsideTenant({ name: "x" }, "kube-system")).toBeUndefined();
  });
});

describe("plan with a boundary", () => {
  const requests: string[] = [];
  const cluster: PlanCluster = {
    resource: (_g, _v, kind) =>
      ({ ConfigMap: { namespaced: true }, ClusterRole: { namespaced: false } })[kind],
    get: async (ref: ObjectRef) => {
      requests.push(`get ${ref.namespace}/${ref.name}`);
      return undefined;
    },
    apply: async (obj: KubeObject) => {
      requests.push(`dry-run ${obj.metadata.namespace ?? ""}/${obj.metadata.name}`);
      return obj;
    },
  };
  const obj = (kind: string, name: string, namespace?: string): KubeObject => ({
    apiVersion: kind === "ClusterRole" ? "rbac.authorization.k8s.io/v1" : "v1",
    kind,
    metadata: { name, ...(namespace ? { namespace } : {}) },
  });

  test("objects outside are plan errors naming object and file, and are never sent to the server", async () => {
    const p = await plan(
      {
        app: {
          name: "team",
          namespace: "team",
          prune: true,
          allowEmpty: false,
          force: false,
          allowedNamespaces: ["team"],
          clusterScoped: false,
        },
        revision: "r1",
        desired: [
          { object: obj("ConfigMap", "ok"), source: "a.yaml#0" },
          { object: obj("ConfigMap", "planted", "kube-system"), source: "b.yaml#0" },
          { object: obj("ClusterRole", "admin2"), source: "c.yaml#1" },
        ],
        inventory: [],
      },
      cluster,
    );
    expect(p.errors).toEqual([
      {
        subject: "ConfigMap/kube-system/planted",
        source: "b.yaml#0",
        message: `is in namespace "kube-system", outside app "team"'s allowedNamespaces (team)`,
      },
      {
        subject: "ClusterRole/admin2",
        source: "c.yaml#1",
        message: `is cluster-scoped, and app "team" sets clusterScoped: false (it may hold namespaced objects only)`,
      },
    ]);
    expect(requests).toEqual(["dry-run team/ok"]);
  });

  test("the same rendered objects planned again (a reused render) are checked against the boundary again", async () => {
    // The render cache hands the plan the very same objects; the plan reuses its copies of them, but the
    // boundary is the app's setting and may have narrowed since (a config reload).
    const desired = [
      { object: obj("ConfigMap", "one"), source: "a.yaml#0" },
      { object: obj("ConfigMap", "two", "shared"), source: "a.yaml#1" },
    ];
    const app = { name: "team", namespace: "team", prune: true, allowEmpty: false, force: false };
    const first = await plan(
      { app: { ...app, allowedNamespaces: ["team", "shared"] }, revision: "r1", desired, inventory: [] },
      cluster,
    );
    expect(first.errors).toEqual([]);
    expect(first.changes.map((c) => c.subject)).toEqual(["ConfigMap/shared/two", "ConfigMap/team/one"]);
    const again = await plan(
      { app: { ...app, allowedNamespaces: ["team"] }, revision: "r1", desired, inventory: [] },
      cluster,
    );
    expect(again.errors).toEqual([
      {
        subject: "ConfigMap/shared/two",
        source: "a.yaml#1",
        message: `is in namespace "shared", outside app "team"'s allowedNamespaces (team)`,
      },
    ]);
    expect(again.changes.map((c) => c.subject)).toEqual(["ConfigMap/team/one"]);
    // The copies were reused: the object planned both times is the same one.
    expect(again.changes[0]?.desired).toBe(first.changes[1]?.desired as KubeObject);
  });

  test("an inventory object outside the boundary is neither read nor pruned", async () => {
    requests.length = 0;
    const p = await plan(
      {
        app: { name: "team", prune: true, allowEmpty: true, force: false, allowedNamespaces: ["team"] },
        revision: "r2",
        desired: [],
        inventory: [
          { ref: { group: "", version: "v1", kind: "ConfigMap", namespace: "other", name: "old" } },
        ],
      },
      cluster,
    );
    expect(p.errors).toEqual([]);
    expect(p.changes.map((c) => [c.subject, c.action, c.note])).toEqual([
      [
        "ConfigMap/other/old",
        "skipped",
        `left Git; not pruned because it is in namespace "other", outside app "team"'s allowedNamespaces (team)`,
      ],
    ]);
    expect(requests).toEqual([]);
  });
});

describe("config", () => {
  const base = (apps: string, top = "") =>
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "https://git.example.com/x.git"}\n${top}apps:\n${apps}`;
  const errorOf = (text: string): string => configErrorOf(text, "berth.yaml");

  test("per-app keys and the global default, normalised", () => {
    const c = parseConfig(
      base(
        "  - {name: a, path: a, namespace: ta, serviceAccountName: deployer, allowedNamespaces: [ta], clusterScoped: false}\n  - {name: b, path: b, namespace: tb}\n",
        "defaultServiceAccountName: berth-apps\n",
      ),
      "berth.yaml",
    );
    expect(c.defaultServiceAccountName).toBe("berth-apps");
    expect(c.apps[0]).toMatchObject({
      serviceAccountName: "deployer",
      allowedNamespaces: ["ta"],
      clusterScoped: false,
    });
    expect(c.apps[1]?.serviceAccountName).toBe("berth-apps");
    expect(c.apps[1]?.clusterScoped).toBeUndefined();
  });

  test("a ServiceAccount needs the app's namespace", () => {
    expect(errorOf(base("  - {name: a, path: a, serviceAccountName: deployer}\n"))).toContain(
      "apps[0].serviceAccountName: needs the app's namespace",
    );
    expect(errorOf(base("  - {name: a, path: a}\n", "defaultServiceAccountName: berth-apps\n"))).toContain(
      `defaultServiceAccountName "berth-apps" applies to this app, which sets no namespace`,
    );
  });

  test("the app's namespace and varsFrom namespaces must be allowed", () => {
    const msg = errorOf(
      base(
        "  - name: a\n    path: a\n    namespace: x\n    allowedNamespaces: [y]\n    varsFrom: [{kind: ConfigMap, name: v, namespace: kube-system}]\n",
      ),
    );
    expect(msg).toContain(`apps[0].namespace: "x" is not in allowedNamespaces`);
    expect(msg).toContain(`apps[0].varsFrom[0].namespace: "kube-system" is not in allowedNamespaces`);
  });

  test("unknown or mistyped keys are rejected by the schema", () => {
    expect(errorOf(base("  - {name: a, path: a, clusterScoped: nope}\n"))).toContain("clusterScoped");
    expect(errorOf(base("  - {name: a, path: a, allowedNamespaces: []}\n"))).toContain("allowedNamespaces");
  });
});

describe("the client impersonates", () => {
  const seen: Array<{ path: string; as: string | null }> = [];
  let server: ReturnType<typeof Bun.serve>;
  let kube: KubeClient;
  beforeAll(() => {
    server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req) {
        const path = new URL(req.url).pathname;
        seen.push({ path, as: req.headers.get("impersonate-user") });
        if (path === "/api/v1/secrets")
          return Response.json(
            { kind: "Status", reason: "Forbidden", message: "secrets is forbidden" },
            { status: 403 },
          );
        if (path === "/api" || path === "/apis") {
          const items =
            path === "/api"
              ? [
                  {
                    metadata: { name: "" },
                    versions: [
                      {
                        version: "v1",
                        resources: [
                          {
                            resource: "configmaps",
                            responseKind: { kind: "ConfigMap" },
                            scope: "Namespaced",
                            verbs: ["get"],
                          },
                        ],
                      },
                    ],
                  },
                ]
              : [];
          return Response.json({ items });
        }
        return Response.json({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" } });
      },
    });
    kube = new KubeClient({ server: `http://127.0.0.1:${server.port}`, origin: "test", skipTLSVerify: true });
  });
  afterAll(() => server.stop(true));

  test("only apps with a ServiceAccount get an impersonating client; discovery stays the agent's", async () => {
    const config = parseConfig(
      `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "https://g.example/x.git"}\napps:\n  - {name: team, path: t, namespace: tns, serviceAccountName: deployer}\n  - {name: ops, path: o}\n`,
      "berth.yaml",
    );
    const clientFor = appClients(config, kube);
    expect(clientFor("ops")).toBe(kube);
    const team = clientFor("team");
    expect(team).toBe(clientFor("team"));
    expect(team.impersonate).toBe("system:serviceaccount:tns:deployer");
    await team.discover();
    const ref = { group: "", version: "v1", kind: "ConfigMap", namespace: "tns", name: "c" };
    await team.get(ref);
    await kube.get(ref);
    expect(seen).toEqual([
      { path: "/api", as: null },
      { path: "/apis", as: null },
      { path: "/api/v1/namespaces/tns/configmaps/c", as: "system:serviceaccount:tns:deployer" },
      { path: "/api/v1/namespaces/tns/configmaps/c", as: null },
    ]);
    // Counters and the HA write guard are shared with the agent's client.
    expect(kube.counts.get).toBe(2);
    kube.mayWrite = () => false;
    await expect(team.delete(ref)).rejects.toThrow("HA standby");
  });

  test("a watch the server forbids ends instead of retrying every few seconds", async () => {
    seen.length = 0;
    const states: string[] = [];
    const info = { group: "", version: "v1", kind: "Secret", plural: "secrets", namespaced: true, verbs: [] };
    const watch = new KindWatch(kube.as("system:serviceaccount:tns:deployer"), {
      info,
      labelSelector: "a=b",
      backoffMs: 10,
      onUpdate: () => {},
      onState: (connected, error) => states.push(`${connected} ${error}`),
    });
    watch.start();
    await watch.synced;
    await Bun.sleep(200);
    await watch.stop();
    expect(watch.forbidden).toBe(true);
    expect(seen.map((s) => s.path)).toEqual(["/api/v1/secrets"]);
    expect(states).toEqual(["false secrets is forbidden"]);
  });
});
