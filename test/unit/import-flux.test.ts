import { describe, expect, test } from "bun:test";
import { importFlux } from "../../agent/cli/import-flux.ts";

type Obj = Record<string, unknown>;
const doc = (object: Obj) => ({ object, file: "x.yaml" });
const git = (name: string, url: string, ref: Obj = { branch: "main" }) =>
  doc({
    apiVersion: "source.toolkit.fluxcd.io/v1",
    kind: "GitRepository",
    metadata: { name, namespace: "flux-system" },
    spec: { url, ref, interval: "5m" },
  });
const ks = (name: string, spec: Obj) =>
  doc({
    apiVersion: "kustomize.toolkit.fluxcd.io/v1",
    kind: "Kustomization",
    metadata: { name, namespace: "flux-system" },
    spec,
  });
const nothing = async () => ({ objects: [] });

describe("berth import flux: the conversion", () => {
  test("one GitRepository is `source`; Kustomization fields map to the app, Flux's defaults made explicit", async () => {
    const r = await importFlux(
      [
        git("flux-system", "https://git.example/fleet.git", { tag: "v1.2.0" }),
        ks("web.frontend", {
          sourceRef: { kind: "GitRepository", name: "flux-system" },
          path: "./apps/web/",
          interval: "10m",
          suspend: true,
          targetNamespace: "web",
          postBuild: { substitute: { N: 3 } },
        }),
      ],
      nothing,
    );
    expect(r.config.source).toEqual({ url: "https://git.example/fleet.git", ref: "v1.2.0", interval: "5m" });
    // Flux: prune defaults to false, the timeout to the interval; field ownership is always forced.
    expect(r.config.apps).toEqual([
      {
        name: "web-frontend",
        path: "apps/web",
        force: true,
        prune: false,
        interval: "10m",
        timeout: "10m",
        suspend: true,
        namespace: "web",
        vars: { N: "3" },
      },
    ]);
    expect(r.notes).toEqual([]);
  });

  test("several GitRepositories become the `sources:` map, each app naming its source", async () => {
    const r = await importFlux(
      [
        git("infra", "https://git.example/infra.git"),
        git("team-a", "https://git.example/a.git"),
        ks("infra", { sourceRef: { kind: "GitRepository", name: "infra" }, path: "./infra" }),
        ks("a", { sourceRef: { kind: "GitRepository", name: "team-a" }, path: "./deploy" }),
      ],
      nothing,
    );
    expect(Object.keys(r.config.sources as Obj)).toEqual(["infra", "team-a"]);
    expect((r.config.apps as Obj[]).map((a) => a.source)).toEqual(["infra", "team-a"]);
    expect(r.config.source).toBeUndefined();
  });

  test("what berth cannot express is one line each, naming kind, namespace/name and field", async () => {
    const r = await importFlux(
      [
        git("flux-system", "ssh://git@git.example/fleet.git", { semver: ">=1.0.0" }),
        ks("apps", {
          sourceRef: { kind: "GitRepository", name: "flux-system" },
          path: "./apps",
          targetNamespace: "apps",
          force: true,
          wait: false,
          patches: [],
          healthChecks: [{ kind: "Deployment", name: "x", namespace: "y" }],
        }),
        doc({
          apiVersion: "source.toolkit.fluxcd.io/v1beta2",
          kind: "OCIRepository",
          metadata: { name: "manifests", namespace: "flux-system" },
          spec: { url: "oci://r.example/m" },
        }),
        doc({
          apiVersion: "notification.toolkit.fluxcd.io/v1",
          kind: "Alert",
          metadata: { name: "slack", namespace: "flux-system" },
        }),
      ],
      async () => ({
        objects: [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "other" } }],
      }),
    );
    expect(r.notes).toEqual([
      "Alert flux-system/slack: not converted (berth has no Alert)",
      "Kustomization flux-system/apps: spec.targetNamespace: berth sets it only on objects without a namespace; Flux also moves 1 objects that name another (ConfigMap/c)",
      "Kustomization flux-system/apps: spec.healthChecks: Deployment/y/x: berth waits for the app's own objects only",
      "Kustomization flux-system/apps: spec.wait: berth always waits for every object of the app to be healthy",
      "Kustomization flux-system/apps: spec.force: berth does not delete and recreate objects whose immutable fields changed; such a change fails the sync",
      "Kustomization flux-system/apps: spec.patches: no berth equivalent; not converted",
      "OCIRepository flux-system/manifests: not converted (berth has no OCI artifact source yet)",
      "GitRepository flux-system/flux-system: spec.ref.semver: berth follows a branch, tag or commit, not a semver range",
    ]);
  });

  test("a HelmRelease from an OCI HelmRepository; values --set cannot carry exactly are named", async () => {
    const r = await importFlux(
      [
        doc({
          apiVersion: "source.toolkit.fluxcd.io/v1",
          kind: "HelmRepository",
          metadata: { name: "bitnami", namespace: "db" },
          spec: { type: "oci", url: "oci://registry.example/charts/" },
        }),
        doc({
          apiVersion: "helm.toolkit.fluxcd.io/v2",
          kind: "HelmRelease",
          metadata: { name: "redis", namespace: "db" },
          spec: {
            targetNamespace: "cache",
            chart: {
              spec: {
                chart: "redis",
                version: "19.x",
                sourceRef: { kind: "HelmRepository", name: "bitnami" },
              },
            },
            install: { crds: "Skip" },
            values: { auth: { enabled: false }, "nginx.ingress/class": "x", tag: "1.0", list: ["a", 2] },
            valuesFrom: [{ kind: "Secret", name: "redis-values" }],
          },
        }),
      ],
      nothing,
    );
    expect(r.config.apps).toEqual([
      {
        name: "redis",
        path: ".",
        namespace: "cache",
        helm: {
          chart: "oci://registry.example/charts/redis",
          version: "19.x",
          // Flux: the release name defaults to [targetNamespace-]name.
          releaseName: "cache-redis",
          set: { "auth.enabled": false, "nginx\\.ingress/class": "x", "list[0]": "a", "list[1]": 2 },
        },
      },
    ]);
    expect(r.notes).toEqual([
      'HelmRelease db/redis: spec.values: tag (the string "1.0") cannot be passed exactly with --set; not converted',
      "HelmRelease db/redis: spec.valuesFrom: values from ConfigMaps/Secrets are not supported; put them in a values file in Git (helm.values)",
      "GitRepository: none in the imported files; set source.url by hand",
    ]);
  });
});
