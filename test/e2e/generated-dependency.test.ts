/**
 * A static app depending on a generated one (berth.yaml `generate:`): the compiled binary's `berth sync` syncs the
 * generated app first, and skips the static one while the generated one fails. Checked in the cluster.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { runBerth } from "../support/binary.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { configMapYaml } from "../support/manifests.ts";

const t = useClusterTest({ prefix: "gendep", binary: true, createNamespace: true });
let config: string;
const greeting = (name: string) => t.inNs("get", "configmap", name, "-o", "jsonpath={.data.greeting}");

beforeAll(() => {
  t.commit({ "gen/web/cm.yaml": configMapYaml("web", "v1"), "after/cm.yaml": configMapYaml("after", "v1") });
  config = t.writeConfig([{ name: "after", path: "after", namespace: t.ns, dependsOn: ["gen-web"] }], {
    extra: `generate:\n  - {dirs: "gen/*", template: {name: "gen-{{dir}}", path: "{{path}}", namespace: ${t.ns}}}\n`,
  });
});

describe("a static app that depends on a generated app", () => {
  test("berth sync syncs the generated app first, then the static one", async () => {
    const r = await runBerth(["sync", "--config", config], t.env());
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/✓ gen-web main@sha1:[0-9a-f]{40}: Succeeded — 1 created/);
    expect(r.stdout).toMatch(/✓ after main@sha1:[0-9a-f]{40}: Succeeded — 1 created/);
    expect(r.stdout.indexOf("✓ gen-web")).toBeLessThan(r.stdout.indexOf("✓ after"));
    expect([greeting("web"), greeting("after")]).toEqual(["v1", "v1"]);
  }, 180_000);

  test("while the generated app fails, the static one is skipped and not applied", async () => {
    t.commit({
      "gen/web/cm.yaml": "apiVersion: v1\nKind: ConfigMap\nmetadata:\n  name: web\n",
      "after/cm.yaml": configMapYaml("after", "v2"),
    });
    const r = await runBerth(["sync", "--config", config], t.env());
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("gen-web");
    expect(r.stderr).toContain("skipped after: its dependency gen-web did not sync");
    expect([greeting("web"), greeting("after")]).toEqual(["v1", "v1"]);
  }, 180_000);
});
