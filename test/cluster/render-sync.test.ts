/**
 * Kustomize overlays, a Helm chart, variable substitution (config, file, cluster ConfigMap) and an
 * age-encrypted SOPS Secret, fetched from the real Git server and synced into the real control plane.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { parseAllDocuments } from "yaml";
import type { Wired } from "../../agent/cli/wire.ts";
import { newAgeIdentity } from "../../agent/render/sops.ts";
import { syncApp, wireFor, writeConfig } from "../support/berth.ts";
import { freshNamespace, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { rawDatabaseBytes } from "../support/ledger-fixtures.ts";
import { toolPaths } from "../support/tools.ts";

const FIXTURE = join(import.meta.dir, "../fixtures/render/repo");
const PLAINTEXT = "s3cr3t-value-7f3a";
let cluster: TestCluster;
let git: GitFixture;
let w: Wired;
let tools: { kustomize: string; helm: string; sops: string };
let ns: { staging: string; prod: string; web: string };
let ledgerDir: string;
let encrypted: string;

function fixtureFiles(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const d of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, d.name);
      if (d.isDirectory()) walk(full);
      else out[relative(FIXTURE, full)] = readFileSync(full, "utf8");
    }
  };
  walk(FIXTURE);
  return out;
}

function live(namespace: string, kind: string, name: string): Record<string, any> {
  return JSON.parse(kubectl(cluster, "get", kind, name, "-n", namespace, "-o", "json"));
}

beforeAll(async () => {
  [cluster, tools] = await Promise.all([useCluster(), toolPaths()]);
  ns = {
    staging: await freshNamespace(cluster, "rs-stg"),
    prod: await freshNamespace(cluster, "rs-prod"),
    web: await freshNamespace(cluster, "rs-web"),
  };
  for (const n of [ns.staging, ns.prod]) {
    kubectl(cluster, "create", "configmap", "cluster-vars", "-n", n, `--from-literal=REGION=region-of-${n}`);
  }
  const key = await newAgeIdentity();
  const secret = `apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\nstringData:\n  password: ${PLAINTEXT}\n`;
  const tmp = mkdtempSync(join(tmpdir(), "berth-sops-"));
  writeFileSync(join(tmp, "secret.yaml"), secret);
  encrypted = execFileSync(
    tools.sops,
    [
      "--encrypt",
      "--age",
      key.recipient,
      "--encrypted-regex",
      "^(data|stringData)$",
      join(tmp, "secret.yaml"),
    ],
    {
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "", HOME: tmp },
    },
  );
  git = await GitFixture.start();
  const url = git.createRepo("infra");
  git.commit(
    "infra",
    { ...fixtureFiles(), "secrets/db.yaml": encrypted },
    { message: "kustomize, helm and sops" },
  );
  const config = writeConfig(`apiVersion: berth.dev/v1alpha1
kind: Agent
source: {url: "${url}", ref: main, interval: 5s}
render: {kustomize: "${tools.kustomize}", helm: "${tools.helm}", sops: "${tools.sops}", ageKeyFile: $DIR/age.key}
apps:
  - name: staging
    path: kustomize/overlays/staging
    namespace: ${ns.staging}
    timeout: 90s
    vars: {CLUSTER: from-config}
    varsFrom: [{file: $DIR/vars.env}, {kind: ConfigMap, name: cluster-vars}]
  - name: prod
    path: kustomize/overlays/prod
    namespace: ${ns.prod}
    timeout: 90s
    vars: {CLUSTER: from-config}
    varsFrom: [{file: $DIR/vars.env}, {kind: ConfigMap, name: cluster-vars}]
  - name: web
    path: charts/web
    namespace: ${ns.web}
    helm: {chart: charts/web, values: [values/prod.yaml], set: {color: green}, releaseName: shop}
  - {name: secrets, path: secrets, namespace: ${ns.staging}}
  - name: broken
    path: kustomize/base
    namespace: ${ns.web}
    vars: {CLUSTER: x}
    varsFrom: [{kind: ConfigMap, name: cluster-vars, optional: true}]
ledger: {path: $DIR/ledger.db}
`);
  ledgerDir = dirname(config);
  writeFileSync(join(ledgerDir, "age.key"), `# created for the test\n${key.identity}\n`, { mode: 0o600 });
  writeFileSync(join(ledgerDir, "vars.env"), "TIER=gold\nCLUSTER=from-file\n");
  w = await wireFor(config, cluster.kubeconfigPath);
}, 600_000);

afterAll(async () => {
  w?.close();
  await git?.close();
  for (const n of Object.values(ns ?? {})) {
    try {
      kubectl(cluster, "delete", "namespace", n, "--wait=false");
    } catch {}
  }
});

/** What `kustomize build` prints by hand for an overlay, with the variables filled the way the app fills them. */
function kustomizeByHand(path: string, region: string): Array<Record<string, any>> {
  const repo = mkdtempSync(join(tmpdir(), "berth-hand-"));
  cpSync(FIXTURE, repo, { recursive: true });
  const out = execFileSync(tools.kustomize, ["build", path], { cwd: repo, encoding: "utf8" })
    .replaceAll("${CLUSTER}", "from-config")
    .replaceAll("${TIER:=standard}", "gold")
    .replaceAll("${REGION}", region);
  return parseAllDocuments(out).map((d) => d.toJS());
}

describe("rendered apps synced into the real control plane", () => {
  for (const overlay of ["staging", "prod"] as const) {
    test(`the ${overlay} overlay is applied as kustomize builds it, variables from config, file and ConfigMap`, async () => {
      const r = await syncApp(w, overlay);
      expect(r).toMatchObject({ outcome: "Succeeded", reason: "Succeeded" });
      const hand = kustomizeByHand(`kustomize/overlays/${overlay}`, `region-of-${ns[overlay]}`);
      const cm = hand.find((o) => o.kind === "ConfigMap");
      const deployment = hand.find((o) => o.kind === "Deployment");
      const liveCm = live(ns[overlay], "configmap", cm?.metadata.name);
      expect(liveCm.data).toEqual(cm?.data);
      expect(liveCm.data).toEqual({
        greeting: "hello",
        cluster: "from-config",
        tier: "gold",
        region: `region-of-${ns[overlay]}`,
      });
      const liveDeployment = live(ns[overlay], "deployment", deployment?.metadata.name);
      expect(liveDeployment.spec.replicas).toBe(deployment?.spec.replicas);
      expect(liveDeployment.spec.template.spec.containers[0].image).toBe(
        deployment?.spec.template.spec.containers[0].image,
      );
      expect(liveDeployment.metadata.labels["app.kubernetes.io/part-of"]).toBe("shop");
    }, 120_000);
  }

  test("the Helm chart is applied with its values; its hook is reported and not applied", async () => {
    const r = await syncApp(w, "web");
    expect(r).toMatchObject({ outcome: "Succeeded", reason: "Succeeded" });
    const hand = execFileSync(
      tools.helm,
      [
        "template",
        "shop",
        join(FIXTURE, "charts/web"),
        "--namespace",
        ns.web,
        "--values",
        join(FIXTURE, "values/prod.yaml"),
        "--set",
        "color=green",
      ],
      { encoding: "utf8", env: { PATH: process.env.PATH ?? "", HOME: tmpdir() } },
    );
    const cm = parseAllDocuments(hand)
      .map((d) => d.toJS())
      .find((o) => o?.kind === "ConfigMap");
    expect(live(ns.web, "configmap", "shop-settings").data).toEqual(cm.data);
    expect(() => kubectl(cluster, "get", "job", "shop-migrate", "-n", ns.web)).toThrow();
  }, 120_000);

  test("an undefined variable fails the sync naming the object and the variable; nothing is applied", async () => {
    const r = await syncApp(w, "broken");
    expect(r).toMatchObject({ outcome: "Failed", reason: "BuildFailed" });
    expect(r.message).toContain(
      'ConfigMap/shop-settings: variable "REGION" is not defined and has no default',
    );
    expect(
      kubectl(
        cluster,
        "get",
        "configmaps,deployments",
        "-A",
        "-l",
        "berth.dev/app=broken",
        "-o",
        "name",
      ).trim(),
    ).toBe("");
  }, 60_000);

  test("an age-encrypted SOPS Secret is decrypted and applied; the ledger holds no plaintext", async () => {
    const r = await syncApp(w, "secrets");
    expect(r).toMatchObject({ outcome: "Succeeded", reason: "Succeeded" });
    const secret = live(ns.staging, "secret", "db");
    expect(Buffer.from(secret.data.password, "base64").toString()).toBe(PLAINTEXT);
    expect(secret.sops).toBeUndefined();
    const b64 = Buffer.from(PLAINTEXT).toString("base64");
    const bytes = rawDatabaseBytes(join(ledgerDir, "ledger.db")).toString("latin1");
    expect(bytes.length).toBeGreaterThan(0);
    expect(bytes.includes(PLAINTEXT)).toBe(false);
    expect(bytes.includes(b64)).toBe(false);
  }, 60_000);

  test("a tampered SOPS file is refused by its MAC; the Secret applied before stays", async () => {
    git.commit(
      "infra",
      { "secrets/db.yaml": encrypted.replace("name: db", "name: db2") },
      { message: "tamper" },
    );
    const r = await syncApp(w, "secrets");
    expect(r).toMatchObject({ outcome: "Failed", reason: "BuildFailed" });
    expect(r.message).toContain("secrets/db.yaml: SOPS MAC mismatch");
    expect(r.message).not.toContain(PLAINTEXT);
    expect(Buffer.from(live(ns.staging, "secret", "db").data.password, "base64").toString()).toBe(PLAINTEXT);
    expect(() => kubectl(cluster, "get", "secret", "db2", "-n", ns.staging)).toThrow();
  }, 60_000);
});
