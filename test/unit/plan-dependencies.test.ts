/** plan() with what dependency apps create (`after`): kinds and namespaces are validated after that app. */
import { describe, expect, test } from "bun:test";
import { KubeApiError } from "../../agent/kube/client.ts";
import { dependenciesOf } from "../../agent/object/dependency-order.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import { fromDependencies } from "../../agent/plan/dependencies.ts";
import { type PlanCluster, plan } from "../../agent/plan/plan.ts";

const crd: KubeObject = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "backups.example.test" },
  spec: { group: "example.test", scope: "Namespaced", names: { kind: "Backup" }, versions: [{ name: "v1" }] },
};
const namespace: KubeObject = { apiVersion: "v1", kind: "Namespace", metadata: { name: "data" } };
const backup: KubeObject = { apiVersion: "example.test/v1", kind: "Backup", metadata: { name: "nightly" } };
const settings: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "settings" } };
const local: KubeObject = {
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: "x", namespace: "default" },
};

/** A fresh cluster: core kinds only; namespace "data" does not exist, "default" does. */
const cluster: PlanCluster = {
  resource: (group, _version, kind) =>
    group === "" && ["ConfigMap", "Namespace"].includes(kind)
      ? { namespaced: kind !== "Namespace" }
      : undefined,
  get: async () => undefined,
  apply: async (obj) => {
    if (obj.metadata.namespace === "data")
      throw new KubeApiError('namespaces "data" not found', 404, "NotFound", {
        kind: "namespaces",
        name: "data",
      });
    return obj;
  },
};

const app = { name: "backups", namespace: "data", prune: true, allowEmpty: false, force: false };
const desired = [backup, settings, local].map((object, i) => ({ object, source: `b.yaml#${i}` }));

describe("plan after dependencies", () => {
  test("a kind and a namespace from a dependency are validated after it; the rest is planned as usual", async () => {
    const after = fromDependencies([{ app: "platform", objects: [crd, namespace] }]);
    const p = await plan({ app, revision: "r", desired, inventory: [], after }, cluster);
    expect(p.errors).toEqual([]);
    expect(p.changes.map((c) => [c.subject, c.action, c.note ?? ""])).toEqual([
      [
        "Backup/data/nightly",
        "created",
        "will be validated after platform: its CustomResourceDefinition comes from app platform",
      ],
      [
        "ConfigMap/data/settings",
        "created",
        "will be validated after platform: its Namespace data comes from app platform",
      ],
      ["ConfigMap/default/x", "created", ""],
    ]);
  });

  test("without them the kind and the namespace are errors, before anything is written", async () => {
    const p = await plan({ app, revision: "r", desired, inventory: [] }, cluster);
    expect(p.errors.map((e) => e.subject)).toEqual(["Backup/nightly", "ConfigMap/data/settings"]);
    expect(p.errors[0]?.message).toContain("is not served");
    expect(p.errors[1]?.message).toContain('namespaces "data" not found');
  });

  test("dependencies are followed transitively, dependencies first, unknown names ignored", () => {
    const apps = [
      { name: "c", dependsOn: ["b", "nope"] },
      { name: "b", dependsOn: ["a"] },
      { name: "a", dependsOn: [] },
      { name: "d", dependsOn: [] },
    ];
    expect(dependenciesOf(apps[0] as (typeof apps)[number], apps).map((a) => a.name)).toEqual(["a", "b"]);
    expect(dependenciesOf(apps[3] as (typeof apps)[number], apps)).toEqual([]);
  });
});
