/**
 * One app's bad input fails only that app, through a real sync on the real control plane: app A's directory holds
 * a symlink that leaves the repository, app B's kustomization names a remote base; Kustomize app C and Helm app D
 * in the same commit still sync, and A and B fail naming their problem with nothing applied.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Wired } from "../../agent/cli/wire.ts";
import { syncApp, wireFor, writeConfig } from "../support/berth.ts";
import { freshNamespace, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { toolPaths } from "../support/tools.ts";

let cluster: TestCluster;
let git: GitFixture;
let w: Wired;
let ns: string;
const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata: {k: v}\n`;

beforeAll(async () => {
  const tools = await toolPaths();
  cluster = await useCluster();
  ns = await freshNamespace(cluster, "blast");
  git = await GitFixture.start();
  const url = git.createRepo("infra");
  git.commit("infra", {
    "apps/a/kustomization.yaml": "resources: [cm.yaml]\n",
    "apps/a/cm.yaml": cm("a"),
    "apps/a/stolen.yaml": { symlink: "../../../../../etc/passwd" },
    "apps/b/kustomization.yaml": "resources: [cm.yaml, https://github.com/example/repo//base?ref=v1]\n",
    "apps/b/cm.yaml": cm("b"),
    "apps/c/kustomization.yaml": "resources: [../../shared]\nnamePrefix: c-\n",
    "shared/kustomization.yaml": "resources: [cm.yaml]\n",
    "shared/cm.yaml": cm("shared"),
    "charts/d/Chart.yaml": "apiVersion: v2\nname: d\nversion: 0.1.0\n",
    "charts/d/templates/cm.yaml": cm("d"),
  });
  const config = writeConfig(`apiVersion: berth.dev/v1alpha1
kind: Agent
source: {url: "${url}"}
render: {kustomize: "${tools.kustomize}", helm: "${tools.helm}"}
apps:
  - {name: a, path: apps/a, namespace: ${ns}, timeout: 30s}
  - {name: b, path: apps/b, namespace: ${ns}, timeout: 30s}
  - {name: c, path: apps/c, namespace: ${ns}, timeout: 30s}
  - {name: d, path: charts/d, namespace: ${ns}, timeout: 30s, helm: {chart: charts/d}}
ledger: {path: $DIR/ledger.db}
`);
  w = await wireFor(config, cluster.kubeconfigPath);
}, 600_000);

afterAll(async () => {
  w?.close();
  await git?.close();
  try {
    kubectl(cluster, "delete", "namespace", ns, "--wait=false");
  } catch {}
});

const names = () =>
  kubectl(
    cluster,
    "get",
    "configmaps",
    "-n",
    ns,
    "-l",
    "app.kubernetes.io/managed-by=berth",
    "-o",
    "jsonpath={.items[*].metadata.name}",
  )
    .split(" ")
    .filter(Boolean)
    .sort();

describe("a bad link or remote base fails only its own app", () => {
  test("A and B fail naming their problem; C (Kustomize) and D (Helm) sync", async () => {
    const a = await syncApp(w, "a");
    const b = await syncApp(w, "b");
    const c = await syncApp(w, "c");
    const d = await syncApp(w, "d");
    expect([a.reason, a.message]).toEqual(["BuildFailed", expect.stringContaining("apps/a/stolen.yaml")]);
    expect(a.message).toContain("leads outside the repository");
    expect([b.reason, b.message]).toEqual(["BuildFailed", expect.stringContaining("remote base")]);
    expect([c.outcome, d.outcome]).toEqual(["Succeeded", "Succeeded"]);
    expect(names()).toEqual(["c-shared", "d"]);
  }, 120_000);
});
