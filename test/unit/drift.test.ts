/** Drift detection on managed fields, the drift policy and the plan's untouched check, without I/O. */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { detectDrift } from "../../agent/drift/detect.ts";
import { fieldPaths } from "../../agent/drift/fields.ts";
import { DriftPolicy } from "../../agent/drift/policy.ts";
import type { KubeObject, ManagedFieldsEntry } from "../../agent/object/object.ts";
import { APPLIED_DIGEST_ANNOTATION, untouchedSinceApplied } from "../../agent/plan/plan.ts";

const ref = { group: "apps", version: "v1", kind: "Deployment", namespace: "ns", name: "web" };
const berthFields = {
  "f:metadata": { "f:labels": { "f:tier": {} } },
  "f:spec": {
    "f:replicas": {},
    "f:template": {
      "f:spec": { "f:containers": { 'k:{"name":"c"}': { ".": {}, "f:image": {}, "f:name": {} } } },
    },
  },
};
const obj = (managedFields: ManagedFieldsEntry[], annotations: Record<string, string> = {}): KubeObject => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web", namespace: "ns", managedFields, annotations },
});
const berth = (fieldsV1: unknown, time = "2026-01-01T00:00:00Z"): ManagedFieldsEntry => ({
  manager: "berth",
  operation: "Apply",
  time,
  fieldsV1,
});

describe("fieldPaths()", () => {
  test("turns fieldsV1 into leaf paths, keyed list items as key=value", () => {
    expect(fieldPaths(berthFields)).toEqual([
      "/metadata/labels/tier",
      "/spec/replicas",
      "/spec/template/spec/containers/name=c/image",
      "/spec/template/spec/containers/name=c/name",
    ]);
  });
});

describe("detectDrift()", () => {
  const before = obj([berth(berthFields)]);
  test("a field taken by another manager is drift naming that manager", () => {
    const { "f:replicas": _r, ...spec } = berthFields["f:spec"];
    const after = obj([
      berth({ ...berthFields, "f:spec": spec }),
      {
        manager: "kubectl",
        operation: "Update",
        subresource: "scale",
        fieldsV1: { "f:spec": { "f:replicas": {} } },
      },
    ]);
    expect(detectDrift(ref, before, after)).toEqual({
      ref,
      manager: "kubectl",
      fields: ["/spec/replicas"],
      deleted: false,
    });
  });
  test("berth re-applying (its entry's time moved) is never drift, even when its set shrinks", () => {
    expect(detectDrift(ref, before, obj([berth({}, "2026-01-01T00:00:09Z")]))).toBeUndefined();
  });
  test("changes to fields berth does not own are not drift", () => {
    const after = obj([
      berth(berthFields),
      { manager: "hpa-sim", operation: "Apply", fieldsV1: { "f:status": {} } },
    ]);
    expect(detectDrift(ref, before, after)).toBeUndefined();
  });
  test("a deletion is drift of the whole object; an object berth never applied is not judged", () => {
    expect(detectDrift(ref, before, undefined)).toMatchObject({ deleted: true, fields: ["/"] });
    expect(detectDrift(ref, obj([]), undefined)).toBeUndefined();
  });
});

describe("detectDrift() on a Secret berth sets through stringData", () => {
  const sref = { group: "", version: "v1", kind: "Secret", namespace: "ns", name: "creds" };
  const owned = {
    "f:metadata": { "f:labels": { "f:tier": {} } },
    "f:stringData": { "f:password": {}, "f:user": {} },
  };
  const secret = (data: Record<string, string>, managedFields: ManagedFieldsEntry[]): KubeObject => ({
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "creds", namespace: "ns", managedFields },
    data,
  });
  const patcher: ManagedFieldsEntry = {
    manager: "kubectl-patch",
    operation: "Update",
    time: "2026-01-01T00:00:05Z",
    fieldsV1: { "f:data": { "f:password": {} } },
  };
  const before = secret({ password: "b2xk", user: "dQ==" }, [berth(owned)]);
  test("a changed data value of a stringData key is drift at /data/KEY, naming the writer", () => {
    const after = secret({ password: "bmV3", user: "dQ==" }, [berth(owned), patcher]);
    expect(detectDrift(sref, before, after)).toEqual({
      ref: sref,
      manager: "kubectl-patch",
      fields: ["/data/password"],
      deleted: false,
    });
  });
  test("a removed key is drift too; an unchanged value, berth re-applying, or a ConfigMap is not", () => {
    expect(detectDrift(sref, before, secret({ user: "dQ==" }, [berth(owned)]))?.fields).toEqual([
      "/data/password",
    ]);
    expect(
      detectDrift(sref, before, secret({ password: "b2xk", user: "dQ==" }, [berth(owned), patcher])),
    ).toBeUndefined();
    const reapplied = secret({ password: "bmV3", user: "dQ==" }, [berth(owned, "2026-01-01T00:00:09Z")]);
    expect(detectDrift(sref, before, reapplied)).toBeUndefined();
    const cm = (data: Record<string, string>) => ({ ...secret(data, [berth(owned)]), kind: "ConfigMap" });
    expect(detectDrift(sref, cm({ password: "a" }), cm({ password: "b" }))).toBeUndefined();
  });
});

describe("DriftPolicy", () => {
  const finding = { ref, manager: "kubectl", fields: ["/spec/replicas"], deleted: false };
  test("ignore lists drop fields by pointer prefix; rules decide per object, first match wins", () => {
    const p = DriftPolicy.compile(
      {
        action: "heal",
        ignore: { Deployment: ["/spec/replicas"] },
        rules: [{ when: 'object.namespace == "ns" && manager == "kubectl"', action: "alert" }],
      },
      "berth.yaml: apps[0].drift",
    );
    expect(p.decide(finding).action).toBe("ignore");
    expect(p.decide({ ...finding, fields: ["/spec/replicas", "/metadata/labels/tier"] })).toEqual({
      action: "alert",
      fields: ["/metadata/labels/tier"],
      rule: "rules[0]",
    });
  });
  test("a bad rule is an error naming where it is", () => {
    expect(() =>
      DriftPolicy.compile(
        { action: "heal", ignore: {}, rules: [{ when: "object.kind ==", action: "heal" }] },
        "berth.yaml: apps[2].drift",
      ),
    ).toThrow(/apps\[2\]\.drift\.rules\[0\]\.when/);
  });
});

describe("untouchedSinceApplied()", () => {
  const desired = obj([], { [APPLIED_DIGEST_ANNOTATION]: "sha256:abc" });
  test("true only when the digest agrees and nobody but berth or a status writer wrote since", () => {
    const status = {
      manager: "kcm",
      operation: "Update",
      subresource: "status",
      time: "2026-01-01T00:00:05Z",
    };
    expect(
      untouchedSinceApplied(obj([berth({}), status], { [APPLIED_DIGEST_ANNOTATION]: "sha256:abc" }), desired),
    ).toBe(true);
    expect(
      untouchedSinceApplied(obj([berth({})], { [APPLIED_DIGEST_ANNOTATION]: "sha256:old" }), desired),
    ).toBe(false);
    const scale = { manager: "kubectl", operation: "Update", subresource: "scale" };
    expect(
      untouchedSinceApplied(obj([berth({}), scale], { [APPLIED_DIGEST_ANNOTATION]: "sha256:abc" }), desired),
    ).toBe(false);
    const sameSecond = { manager: "kubectl-edit", operation: "Update", time: "2026-01-01T00:00:00Z" };
    expect(
      untouchedSinceApplied(
        obj([berth({}), sameSecond], { [APPLIED_DIGEST_ANNOTATION]: "sha256:abc" }),
        desired,
      ),
    ).toBe(false);
  });
});

describe("DriftWatcher on a Secret the ledger holds redacted", () => {
  test("drift is found and recorded, but never healed with digests in place of the values", async () => {
    const { Ledger } = await import("../../agent/ledger/ledger.ts");
    const { DriftWatcher } = await import("../../agent/drift/drift.ts");
    const dir = mkdtempSync(join(tmpdir(), "berth-drift-secret-"));
    const ledger = await Ledger.open(join(dir, "ledger.db"));
    try {
      const secretRef = { group: "", version: "v1", kind: "Secret", namespace: "ns", name: "creds" };
      const manifest: KubeObject = {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "creds", namespace: "ns" },
        stringData: { password: "hunter2-but-longer" },
      };
      const digest = (await ledger.putManifests([manifest])).get("ns_creds__Secret") ?? "";
      const owned: ManagedFieldsEntry = {
        manager: "berth",
        operation: "Apply",
        time: "2026-01-01T00:00:00Z",
        fieldsV1: { "f:data": { "f:password": {} } },
      };
      const live = (managedFields: ManagedFieldsEntry[]): KubeObject => ({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: "creds", namespace: "ns", managedFields },
      });
      const applied: KubeObject[] = [];
      const recorded: Array<{ action: string; message?: string; fields: string[] }> = [];
      const watcher = new DriftWatcher({
        get: async () => undefined,
        apply: async (obj) => {
          applied.push(obj);
          return obj;
        },
        owned: () => ({ ref: secretRef, digest }),
        getManifest: (d) => ledger.getManifest(d),
        recordDrift: (e) => recorded.push(e),
        policyOf: () => DriftPolicy.compile({ action: "heal", ignore: {}, rules: [] }, "test"),
      });
      watcher.observe({
        app: "a",
        ref: secretRef,
        before: live([owned]),
        after: live([
          { ...owned, fieldsV1: {} },
          { manager: "kubectl-edit", operation: "Update", fieldsV1: { "f:data": { "f:password": {} } } },
        ]),
      });
      await watcher.idle();
      expect(recorded).toEqual([
        {
          app: "a",
          ref: secretRef,
          manager: "kubectl-edit",
          fields: ["/data/password"],
          action: "heal-failed",
          message: "the ledger holds this Secret redacted (no ledger key), so it cannot be restored",
        } as never,
      ]);
      expect(applied).toEqual([]);
    } finally {
      ledger.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
