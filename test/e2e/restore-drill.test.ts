/**
 * The restore drill with the compiled binary: sync three commits of two apps (a CRD and objects of it, a
 * Namespace, Secrets, Deployments; web depends on base) into the shared control plane, then start a SECOND,
 * empty control plane, stop the Git server, and run `berth replay --all` against it: every object comes back
 * with the fields of the last healthy entry (compared field by field), Secrets included, all healthy, and
 * the replays are recorded. Without the key, the same drill restores everything but the Secrets and names them.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ledger } from "../../agent/ledger/ledger.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, runBerth } from "../support/binary.ts";
import { kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";

const SCRIPT = join(import.meta.dir, "..", "..", "scripts", "cluster", "cluster.sh");
const KEY = "5eed".repeat(16);
let cluster: TestCluster;
let git: GitFixture;
let dir: string;
let config: string;
let noKeyConfig: string;
let secondDir: string;
let second: TestCluster;
const id = Math.random().toString(16).slice(2, 8);
const ns = `drill-${id}`;
const crdGroup = `drill-${id}.berth.test`;

const widget = (name: string, size: number) =>
  `apiVersion: ${crdGroup}/v1\nkind: Widget\nmetadata:\n  name: ${name}\nspec:\n  size: ${size}\n  tags: [a, b]\n`;
const deployment = (name: string, image: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\n  annotations: {team: drill}\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: ${name}}}\n  template:\n    metadata: {labels: {app: ${name}}}\n    spec:\n      containers: [{name: c, image: "${image}", env: [{name: MODE, value: drill}]}]\n`;
const secret = (name: string, value: string) =>
  `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\ntype: Opaque\nstringData:\n  token: ${value}\n`;

beforeAll(async () => {
  berthBinary();
  cluster = await useCluster();
  git = await GitFixture.start();
  const url = git.createRepo("infra");
  dir = mkdtempSync(join(tmpdir(), "berth-drill-"));
  writeFileSync(join(dir, "ledger.key"), `${KEY}\n`);
  const yaml = (key: boolean) =>
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}"}\napps:\n  - {name: base, path: base}\n  - {name: web, path: web, namespace: ${ns}, dependsOn: [base], timeout: 90s}\nledger: {path: "${join(dir, "ledger.db")}"${key ? `, secretKeyFile: "${join(dir, "ledger.key")}"` : ""}}\n`;
  config = writeConfig(yaml(true));
  noKeyConfig = writeConfig(yaml(false));
  const commits: Array<Record<string, string | null>> = [
    {
      "base/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n  labels: {tier: drill}\n`,
      "base/crd.yaml": `apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.${crdGroup}\nspec:\n  group: ${crdGroup}\n  scope: Namespaced\n  names: {plural: widgets, singular: widget, kind: Widget}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}\n`,
      "web/api.yaml": deployment("api", "nginx:1.27"),
      "web/secret.yaml": secret("api-token", "drill-secret-one"),
      "web/widgets.yaml": widget("gizmo", 1),
    },
    {
      "web/worker.yaml": deployment("worker", "busybox:1.36"),
      "web/db-secret.yaml": secret("db-password", "drill-secret-two"),
      "web/widgets.yaml": `${widget("gizmo", 2)}---\n${widget("gadget", 5)}`,
    },
    {
      "web/api.yaml": deployment("api", "nginx:1.28"),
      "web/secret.yaml": secret("api-token", "drill-rotated"),
    },
  ];
  for (const files of commits) {
    git.commit("infra", files);
    const r = await runBerth(["sync", "--config", config, "--kubeconfig", cluster.kubeconfigPath]);
    if (r.code !== 0) throw new Error(`sync failed: ${r.stdout}${r.stderr}`);
  }
  // A second, empty control plane: the "new cluster" of the drill (the shared one is left alone).
  secondDir = mkdtempSync(join(tmpdir(), "berth-drill-cluster-"));
  const out = execFileSync("bash", [SCRIPT, "up"], {
    encoding: "utf8",
    env: { ...process.env, BERTH_CLUSTER_DIR: secondDir },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const kubeconfigPath = /^KUBECONFIG=(.+)$/m.exec(out)?.[1] ?? "";
  second = { ...cluster, kubeconfigPath };
  // The drill runs with Git down.
  await git.close();
}, 600_000);

afterAll(() => {
  try {
    kubectl(cluster, "delete", "namespace", ns, "--wait=false");
    kubectl(cluster, "delete", "crd", `widgets.${crdGroup}`, "--wait=false");
  } catch {}
  if (secondDir)
    execFileSync("bash", [SCRIPT, "down"], {
      env: { ...process.env, BERTH_CLUSTER_DIR: secondDir },
      stdio: "ignore",
    });
}, 120_000);

/** The manifests of an app's newest healthy entry, decrypted with the key. */
async function lastHealthyManifests(app: string): Promise<KubeObject[]> {
  const ledger = await Ledger.open(join(dir, "ledger.db"), { secretKey: Buffer.from(KEY, "hex") });
  try {
    const summary = ledger
      .list({ app, limit: 100 })
      .find((e) => e.outcome === "Succeeded" && e.trigger !== "replay");
    const entry = summary ? ledger.get(summary.id) : undefined;
    const out: KubeObject[] = [];
    for (const o of entry?.objects ?? []) {
      if (o.digest && o.action !== "deleted") out.push((await ledger.getManifest(o.digest)) as KubeObject);
    }
    return out;
  } finally {
    ledger.close();
  }
}

function getLive(target: TestCluster, m: KubeObject): KubeObject {
  const kind = m.apiVersion.includes("/") ? `${m.kind.toLowerCase()}s.${m.apiVersion.split("/")[0]}` : m.kind;
  const args = ["get", kind, m.metadata.name, "-o", "json"];
  if (m.metadata.namespace) args.push("-n", m.metadata.namespace);
  return JSON.parse(kubectl(target, ...args)) as KubeObject;
}

/** Every leaf of `want` equals the same path in `got`, reported by path. */
function mismatches(want: unknown, got: unknown, path: string): string[] {
  if (want !== null && typeof want === "object") {
    if (got === null || typeof got !== "object") return [`${path}: missing`];
    return Object.entries(want).flatMap(([k, v]) =>
      mismatches(
        v,
        (got as Record<string, unknown>)[k],
        Array.isArray(want) ? `${path}[${k}]` : `${path}.${k}`,
      ),
    );
  }
  return want === got ? [] : [`${path}: want ${JSON.stringify(want)}, got ${JSON.stringify(got)}`];
}

/** Compares a recorded manifest with the live object field by field (Secret stringData against data). */
function compare(target: TestCluster, m: KubeObject): string[] {
  const got = getLive(target, m);
  const { metadata, stringData, ...rest } = m;
  const problems = mismatches(rest, got, "");
  problems.push(
    ...mismatches({ labels: metadata.labels, annotations: metadata.annotations }, got.metadata, ".metadata"),
  );
  for (const [k, v] of Object.entries((stringData ?? {}) as Record<string, string>)) {
    const data = (got.data ?? {}) as Record<string, string>;
    if (Buffer.from(data[k] ?? "", "base64").toString() !== v)
      problems.push(`.data.${k}: not the recorded value`);
  }
  return problems.map((p) => `${m.kind}/${m.metadata.name}${p}`);
}

describe("the restore drill", () => {
  test("berth replay --all restores both apps into an empty control plane with Git down", async () => {
    expect(kubectl(second, "get", "namespaces", "-o", "name")).not.toContain(ns);
    const t0 = Date.now();
    const r = await runBerth(["replay", "--all", "--config", config, "--kubeconfig", second.kubeconfigPath]);
    const seconds = (Date.now() - t0) / 1000;
    expect(r.stderr).not.toContain("drill-secret");
    expect(r.stdout).not.toContain("drill-secret");
    expect(r.code).toBe(0);
    expect(r.stdout.indexOf("✓ base")).toBeGreaterThanOrEqual(0);
    expect(r.stdout.indexOf("✓ base")).toBeLessThan(r.stdout.indexOf("✓ web"));
    expect(seconds).toBeLessThan(60);

    const base = await lastHealthyManifests("base");
    const web = await lastHealthyManifests("web");
    expect(base.map((m) => m.kind).sort()).toEqual(["CustomResourceDefinition", "Namespace"]);
    expect(web.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual([
      "Deployment/api",
      "Deployment/worker",
      "Secret/api-token",
      "Secret/db-password",
      "Widget/gadget",
      "Widget/gizmo",
    ]);
    for (const m of [...base, ...web]) expect(compare(second, m)).toEqual([]);
    for (const name of ["api", "worker"]) {
      const dep = getLive(second, {
        apiVersion: "apps/v1",
        kind: "Deployment",
        metadata: { name, namespace: ns },
      });
      expect((dep.status as { readyReplicas?: number }).readyReplicas).toBe(2);
    }

    const ledger = await Ledger.open(join(dir, "ledger.db"));
    try {
      for (const app of ["base", "web"]) {
        const last = ledger.list({ app, limit: 1 })[0];
        expect(last).toMatchObject({ trigger: "replay", outcome: "Succeeded", health: "Current" });
        expect(last?.message).toMatch(/^replay of entry \d+: \d+ created/);
      }
      expect(ledger.verify().ok).toBe(true);
    } finally {
      ledger.close();
    }
  }, 300_000);

  test("without the key the drill restores everything but the Secrets and names each one", async () => {
    kubectl(second, "delete", "namespace", ns, "--wait=true", "--timeout=60s");
    const r = await runBerth([
      "replay",
      "--all",
      "--config",
      noKeyConfig,
      "--kubeconfig",
      second.kubeconfigPath,
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`! not restored: Secret/${ns}/api-token: encrypted with key`);
    expect(r.stdout).toContain(`! not restored: Secret/${ns}/db-password: encrypted with key`);
    const web = await lastHealthyManifests("web");
    for (const m of web.filter((o) => o.kind !== "Secret")) expect(compare(second, m)).toEqual([]);
    expect(kubectl(second, "get", "secrets", "-n", ns, "-o", "name")).not.toContain("api-token");
  }, 300_000);
});
