/**
 * Sync and health rules against the real control plane and Git server: a deny rule stops a commit
 * adding a Secret outside an allowed namespace (nothing applied, the ledger says why), protect stops a
 * prune, and a custom CRD health rule decides when a sync is healthy.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Wired } from "../../agent/cli/wire.ts";
import { syncApp, wireFor, writeConfig } from "../support/berth.ts";
import { kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";

let cluster: TestCluster;
let git: GitFixture;
let w: Wired;
const id = Math.random().toString(16).slice(2, 8);
const ns = `rules-${id}`;
const other = `rules-other-${id}`;
const group = `rules-${id}.berth.test`;

const RULES = `apiVersion: berth.dev/v1alpha1
kind: Rules
sync:
  - name: secrets-stay-home
    when: >-
      change.object.kind == 'Secret' &&
      change.object.metadata.?namespace.orValue('') != '${ns}'
    verdict: deny
    message: Secrets only in ${ns}
  - name: keep-the-keepsake
    when: change.object.metadata.name == 'keepsake'
    verdict: protect
    message: never delete the keepsake
health:
  - name: gadget-phase
    apiVersion: ${group}/v1
    kind: Gadget
    failed: status.?phase.orValue('') == 'Broken'
    current: status.?phase.orValue('') == 'Ready'
`;

const base = {
  "app/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ${other}}\n`,
  "app/cm.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keepsake}\ndata: {a: "1"}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\ndata: {a: "1"}\n`,
};

beforeAll(async () => {
  cluster = await useCluster();
  git = await GitFixture.start();
  const url = git.createRepo("infra");
  git.commit("infra", base, { message: "base" });
  const rulesDir = mkdtempSync(join(tmpdir(), "berth-rules-"));
  const rulesFile = join(rulesDir, "rules.yaml");
  writeFileSync(rulesFile, RULES);
  const config = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", ref: main, interval: 5s}\napps:\n  - {name: app, path: app, namespace: ${ns}, timeout: 30s}\nrules: ["${rulesFile}"]\nledger: {path: $DIR/ledger.db}\n`,
  );
  w = await wireFor(config, cluster.kubeconfigPath);
}, 600_000);

afterAll(async () => {
  w?.close();
  await git?.close();
  for (const args of [
    ["delete", "namespace", ns, "--wait=false"],
    ["delete", "namespace", other, "--wait=false"],
    ["delete", "crd", `gadgets.${group}`, "--wait=false"],
  ]) {
    try {
      kubectl(cluster, ...args);
    } catch {}
  }
});

const exists = (...args: string[]) => {
  try {
    kubectl(cluster, "get", ...args);
    return true;
  } catch {
    return false;
  }
};

/** Sets the status phase of Gadget g1, as its controller would. */
const setGadgetPhase = (phase: string) =>
  kubectl(
    cluster,
    "patch",
    `gadgets.${group}`,
    "g1",
    "-n",
    ns,
    "--type=merge",
    "-p",
    JSON.stringify({ status: { phase } }),
  );

describe("sync rules against the real control plane", () => {
  test("the first sync passes the rules", async () => {
    const r = await syncApp(w, "app");
    expect(r).toMatchObject({ outcome: "Succeeded" });
    expect(exists("configmap", "keepsake", "-n", ns)).toBe(true);
  });

  test("a deny rule stops a commit adding a Secret outside the allowed namespace: nothing applied, the ledger says why", async () => {
    git.commit(
      "infra",
      {
        "app/secret.yaml": `apiVersion: v1\nkind: Secret\nmetadata: {name: stray, namespace: ${other}}\nstringData: {k: v}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: fine}\nstringData: {k: v}\n`,
        "app/cm.yaml": `${base["app/cm.yaml"]}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {a: "1"}\n`,
      },
      { message: "add secrets" },
    );
    const r = await syncApp(w, "app");
    expect(r).toMatchObject({ outcome: "Failed", reason: "PlanRejected" });
    expect(r.message).toContain("denied by rule secrets-stay-home at ");
    expect(r.message).toContain("rules.yaml:4");
    expect(r.message).toContain(`Secret/${other}/stray`);
    expect(r.message).not.toContain("Secret/" + ns + "/fine");
    // Nothing of the commit was applied, not even the allowed objects.
    expect(exists("secret", "stray", "-n", other)).toBe(false);
    expect(exists("secret", "fine", "-n", ns)).toBe(false);
    expect(exists("configmap", "extra", "-n", ns)).toBe(false);
    const entry = w.ledger.get(r.entry);
    expect(entry?.reason).toBe("PlanRejected");
    expect(entry?.message).toContain("Secrets only in");
  });

  test("protect stops a prune: the object leaves Git but stays in the cluster", async () => {
    git.commit(
      "infra",
      {
        "app/secret.yaml": null,
        "app/cm.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {a: "1"}\n`,
      },
      { message: "drop the config maps" },
    );
    const r = await syncApp(w, "app");
    expect(r).toMatchObject({ outcome: "Succeeded" });
    expect(exists("configmap", "plain", "-n", ns)).toBe(false);
    expect(exists("configmap", "keepsake", "-n", ns)).toBe(true);
    const note = r.plan?.changes.find((c) => c.ref.name === "keepsake");
    expect(note?.action).toBe("skipped");
    expect(note?.note).toContain("protected by rule keep-the-keepsake");
  });

  test("a custom CRD health rule decides when the sync is healthy (the test patches the status)", async () => {
    git.commit(
      "infra",
      {
        "app/crd.yaml": `apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: gadgets.${group}}\nspec:\n  group: ${group}\n  scope: Namespaced\n  names: {plural: gadgets, singular: gadget, kind: Gadget}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}\n`,
        "app/gadget.yaml": `apiVersion: ${group}/v1\nkind: Gadget\nmetadata: {name: g1}\nspec: {size: 1}\n`,
      },
      { message: "add a gadget" },
    );
    const pending = syncApp(w, "app");
    let settled = false;
    void pending.finally(() => {
      settled = true;
    });
    // Until the status says Ready the rule keeps the sync waiting. Without the rule the Gadget (no status, no
    // conditions) would be Current at once by the generic conditions pack, so a sync still waiting here is the
    // custom rule's doing.
    let patched = false;
    for (let i = 0; i < 100 && !patched; i++) {
      await new Promise((r) => setTimeout(r, 200));
      if (exists(`gadgets.${group}`, "g1", "-n", ns)) {
        await new Promise((r) => setTimeout(r, 1000));
        expect(settled).toBe(false);
        setGadgetPhase("Ready");
        patched = true;
      }
    }
    expect(patched).toBe(true);
    const r = await pending;
    expect(r).toMatchObject({ outcome: "Succeeded" });
    expect(r.health.find((h) => h.ref.kind === "Gadget")?.message).toBe(
      "current of health rule gadget-phase is true",
    );

    // A Broken status fails the next sync's health check, naming the rule's verdict.
    setGadgetPhase("Broken");
    const again = await syncApp(w, "app");
    expect(again).toMatchObject({ outcome: "Failed", reason: "HealthCheckFailed" });
    expect(again.message).toContain("Gadget");
    expect(again.health.find((h) => h.ref.kind === "Gadget")).toMatchObject({
      status: "Failed",
      message: "failed of health rule gadget-phase is true",
    });
  }, 60_000);
});
