/**
 * `berth plan` (compiled binary) across dependsOn on the real control plane: app A holds a CRD and a Namespace
 * that are not in the cluster yet, app B (dependsOn A) a custom resource of that CRD and a ConfigMap in that
 * Namespace. The plan exits 0 and marks B's objects "will be validated after A"; without dependsOn the same
 * objects are errors; once A is applied they are validated as usual.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, runBerth } from "../support/binary.ts";
import { kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";

let cluster: TestCluster;
let git: GitFixture;
let url: string;
const id = randomBytes(3).toString("hex");
const group = `t${id}.berth.test`;
const ns = `plan-after-${id}`;

const crd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: backups.${group}}
spec:
  group: ${group}
  scope: Namespaced
  names: {plural: backups, singular: backup, kind: Backup, listKind: BackupList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, properties: {schedule: {type: string}}}
`;

beforeAll(async () => {
  berthBinary();
  cluster = await useCluster();
  git = await GitFixture.start();
  url = git.createRepo("infra");
  git.commit("infra", {
    "platform/crd.yaml": crd,
    "platform/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n`,
    "backups/nightly.yaml": `apiVersion: ${group}/v1\nkind: Backup\nmetadata: {name: nightly}\nspec: {schedule: "0 3 * * *"}\n`,
    "backups/settings.yaml":
      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {keep: '7'}\n",
  });
}, 600_000);

afterAll(async () => {
  await git?.close();
  for (const what of [
    ["namespace", ns],
    ["crd", `backups.${group}`],
  ]) {
    try {
      kubectl(cluster, "delete", ...(what as [string, string]), "--wait=false");
    } catch {}
  }
});

const config = (dependsOn: string) =>
  writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}"}\napps:\n  - {name: platform, path: platform}\n  - {name: backups, path: backups, namespace: ${ns}${dependsOn}}\nledger: {path: $DIR/ledger.db}\n`,
  );
const env = () => ({ KUBECONFIG: cluster.kubeconfigPath });

describe("berth plan across dependsOn", () => {
  test("on a fresh cluster, B's objects will be validated after A, and the plan exits 0", async () => {
    const path = config(", dependsOn: [platform]");
    const r = await runBerth(["plan", "--config", path], env());
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`+ CustomResourceDefinition/backups.${group}  created`);
    expect(r.stdout).toContain(
      `+ Backup/${ns}/nightly  created  (will be validated after platform: its CustomResourceDefinition comes from app platform)`,
    );
    expect(r.stdout).toContain(
      `+ ConfigMap/${ns}/settings  created  (will be validated after platform: its Namespace ${ns} comes from app platform)`,
    );
    expect(r.stdout).not.toContain("✗");

    // One app alone: its dependencies are rendered to know what they create.
    const one = await runBerth(["plan", "--config", path, "--app", "backups", "--json"], env());
    expect(one.code).toBe(0);
    const [plan] = JSON.parse(one.stdout) as Array<{
      app: string;
      errors: unknown[];
      changes: Array<{ subject: string; note?: string }>;
    }>;
    expect(plan?.app).toBe("backups");
    expect(plan?.errors).toEqual([]);
    expect(plan?.changes.map((c) => c.note)).toEqual([
      "will be validated after platform: its CustomResourceDefinition comes from app platform",
      `will be validated after platform: its Namespace ${ns} comes from app platform`,
    ]);
    // Nothing was written.
    expect(() => kubectl(cluster, "get", "namespace", ns)).toThrow();
  }, 120_000);

  test("without dependsOn the kind is an error and the plan exits 1", async () => {
    const r = await runBerth(["plan", "--config", config("")], env());
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("✗ Backup/nightly (backups/nightly.yaml#0)");
    expect(r.stdout).toContain(`kind Backup of apiVersion ${group}/v1 is not served`);
  }, 120_000);

  test("after a sync of A, B's objects are validated by the server as usual", async () => {
    const path = config(", dependsOn: [platform]");
    const synced = await runBerth(["sync", "--config", path, "--app", "platform"], env());
    expect(synced.code).toBe(0);
    const r = await runBerth(["plan", "--config", path, "--app", "backups"], env());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`+ Backup/${ns}/nightly  created\n`);
    expect(r.stdout).toContain(`+ ConfigMap/${ns}/settings  created\n`);
    expect(r.stdout).not.toContain("validated after");
  }, 120_000);
});
