/**
 * What the watch view and the plan keep of each object (issue 17: memory per watched object): the view's
 * stripped copy shares berth's field set with every object owning the same fields, and the plan's copy of a
 * rendered object shares all but its metadata, leaving the rendered object as it was.
 */
import { describe, expect, test } from "bun:test";
import { detectDrift } from "../../agent/drift/detect.ts";
import { strip } from "../../agent/kube/view.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import { APPLIED_DIGEST_ANNOTATION, type PlanCluster, plan } from "../../agent/plan/plan.ts";

/** A live ConfigMap as the API server sends it: berth's Apply entry, another manager's, last-applied. */
function live(name: string, keys: string[], time = "2026-11-29T10:00:00Z"): KubeObject {
  // Parsed from text, as a watch event is: equal sets are equal values, never one object.
  return JSON.parse(
    JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name,
        namespace: "web",
        annotations: {
          "kubectl.kubernetes.io/last-applied-configuration": "{}",
          "berth.dev/applied-digest": "d",
        },
        managedFields: [
          {
            manager: "berth",
            operation: "Apply",
            apiVersion: "v1",
            time,
            fieldsType: "FieldsV1",
            fieldsV1: { "f:data": Object.fromEntries(keys.map((k) => [`f:${k}`, {}])) },
          },
          {
            manager: "kubectl-edit",
            operation: "Update",
            apiVersion: "v1",
            time,
            fieldsType: "FieldsV1",
            fieldsV1: { "f:metadata": { "f:labels": { "f:team": {} } } },
          },
        ],
      },
      data: Object.fromEntries(keys.map((k) => [k, "1"])),
    }),
  ) as KubeObject;
}

const fieldsOf = (o: KubeObject, manager: string) =>
  (o.metadata.managedFields?.find((m) => m.manager === manager) as { fieldsV1?: unknown } | undefined)
    ?.fieldsV1;

describe("the watch view's stripped objects", () => {
  test("objects owning the same fields share one field set; other sets stay their own", () => {
    const a = strip(live("a", ["index", "version"]));
    const b = strip(live("b", ["index", "version"]));
    const c = strip(live("c", ["index", "colour"]));
    expect(fieldsOf(a, "berth")).toEqual({ "f:data": { "f:index": {}, "f:version": {} } });
    expect(fieldsOf(b, "berth")).toBe(fieldsOf(a, "berth"));
    expect(fieldsOf(c, "berth")).toEqual({ "f:data": { "f:index": {}, "f:colour": {} } });
    expect(fieldsOf(c, "berth")).not.toBe(fieldsOf(a, "berth"));
    // Other managers keep who and when (the plan's "untouched since applied"), not their field sets.
    expect(fieldsOf(a, "kubectl-edit")).toBeUndefined();
    expect(a.metadata.managedFields?.[1]?.time).toBe("2026-11-29T10:00:00Z");
    expect(a.metadata.annotations).toEqual({ "berth.dev/applied-digest": "d" });
  });

  test("the object handed in is left whole", () => {
    const full = live("a", ["index"]);
    const before = JSON.stringify(full);
    strip(full);
    expect(JSON.stringify(full)).toBe(before);
  });

  test("drift detection still reads berth's fields from a stripped object sharing its set", () => {
    const before = strip(live("a", ["index", "version"]));
    strip(live("b", ["index", "version"])); // the same set, now shared with b
    const after = live("a", ["index"]);
    expect(
      detectDrift(
        { group: "", version: "v1", kind: "ConfigMap", namespace: "web", name: "a" },
        before,
        after,
      ),
    ).toEqual({
      ref: { group: "", version: "v1", kind: "ConfigMap", namespace: "web", name: "a" },
      manager: "kubectl-edit",
      fields: ["/data/version"],
      deleted: false,
    });
  });
});

describe("the plan's copy of a rendered object", () => {
  const cluster: PlanCluster = {
    resource: (group, _version, kind) =>
      group === "apps" && kind === "Deployment" ? { namespaced: true } : undefined,
    get: async () => undefined,
    apply: async (obj) => obj,
  };
  const app = { name: "web", namespace: "web", prune: true, allowEmpty: false, force: false };

  test("gets labels, namespace and digest of its own; the rendered object is unchanged, its spec shared", async () => {
    const rendered: KubeObject = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "api", labels: { team: "a" }, annotations: { note: "x" } },
      spec: { replicas: 1, template: { spec: { containers: [{ name: "c", image: "nginx" }] } } },
    };
    const text = JSON.stringify(rendered);
    const p = await plan(
      { app, revision: "r", desired: [{ object: rendered, source: "d.yaml#0" }], inventory: [] },
      cluster,
    );
    expect(p.errors).toEqual([]);
    const planned = p.changes[0]?.desired as KubeObject;
    expect(planned.metadata.namespace).toBe("web");
    expect(planned.metadata.labels).toEqual({
      team: "a",
      "app.kubernetes.io/managed-by": "berth",
      "berth.dev/app": "web",
    });
    expect(Object.keys(planned.metadata.annotations ?? {}).sort()).toEqual([
      APPLIED_DIGEST_ANNOTATION,
      "note",
    ]);
    expect(JSON.stringify(rendered)).toBe(text);
    expect(planned.spec).toBe(rendered.spec);
  });
});
