import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { assessHealth } from "../../agent/health/assess.ts";
import type { HealthStatus, KubeObject } from "../../agent/object/object.ts";

const dir = new URL("../fixtures/health/", import.meta.url);
const STATUSES: HealthStatus[] = ["Current", "InProgress", "Failed", "Terminating", "NotFound", "Unknown"];

interface Fixture {
  file: string;
  status: HealthStatus;
  message: string;
  now: number | undefined;
  obj: KubeObject;
}

/** Reads one fixture: an expectation document, then the object. */
function load(file: string): Fixture {
  const docs = parseAllDocuments(readFileSync(new URL(file, dir), "utf8"));
  if (!Array.isArray(docs) || docs.length !== 2) throw new Error(`${file}: expected 2 YAML documents`);
  const [head, body] = docs.map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]?.message}`);
    return d.toJS() as Record<string, unknown>;
  });
  const expected = head?.expected as { status?: unknown; message?: unknown } | undefined;
  if (
    !expected ||
    !STATUSES.includes(expected.status as HealthStatus) ||
    typeof expected.message !== "string"
  ) {
    throw new Error(`${file}: first document needs expected.status (a HealthStatus) and expected.message`);
  }
  const now = typeof head?.now === "string" ? Date.parse(head.now) : undefined;
  return {
    file,
    status: expected.status as HealthStatus,
    message: expected.message,
    now,
    obj: body as KubeObject,
  };
}

const fixtures = readdirSync(dir)
  .filter((f) => f.endsWith(".yaml"))
  .sort()
  .map(load);

describe("health fixtures", () => {
  test("there are enough of them, named <kind>-<state>.yaml", () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(40);
    for (const f of fixtures) expect(f.file.startsWith(`${f.obj.kind.toLowerCase()}-`)).toBe(true);
  });

  test("every kind family has its key states", () => {
    const names = new Set(fixtures.map((f) => f.file.replace(/\.yaml$/, "")));
    const required = [
      ...[
        "available",
        "progressing",
        "deadline-exceeded",
        "paused",
        "scaled-to-zero",
        "old-generation",
        "terminating",
      ].map((s) => `deployment-${s}`),
      ...["ready", "progressing", "scaled-to-zero", "old-generation", "terminating"].map(
        (s) => `statefulset-${s}`,
      ),
      ...["ready", "progressing", "scaled-to-zero", "old-generation", "terminating"].map(
        (s) => `daemonset-${s}`,
      ),
      ...["available", "progressing", "scaled-to-zero", "old-generation", "terminating"].map(
        (s) => `replicaset-${s}`,
      ),
      ...["complete", "running", "failed", "terminating"].map((s) => `job-${s}`),
      ...[
        "ready",
        "running-not-ready",
        "crashloop",
        "failed",
        "succeeded",
        "unschedulable",
        "terminating",
      ].map((s) => `pod-${s}`),
      "persistentvolumeclaim-bound",
      "persistentvolumeclaim-pending",
      "persistentvolumeclaim-terminating",
      "service-clusterip",
      "service-loadbalancer-pending",
      "service-loadbalancer-ready",
      "customresourcedefinition-established",
      "customresourcedefinition-names-not-accepted",
      "namespace-active",
      "namespace-terminating",
      "kustomization-ready",
      "kustomization-reconciling",
      "kustomization-stalled",
      "kustomization-no-status",
    ];
    expect(required.filter((r) => !names.has(r))).toEqual([]);
  });

  for (const f of fixtures) {
    test(`${f.file} → ${f.status}`, () => {
      const result = assessHealth(f.obj, f.now === undefined ? {} : { now: f.now });
      expect({ status: result.status, message: result.message }).toEqual({
        status: f.status,
        message: expect.stringContaining(f.message),
      });
    });
  }
});
