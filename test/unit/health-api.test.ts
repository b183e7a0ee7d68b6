import { describe, expect, test } from "bun:test";
import {
  assessHealth,
  defaultHealthChecker,
  type HealthAssessor,
  type HealthResult,
  kindCheckFor,
  kindChecks,
} from "../../agent/health/assess.ts";
import { SCHEDULE_WINDOW_MS } from "../../agent/health/pod.ts";
import type { KubeObject } from "../../agent/object/object.ts";

function obj(apiVersion: string, kind: string, rest: Record<string, unknown> = {}): KubeObject {
  return { apiVersion, kind, metadata: { name: "x", namespace: "ns" }, ...rest };
}

const readyDeployment = obj("apps/v1", "Deployment", {
  metadata: { name: "web", namespace: "api", generation: 1 },
  spec: { replicas: 1 },
  status: {
    observedGeneration: 1,
    replicas: 1,
    updatedReplicas: 1,
    readyReplicas: 1,
    availableReplicas: 1,
    conditions: [{ type: "Available", status: "True" }],
  },
});

describe("assessHealth", () => {
  test("rules are keyed by group and kind, as kstatus's legacyTypes", () => {
    expect(kindCheckFor(obj("apps/v1", "Deployment"))).toBe(kindChecks["apps/Deployment"]);
    expect(kindCheckFor(obj("extensions/v1beta1", "Deployment"))).toBe(kindChecks["extensions/Deployment"]);
    expect(kindCheckFor(obj("v1", "Pod"))).toBe(kindChecks.Pod);
    expect(kindCheckFor(obj("example.com/v1", "Pod"))).toBeUndefined();
    expect(kindCheckFor(obj("v1", "toString"))).toBeUndefined();
  });

  test("a Deployment without progressDeadlineSeconds is Current once counts and Available agree", () => {
    expect(assessHealth(readyDeployment)).toEqual({
      status: "Current",
      reason: "Current",
      message: "Deployment is available. Replicas: 1",
    });
  });

  test("Stalled and Reconciling conditions win over the kind's own rule", () => {
    const stalled = structuredClone(readyDeployment);
    (stalled.status as { conditions: unknown[] }).conditions.push({
      type: "Stalled",
      status: "True",
      reason: "Quota",
      message: "no room",
    });
    expect(assessHealth(stalled)).toEqual({
      status: "Failed",
      reason: "Quota",
      message: "Stalled: Quota: no room",
    });
    const reconciling = obj("example.com/v1", "Widget", {
      status: { conditions: [{ type: "Reconciling", status: "True" }] },
    });
    expect(assessHealth(reconciling)).toEqual({
      status: "InProgress",
      reason: "Progressing",
      message: "Reconciling",
    });
  });

  test("the generation check needs both fields and treats any difference as not observed", () => {
    const noObserved = obj("example.com/v1", "Widget", {
      metadata: { name: "w", generation: 5 },
      status: {},
    });
    expect(assessHealth(noObserved).status).toBe("Current");
    const ahead = obj("example.com/v1", "Widget", {
      metadata: { name: "w", generation: 1 },
      status: { observedGeneration: 2 },
    });
    expect(assessHealth(ahead)).toMatchObject({
      status: "InProgress",
      reason: "LatestGenerationNotObserved",
      message: expect.stringContaining("generation 1"),
    });
  });

  test("malformed status fields read as absent instead of throwing", () => {
    const odd = obj("apps/v1", "Deployment", {
      spec: { replicas: "2" },
      status: { replicas: "2", conditions: "nope" },
    });
    expect(assessHealth(odd)).toEqual({
      status: "InProgress",
      reason: "Progressing",
      message: "0/1 replicas created",
    });
    const badConditions = obj("example.com/v1", "Widget", {
      status: { conditions: [null, 3, { status: "True" }] },
    });
    expect(assessHealth(badConditions)).toEqual({
      status: "Current",
      reason: "Current",
      message: "Resource is current",
    });
    expect(assessHealth(obj("v1", "Pod", { status: null })).status).toBe("InProgress");
  });

  test("an unschedulable Pod gets the schedule window, measured from creationTimestamp against `now`", () => {
    const created = Date.parse("2025-03-01T10:00:00Z");
    const pod = obj("v1", "Pod", {
      metadata: { name: "p", creationTimestamp: "2025-03-01T10:00:00Z" },
      status: {
        phase: "Pending",
        conditions: [{ type: "PodScheduled", status: "False", reason: "Unschedulable" }],
      },
    });
    expect(assessHealth(pod, { now: created + SCHEDULE_WINDOW_MS - 1 }).status).toBe("InProgress");
    expect(assessHealth(pod, { now: created + SCHEDULE_WINDOW_MS }).status).toBe("Failed");
    expect(defaultHealthChecker.assess(pod).status).toBe("Failed");
  });

  test("it does not modify the object", () => {
    const copy = structuredClone(readyDeployment);
    assessHealth(readyDeployment);
    expect(readyDeployment).toEqual(copy);
  });
});

describe("HealthAssessor", () => {
  test("the default checker is assessHealth", () => {
    expect(defaultHealthChecker.assess(readyDeployment)).toEqual(assessHealth(readyDeployment));
  });

  test("a replacement can wrap the built-in rules behind the same interface", () => {
    const strict: HealthAssessor = {
      assess(o): HealthResult {
        if (o.kind === "ConfigMap" && !o.data)
          return { status: "Failed", reason: "Failed", message: "ConfigMap has no data" };
        return defaultHealthChecker.assess(o);
      },
    };
    expect(strict.assess(obj("v1", "ConfigMap"))).toEqual({
      status: "Failed",
      reason: "Failed",
      message: "ConfigMap has no data",
    });
    expect(strict.assess(readyDeployment).status).toBe("Current");
  });
});
