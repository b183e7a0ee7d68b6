/**
 * The render limits from berth.yaml reach every render: a vendored 2.6 MiB bundle is refused under the default
 * render.maxFileBytes (2 MiB) and under a render.maxDocuments it exceeds, each error naming the file and the key,
 * with nothing of that app applied and the other app synced; with the limits raised the same commit syncs. The
 * compiled binary's `berth sync`, checked in the cluster.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { runBerth } from "../support/binary.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { configMapYaml } from "../support/manifests.ts";

const t = useClusterTest({ prefix: "limits", binary: true, createNamespace: true });
const VALUE = "x".repeat(900 * 1024);
const bundle = ["a", "b", "c"].map((name) => configMapYaml(name, { blob: VALUE })).join("---\n");
const apps = () => [
  { name: "vendored", path: "vendored", namespace: t.ns },
  { name: "other", path: "other", namespace: t.ns },
];
const configWith = (render?: string) => t.writeConfig(apps(), render ? { extra: `render: ${render}\n` } : {});
const liveNames = () =>
  t
    .inNs("get", "configmaps", "-l", "berth.dev/app=vendored", "-o", "jsonpath={.items[*].metadata.name}")
    .split(" ")
    .filter(Boolean);

beforeAll(() => {
  t.commit({ "vendored/bundle.yaml": bundle, "other/cm.yaml": configMapYaml("other", "hello") });
});

describe("render limits set in berth.yaml", () => {
  test("a file over the default maxFileBytes fails its app only, naming the file and the key", async () => {
    const r = await runBerth(["sync", "--config", configWith()], t.env());
    expect(r.code).toBe(1);
    expect(`${r.stdout}${r.stderr}`).toContain(
      `vendored/bundle.yaml: file is ${bundle.length} bytes, over the limit of 2097152 (render.maxFileBytes)`,
    );
    expect(liveNames()).toEqual([]);
    expect(t.inNs("get", "configmap", "other", "-o", "jsonpath={.data.greeting}")).toBe("hello");
  }, 180_000);

  test("more documents than maxDocuments fail the app, naming the key", async () => {
    const r = await runBerth(
      ["sync", "--config", configWith("{maxFileBytes: 4194304, maxDocuments: 2}"), "--app", "vendored"],
      t.env(),
    );
    expect(r.code).toBe(1);
    expect(`${r.stdout}${r.stderr}`).toContain(
      "too many documents: the limit is 2 per app (render.maxDocuments)",
    );
    expect(liveNames()).toEqual([]);
  }, 180_000);

  test("with maxFileBytes raised the same commit syncs", async () => {
    const r = await runBerth(["sync", "--config", configWith("{maxFileBytes: 4194304}")], t.env());
    expect(r.stderr).not.toContain("render.maxFileBytes");
    expect(r.code).toBe(0);
    expect(liveNames().sort()).toEqual(["a", "b", "c"]);
    expect(t.inNs("get", "configmap", "c", "-o", "jsonpath={.data.blob}")).toHaveLength(VALUE.length);
  }, 180_000);

  test("a limit past its maximum is a config error naming the field", async () => {
    const r = await runBerth(["validate", "--config", configWith("{maxFileBytes: 67108864}")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("render.maxFileBytes");
    expect(r.stderr).toContain("16777216");
  }, 60_000);
});
