/**
 * `berth import flux` on a tree shaped like fluxcd/flux2-kustomize-helm-example (test/fixtures/flux-import:
 * clusters/production with Flux's bootstrap and the infra-controllers → infra-configs → apps Kustomizations, a
 * HelmRelease from a chart in Git, a HelmRelease from an HTTPS Helm repository patched by the production overlay):
 * the compiled binary converts it, names what it cannot express, the berth.yaml validates, and syncing it on the
 * real control plane yields the object set Flux would apply: each Kustomization's path built with the real
 * kustomize, Flux's own objects (HelmRelease, HelmRepository, …) left to its controllers, plus `helm template` of
 * each HelmRelease's chart with the values of the HelmRelease kustomize built.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import { parse, parseAllDocuments, stringify } from "yaml";
import { berthBinary, runBerth } from "../support/binary.ts";
import { kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { HelmRepoFixture } from "../support/helm-repo.ts";
import { helmHome, toolPaths } from "../support/tools.ts";

type Obj = Record<string, any>;
const FIXTURE = join(import.meta.dir, "..", "fixtures", "flux-import");
const id = Math.random().toString(16).slice(2, 7);
const prefix = `fi${id}-`;
const auth = { username: "fleet", password: "chart-pass" };
let cluster: TestCluster;
let git: GitFixture;
let charts: HelmRepoFixture;
let tools: { kustomize: string; helm: string; sops: string };
let work: string;
let repo: string;
let out: string;
let imported: { code: number | null; stdout: string; stderr: string };

const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((n) =>
    statSync(join(dir, n)).isDirectory() ? files(join(dir, n)) : [join(dir, n)],
  );
const docs = (text: string): Obj[] =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as Obj)
    .filter((o) => o && typeof o === "object");
const isFlux = (o: Obj) => String(o.apiVersion).includes(".toolkit.fluxcd.io/");
const ident = (o: Obj, ns = "") =>
  `${o.kind}/${o.kind === "Namespace" ? "" : (o.metadata?.namespace ?? ns)}/${o.metadata?.name}`;

beforeAll(async () => {
  berthBinary();
  [cluster, git, charts, tools] = await Promise.all([
    useCluster(),
    GitFixture.start(),
    HelmRepoFixture.start(auth),
    toolPaths(),
  ]);
  charts.publish("podinfo", "6.5.0");
  const url = git.createRepo("fleet-infra");
  work = mkdtempSync(join(tmpdir(), "berth-flux-import-"));
  repo = join(work, "repo");
  out = join(work, "out");
  mkdirSync(out);
  // The fixture with the test's Git server, Helm repository and namespaces of its own.
  const tree: Record<string, string> = {};
  for (const file of files(FIXTURE)) {
    const rel = relative(FIXTURE, file);
    const text = readFileSync(file, "utf8")
      .replaceAll("https://git.example.invalid/fleet-infra.git", url)
      .replaceAll("https://charts.example.invalid", charts.url)
      .replace(/\bfi-/g, prefix);
    tree[rel] = text;
    mkdirSync(dirname(join(repo, rel)), { recursive: true });
    writeFileSync(join(repo, rel), text);
  }
  git.commit("fleet-infra", tree);
  imported = await runBerth(["import", "flux", repo, "--dir", repo, "--out", out], {
    PATH: `${dirname(tools.kustomize)}:${process.env.PATH}`,
  });
});

afterAll(async () => {
  await Promise.all([git?.close(), charts?.close()]);
  for (const ns of ["operator", "podinfo"])
    if (cluster)
      kubectl(cluster, "delete", "namespace", `${prefix}${ns}`, "--wait=false", "--ignore-not-found");
});

describe("berth import flux on a flux2-kustomize-helm-example tree", () => {
  test("converts it and names, one line each, what berth cannot express", () => {
    expect(imported.code, imported.stderr).toBe(0);
    const lines = imported.stderr.trim().split("\n");
    for (const expected of [
      "! Kustomization flux-system/flux-system: not imported",
      "! Kustomization flux-system/apps: spec.decryption: ",
      "! Kustomization flux-system/infra-configs: spec.retryInterval: ",
      `! HelmRepository ${prefix}podinfo/podinfo: spec.secretRef: set helm.auth`,
      `! HelmRelease ${prefix}podinfo/podinfo: spec.install: `,
      "! GitRepository flux-system/flux-system: spec.secretRef: ",
    ])
      expect(
        lines.some((l) => l.startsWith(expected)),
        expected,
      ).toBe(true);
    const config = parse(readFileSync(join(out, "berth.yaml"), "utf8")) as Obj;
    const apps = Object.fromEntries((config.apps as Obj[]).map((a) => [a.name, a]));
    expect(Object.keys(apps).sort()).toEqual([
      "apps",
      "demo-operator",
      "infra-configs",
      "infra-controllers",
      "podinfo",
    ]);
    expect(apps["infra-configs"]).toMatchObject({
      path: "infrastructure/configs",
      prune: true,
      timeout: "5m",
      dependsOn: ["infra-controllers", "demo-operator"],
      vars: { CLUSTER_NAME: "production", TIER: "gold" },
    });
    // The production overlay's patch, read from kustomize's output, not the base file.
    expect(apps.podinfo?.helm).toMatchObject({ repo: charts.url, chart: "podinfo", version: ">=1.0.0" });
    expect(apps.podinfo?.helm.set).toEqual({ greeting: "hello from production" });
    expect(apps["demo-operator"]?.helm).toMatchObject({
      chart: "charts/demo-operator",
      releaseName: "demo-operator",
    });
    expect(config.rules).toEqual(["flux-health.yaml"]);
    const rules = parse(readFileSync(join(out, "flux-health.yaml"), "utf8")) as Obj;
    expect(rules.health[0]).toMatchObject({ apiVersion: "cert-manager.io/v1", kind: "ClusterIssuer" });
  });

  test("the berth.yaml validates and syncs the object set Flux would apply", async () => {
    // What the printed lines ask for by hand: the Helm repository's credentials (Flux: a Secret).
    const path = join(out, "berth.yaml");
    const config = parse(readFileSync(path, "utf8")) as Obj;
    writeFileSync(join(out, "chart-password"), `${auth.password}\n`);
    for (const app of config.apps as Obj[])
      if (app.name === "podinfo")
        app.helm = {
          ...app.helm,
          auth: { username: auth.username, passwordFile: "chart-password" },
          caFile: charts.caFile,
        };
    config.ledger = { path: join(work, "ledger.db") };
    config.render = { kustomize: tools.kustomize, helm: tools.helm };
    writeFileSync(path, stringify(config));
    const env = { KUBECONFIG: cluster.kubeconfigPath };
    const validated = await runBerth(["validate", "--config", path], env);
    expect(validated.code, validated.stdout + validated.stderr).toBe(0);
    const synced = await runBerth(["sync", "--config", path], env, 240_000);
    expect(synced.code, synced.stdout + synced.stderr).toBe(0);

    // Flux: each Kustomization's kustomize build (its own objects; HelmRelease & co. go to Flux's controllers) …
    const expected = new Set<string>();
    const releases: Obj[] = [];
    for (const p of ["infrastructure/controllers", "infrastructure/configs", "apps/production"]) {
      for (const o of docs(execFileSync(tools.kustomize, ["build", p], { cwd: repo, encoding: "utf8" }))) {
        if (o.kind === "HelmRelease") releases.push(o);
        if (!isFlux(o)) expected.add(ident(o));
      }
    }
    // … and helm-controller's release of each HelmRelease, with the values kustomize built.
    const { home, env: helmEnv } = helmHome("berth-flux-helm-");
    expect(releases.map((r) => r.metadata.name).sort()).toEqual(["demo-operator", "podinfo"]);
    for (const r of releases) {
      const values = join(home, `${r.metadata.name}.yaml`);
      writeFileSync(values, stringify(r.spec.values ?? {}));
      const chart = r.spec.chart.spec;
      const ns = r.spec.targetNamespace ?? r.metadata.namespace;
      const args =
        chart.sourceRef.kind === "GitRepository"
          ? [join(repo, chart.chart)]
          : [
              chart.chart,
              "--repo",
              charts.url,
              "--username",
              auth.username,
              "--password",
              auth.password,
              "--ca-file",
              charts.caFile,
              "--version",
              chart.version,
            ];
      // Asynchronous: the Helm repository is served by this process.
      const { stdout: text } = await promisify(execFile)(
        tools.helm,
        ["template", r.spec.releaseName ?? r.metadata.name, ...args, "--namespace", ns, "--values", values],
        { env: helmEnv, encoding: "utf8" },
      );
      for (const o of docs(text)) expected.add(ident(o, ns));
    }

    // What the cluster holds, applied by berth, in the test's namespaces.
    const lines = (...args: string[]) =>
      kubectl(
        cluster,
        "get",
        ...args,
        "-l",
        "app.kubernetes.io/managed-by=berth",
        "-o",
        'jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}{"\\n"}{end}',
      )
        .split("\n")
        .filter((l) => l !== "");
    const actual = new Set([
      ...lines("namespaces").filter((l) => l.startsWith(`Namespace//${prefix}`)),
      ...["operator", "podinfo"].flatMap((ns) =>
        lines("configmaps,deployments,services,serviceaccounts", "-n", `${prefix}${ns}`),
      ),
    ]);
    expect([...actual].sort()).toEqual([...expected].sort());
    expect(expected.size).toBeGreaterThan(5);

    // The values made it through: the overlay's greeting, postBuild variables, the release's values.
    const get = (kind: string, ns: string, name: string, path: string) =>
      kubectl(cluster, "get", kind, name, "-n", `${prefix}${ns}`, "-o", `jsonpath=${path}`);
    expect(get("configmap", "podinfo", "podinfo-settings", "{.data.greeting}")).toBe("hello from production");
    expect(
      get("configmap", "operator", "cluster-settings", "{.data.cluster}/{.data.tier}/{.data.region}"),
    ).toBe("production/gold/eu-central-1");
    expect(
      get("deployment", "operator", "demo-operator", "{.spec.template.spec.containers[0].args[0]}"),
    ).toBe("--log-level=debug");
  });
});
