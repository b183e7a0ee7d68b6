import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../agent/config/config.ts";
import { ConfigError } from "../../agent/config/problems.ts";
import { renderApp } from "../../agent/render/app.ts";
import { FsSnapshot } from "../../agent/render/fs-snapshot.ts";

const root = mkdtempSync(join(tmpdir(), "berth-exclude-"));
mkdirSync(join(root, "app"));
writeFileSync(
  join(root, "app", "all.yaml"),
  [
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keep, namespace: ns}",
    "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: web, namespace: ns}\nspec: {}",
    "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: charts, namespace: ns}\nspec: {}",
    "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata: {name: fleet, namespace: ns}\nspec: {}",
  ].join("\n---\n"),
);

describe("apps[].exclude", () => {
  test("leaves out objects of a group (or group and kind), each listed as skipped", async () => {
    const r = await renderApp(new FsSnapshot(root), {
      name: "a",
      path: "app",
      exclude: [
        { group: "helm.toolkit.fluxcd.io" },
        { group: "source.toolkit.fluxcd.io", kind: "HelmRepository" },
      ],
    });
    expect(r.errors).toEqual([]);
    expect(r.objects.map((o) => `${o.object.kind}/${o.object.metadata.name}`)).toEqual([
      "ConfigMap/keep",
      "GitRepository/fleet",
    ]);
    expect(r.skipped.map((s) => s.message)).toEqual([
      "HelmRelease/web: excluded (group helm.toolkit.fluxcd.io)",
      "HelmRepository/charts: excluded (source.toolkit.fluxcd.io HelmRepository)",
    ]);
    const all = await renderApp(new FsSnapshot(root), { name: "a", path: "app" });
    expect(all.objects).toHaveLength(4);
    expect(r.digest).not.toBe(all.digest);
  });

  test("an entry without group is a config error naming the field", () => {
    const file = join(root, "berth.yaml");
    writeFileSync(
      file,
      "apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: https://git.example/x.git}\napps:\n  - {name: a, path: app, exclude: [{kind: Secret}]}\n",
    );
    let caught: unknown;
    try {
      loadConfig(file);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect(String((caught as Error).message)).toContain("apps[0].exclude[0]");
  });
});
