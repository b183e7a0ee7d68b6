/**
 * Flux `healthCheckExprs` snippets work unchanged as berth health rules and give the status Flux gives: Flux
 * evaluates inProgress → failed → current, none true means InProgress, and a stale observedGeneration is
 * InProgress first. The Cluster and SealedSecret entries are copied verbatim from Flux's CEL cheatsheet
 * (fluxcd.io/flux/cheatsheets/cel-healthchecks); the Certificate entry is ours, written in the same style to
 * exercise an inProgress expression, which the cheatsheet's entries do not have.
 */
import { describe, expect, test } from "bun:test";
import type { KubeObject } from "../../agent/object/object.ts";
import { evaluateHealthRule, ruleFor } from "../../agent/policy/health-rules.ts";
import { parseRuleFile } from "../../agent/policy/rule-file.ts";

// The snippets as written for Flux, under `health:` instead of `healthCheckExprs:`.
const FLUX_SNIPPETS = `apiVersion: berth.dev/v1alpha1
kind: Rules
health:
  - name: capi-cluster
    apiVersion: cluster.x-k8s.io/v1beta1
    kind: Cluster
    failed: status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'False')
    current: status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'True')
  - name: sealed-secret
    apiVersion: bitnami.com/v1alpha1
    kind: SealedSecret
    failed: status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'False')
    current: status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'True')
  - name: cert-manager-certificate
    apiVersion: cert-manager.io/v1
    kind: Certificate
    inProgress: status.conditions.filter(e, e.type == 'Issuing').all(e, e.status == 'True')
    failed: status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'False')
    current: status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'True')
`;
const rules = parseRuleFile(FLUX_SNIPPETS, "flux-snippets.yaml").health;

const obj = (
  apiVersion: string,
  kind: string,
  conditions: Array<{ type: string; status: string }>,
  gen = 1,
  seen = 1,
) =>
  ({
    apiVersion,
    kind,
    metadata: { name: "x", namespace: "ns", generation: gen },
    status: { observedGeneration: seen, conditions },
  }) as unknown as KubeObject;

const CASES: Array<[string, KubeObject, string]> = [
  [
    "CAPI Cluster Ready=True",
    obj("cluster.x-k8s.io/v1beta1", "Cluster", [{ type: "Ready", status: "True" }]),
    "Current",
  ],
  [
    "CAPI Cluster Ready=False",
    obj("cluster.x-k8s.io/v1beta1", "Cluster", [{ type: "Ready", status: "False" }]),
    "Failed",
  ],
  [
    "CAPI Cluster Ready=Unknown (neither failed nor current)",
    obj("cluster.x-k8s.io/v1beta1", "Cluster", [{ type: "Ready", status: "Unknown" }]),
    "InProgress",
  ],
  [
    "CAPI Cluster with a newer generation than observed",
    obj("cluster.x-k8s.io/v1beta1", "Cluster", [{ type: "Ready", status: "True" }], 3, 2),
    "InProgress",
  ],
  [
    "SealedSecret Synced=True",
    obj("bitnami.com/v1alpha1", "SealedSecret", [{ type: "Synced", status: "True" }]),
    "Current",
  ],
  [
    "SealedSecret Synced=False",
    obj("bitnami.com/v1alpha1", "SealedSecret", [{ type: "Synced", status: "False" }]),
    "Failed",
  ],
  [
    "Certificate being issued (inProgress is checked first)",
    obj("cert-manager.io/v1", "Certificate", [
      { type: "Issuing", status: "True" },
      { type: "Ready", status: "False" },
    ]),
    "InProgress",
  ],
  [
    "Certificate Ready=True, no Issuing condition: filter() is empty, all() is true, so inProgress wins as in Flux",
    obj("cert-manager.io/v1", "Certificate", [{ type: "Ready", status: "True" }]),
    "InProgress",
  ],
  [
    "Certificate Ready=True, Issuing=False",
    obj("cert-manager.io/v1", "Certificate", [
      { type: "Issuing", status: "False" },
      { type: "Ready", status: "True" },
    ]),
    "Current",
  ],
];

describe("Flux healthCheckExprs snippets", () => {
  for (const [name, object, status] of CASES) {
    test(`${name} → ${status}`, () => {
      const rule = ruleFor(rules, object);
      expect(rule).toBeDefined();
      if (!rule) return;
      expect(evaluateHealthRule(rule, object).status).toBe(status as never);
    });
  }

  test("a snippet over a missing field is an evaluation error naming the rule, not a silent status", () => {
    const bare = {
      apiVersion: "bitnami.com/v1alpha1",
      kind: "SealedSecret",
      metadata: { name: "s", namespace: "ns" },
    } as unknown as KubeObject;
    const rule = ruleFor(rules, bare);
    if (!rule) throw new Error("no rule for SealedSecret");
    const verdict = evaluateHealthRule(rule, bare);
    expect(verdict.status).toBe("Unknown");
    expect(verdict.message).toContain("sealed-secret");
  });
});
