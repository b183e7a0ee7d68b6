/**
 * The compiled binary with a chart from a real HTTPS Helm repository (helm create/package/repo index, basic
 * auth, a private CA) on the real control plane: `1.x` syncs, publishing 1.1 upgrades, the ledger entry records
 * version and digest, replay re-applies 1.0 with the repository stopped, a wrong password applies nothing, and
 * a 1.1 republished with other content is reported, not applied. Then the same from an OCI registry (Debian's
 * docker-registry with TLS and htpasswd, charts pushed by `helm push`).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeConfig } from "../support/berth.ts";
import { type LedgerRow, ledgerRows, runBerth } from "../support/binary.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { HelmRepoFixture, OciRegistryFixture } from "../support/helm-repo.ts";
import { namespaceYaml } from "../support/manifests.ts";
import { toolPaths } from "../support/tools.ts";

const t = useClusterTest({ prefix: "helmrepo", git: { token: "e2e-token" }, binary: true });
const ns = t.ns;
let charts: HelmRepoFixture;
let config: string;
let wrong: string;
let v100: string;
const sha = (file: string) => `sha256:${createHash("sha256").update(readFileSync(file)).digest("hex")}`;
const env = () => t.env();
const live = (field: string) =>
  t.kubectl("get", "configmap", "demo-settings", "-n", ns, "-o", `jsonpath={.data.${field}}`);

const entries = (cfg = config) => ledgerRows(cfg, "demo");

beforeAll(async () => {
  const { helm } = await toolPaths();
  charts = await HelmRepoFixture.start({ username: "charts", password: "repo-s3cret" });
  v100 = charts.publish("demo", "1.0.0");
  charts.publish("demo", "2.0.0");
  t.onTeardown(() => charts.close());
  const url = t.url;
  t.commit({
    "base/ns.yaml": namespaceYaml(ns),
    "apps/demo/values.yaml": "greeting: from-git\n",
  });
  const yaml = (passwordFile: string) =>
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource:\n  url: "${url}"\n  auth: {tokenEnv: E2E_GIT_TOKEN}\nrender: {helm: "${helm}"}\napps:\n  - {name: base, path: base}\n  - name: demo\n    path: apps/demo\n    namespace: ${ns}\n    dependsOn: [base]\n    timeout: 60s\n    helm:\n      repo: "${charts.url}"\n      chart: demo\n      version: "1.x"\n      auth: {username: charts, passwordFile: ${passwordFile}}\n      caFile: "${charts.caFile}"\n      values: [apps/demo/values.yaml]\nledger: {path: $DIR/ledger.db}\n`;
  config = writeConfig(yaml("repo-password"));
  writeFileSync(join(dirname(config), "repo-password"), "repo-s3cret\n");
  wrong = writeConfig(yaml("repo-password"));
  writeFileSync(join(dirname(wrong), "repo-password"), "not-it\n");
}, 600_000);

describe("a chart from an HTTPS Helm repository, compiled binary", () => {
  test("a wrong password is a clear error naming the repository; nothing is applied", async () => {
    const r = await runBerth(["sync", "--config", wrong], env());
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`helm repository ${charts.url}: authentication failed`);
    expect(r.stdout).toContain("401 Unauthorized");
    expect(r.stdout + r.stderr).not.toContain("not-it");
    const [last] = await entries(wrong);
    expect(last?.reason).toBe("BuildFailed");
    expect(() => live("chartVersion")).toThrow();
  }, 120_000);

  test("version 1.x syncs 1.0.0; the ledger entry records version and archive digest", async () => {
    const r = await runBerth(["sync", "--config", config], env());
    expect(r.code).toBe(0);
    expect(live("chartVersion")).toBe("1.0.0");
    expect(live("greeting")).toBe("from-git");
    const [last] = await entries();
    expect(last?.outcome).toBe("Succeeded");
    expect(last?.message).toContain(`chart demo 1.0.0 ${sha(v100)}`);
    const status = JSON.parse((await runBerth(["status", "--json", "--config", config])).stdout) as Array<{
      app: string;
      last: { message: string };
    }>;
    expect(status.find((s) => s.app === "demo")?.last.message).toContain(`chart demo 1.0.0 ${sha(v100)}`);
  }, 120_000);

  test("publishing 1.1.0 upgrades the app on the next sync", async () => {
    const v110 = charts.publish("demo", "1.1.0");
    const r = await runBerth(["sync", "--config", config, "--app", "demo"], env());
    expect(r.code).toBe(0);
    expect(live("chartVersion")).toBe("1.1.0");
    const [last] = await entries();
    expect(last?.message).toContain(`chart demo 1.1.0 ${sha(v110)}`);
  }, 120_000);

  test("1.1.0 republished with other content is reported and not applied", async () => {
    const again = charts.publish("demo", "1.1.0", { extra: "sneaked-in" });
    const r = await runBerth(["sync", "--config", config, "--app", "demo"], env());
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("chart demo 1.1.0 was republished with different content");
    expect(r.stdout).toContain(`now ${sha(again)}`);
    expect(live("chartVersion")).toBe("1.1.0");
    expect(live("extra")).toBe("");
  }, 120_000);

  test("replay --to the first entry re-applies 1.0.0 with the repository stopped", async () => {
    await charts.stop();
    const first = (await entries()).filter((e) => e.outcome === "Succeeded").at(-1);
    expect(first?.message).toContain("chart demo 1.0.0");
    const r = await runBerth(
      ["replay", "--app", "demo", "--to", String(first?.id), "--config", config],
      env(),
    );
    expect(r.code).toBe(0);
    expect(live("chartVersion")).toBe("1.0.0");
    const [last] = await entries();
    expect(last?.message).toContain(`replay of entry ${first?.id}`);
    expect(last?.message).toContain(`chart demo 1.0.0 ${sha(v100)}`);
  }, 120_000);

  test("while the repository is unreachable, a sync renders the last chart pulled for 1.x from the cache and says so", async () => {
    const r = await runBerth(["sync", "--config", config, "--app", "demo"], env());
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("chart source unreachable; rendering the last chart pulled from the cache");
    expect(live("chartVersion")).toBe("1.1.0");
    expect(live("extra")).toBe("");
  }, 120_000);
});

describe("a chart from an OCI registry with auth, compiled binary", () => {
  let registry: OciRegistryFixture;
  let oci: string;
  let ociWrong: string;
  const cm = (field: string) =>
    t.kubectl("get", "configmap", "cache-settings", "-n", ns, "-o", `jsonpath={.data.${field}}`);
  beforeAll(async () => {
    registry = await OciRegistryFixture.start({ username: "pusher", password: "oci-s3cret" });
    const { helm } = await toolPaths();
    // The namespace is the first describe's (base app); this config has the chart app only.
    const yaml = `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource:\n  url: "${t.git.url("infra")}"\n  auth: {tokenEnv: E2E_GIT_TOKEN}\nrender: {helm: "${helm}"}\napps:\n  - name: cache\n    path: apps/demo\n    namespace: ${ns}\n    timeout: 60s\n    helm:\n      chart: "oci://${registry.host}/charts/demo"\n      version: "1.x"\n      auth: {username: pusher, passwordFile: registry-password}\n      caFile: "${registry.caFile}"\nledger: {path: $DIR/ledger.db}\n`;
    oci = writeConfig(yaml);
    writeFileSync(join(dirname(oci), "registry-password"), "oci-s3cret\n");
    ociWrong = writeConfig(yaml);
    writeFileSync(join(dirname(ociWrong), "registry-password"), "wrong-one\n");
  }, 120_000);
  afterAll(async () => {
    await registry?.close();
  });

  test("a wrong password is a clear error naming the registry; nothing is applied", async () => {
    registry.push("demo", "1.0.0");
    const r = await runBerth(["sync", "--config", ociWrong], env());
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`OCI registry oci://${registry.host}/charts/demo: authentication failed`);
    expect(r.stdout + r.stderr).not.toContain("wrong-one");
    expect(() => cm("chartVersion")).toThrow();
  }, 120_000);

  test("1.x syncs 1.0.0 with version and digest in the ledger; pushing 1.1.0 upgrades", async () => {
    const v100 = join(registry.dir, "demo-1.0.0.tgz");
    const r = await runBerth(["sync", "--config", oci], env());
    expect(r.code).toBe(0);
    expect(cm("chartVersion")).toBe("1.0.0");
    const list = async (): Promise<LedgerRow[]> =>
      JSON.parse((await runBerth(["ledger", "list", "--json", "--app", "cache", "--config", oci])).stdout);
    expect((await list())[0]?.message).toContain(`chart demo 1.0.0 ${sha(v100)}`);
    const v110 = registry.push("demo", "1.1.0");
    const s = await runBerth(["sync", "--config", oci], env());
    expect(s.code).toBe(0);
    expect(cm("chartVersion")).toBe("1.1.0");
    expect((await list())[0]?.message).toContain(`chart demo 1.1.0 ${sha(v110)}`);
  }, 180_000);
});
