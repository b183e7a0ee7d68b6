/**
 * The compiled binary following an OCI artifact (Flux's OCIRepository semantics) on the real control plane:
 * artifacts pushed by the real ORAS CLI to Debian's docker-registry (TLS, htpasswd). A wrong password and a
 * hostile layer apply nothing; `semver: 1.x` syncs 1.0.0 and `berth run` applies a newly pushed 1.1.0 on its next
 * poll; a no-change poll asks the registry for the tag list and one manifest, nothing else; with the registry
 * stopped the last good artifact stays applied and the status names the registry.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, ledgerRows, runBerth, startBerth } from "../support/binary.ts";
import { eventually, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { OciRegistryFixture } from "../support/helm-repo.ts";
import { hostileTarGz, orasBinary, orasPush } from "../support/oras.ts";
import { freePort } from "../support/ports.ts";

const auth = { username: "puller", password: "oci-art1fact" };
let cluster: TestCluster;
let registry: OciRegistryFixture;
let config: string;
let port: number;
let git: GitFixture | undefined;
const ns = `ociart-${Math.random().toString(16).slice(2, 8)}`;
const env = () => ({ KUBECONFIG: cluster.kubeconfigPath });

const manifests = (version: string) => ({
  "base/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
  "apps/web/settings.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: ${ns}\ndata:\n  version: "${version}"\n`,
});
const live = () =>
  kubectl(cluster, "get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.version}");

const entries = (cfg: string, app = "web") => ledgerRows(cfg, app);

function yaml(source: string, passwordFile = "registry-password", extra = ""): string {
  return `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource:\n${source}\n  auth: {username: ${auth.username}, passwordFile: ${passwordFile}}\n  caFile: "${registry.caFile}"\napps:\n  - {name: base, path: base}\n  - {name: web, path: apps/web, dependsOn: [base], timeout: 60s}\nledger: {path: $DIR/ledger.db}\n${extra}`;
}

function withPassword(cfg: string, password: string): string {
  writeFileSync(join(dirname(cfg), "registry-password"), `${password}\n`);
  return cfg;
}

beforeAll(async () => {
  berthBinary();
  await orasBinary();
  cluster = await useCluster();
  registry = await OciRegistryFixture.start(auth);
  await orasPush(registry, "team/manifests:1.0.0", { files: manifests("1.0.0") }, "flux");
  await orasPush(registry, "team/manifests:2.0.0", { files: manifests("2.0.0") }, "flux");
  port = await freePort();
  config = withPassword(
    writeConfig(
      yaml(
        `  oci: "oci://${registry.host}/team/manifests"\n  semver: "1.x"\n  interval: 1s`,
        "registry-password",
        `api: {listen: "127.0.0.1:${port}", anonymousRead: true}\n`,
      ),
    ),
    auth.password,
  );
}, 600_000);

afterAll(async () => {
  await registry?.close();
  await git?.close();
  for (const n of [ns, `${ns}-mix`])
    try {
      kubectl(cluster, "delete", "namespace", n, "--wait=false");
    } catch {}
});

describe("an OCI artifact as the source, compiled binary", () => {
  test("a wrong password is a clear error naming the registry; nothing is applied", async () => {
    const wrong = withPassword(
      writeConfig(yaml(`  oci: "oci://${registry.host}/team/manifests"\n  semver: "1.x"`)),
      "not-the-password",
    );
    const r = await runBerth(["sync", "--config", wrong], env());
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`OCI registry ${registry.host}`);
    expect(r.stdout).toContain("authentication failed (HTTP 401)");
    expect(r.stdout + r.stderr).not.toContain("not-the-password");
    const [last] = await entries(wrong, "base");
    expect(last?.reason).toBe("FetchFailed");
    expect(() => kubectl(cluster, "get", "namespace", ns)).toThrow();
  }, 120_000);

  test("a layer with a traversal path is refused naming the artifact; nothing is applied", async () => {
    const evil = hostileTarGz([
      { path: "base/ns.yaml", body: manifests("evil")["base/ns.yaml"] },
      { path: "../../../tmp/berth-oci-escape.yaml", body: "x: 1\n" },
    ]);
    const digest = await orasPush(registry, "team/evil:v1", { layer: evil });
    const cfg = withPassword(
      writeConfig(yaml(`  oci: "oci://${registry.host}/team/evil"\n  tag: v1`)),
      auth.password,
    );
    const r = await runBerth(["sync", "--config", cfg], env());
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`OCI artifact oci://${registry.host}/team/evil@${digest}`);
    expect(r.stdout).toContain("climbs out of the artifact");
    const [last] = await entries(cfg, "base");
    expect(last?.reason).toBe("FetchFailed");
    expect(() => kubectl(cluster, "get", "namespace", ns)).toThrow();
  }, 120_000);

  test("semver 1.x syncs 1.0.0 (not 2.0.0); the ledger and status carry <tag>@sha256:<digest>", async () => {
    const r = await runBerth(["sync", "--config", config], env());
    expect(r.code).toBe(0);
    expect(live()).toBe("1.0.0");
    const [last] = await entries(config);
    expect(last?.outcome).toBe("Succeeded");
    expect(last?.revision).toMatch(/^1\.0\.0@sha256:[0-9a-f]{64}$/);
    const status = JSON.parse((await runBerth(["status", "--json", "--config", config])).stdout) as Array<{
      app: string;
      revision?: string;
      last?: { revision?: string };
    }>;
    expect(JSON.stringify(status.find((s) => s.app === "web"))).toContain(last?.revision as string);
  }, 120_000);

  test("berth run: a new 1.1.0 is applied on the next poll; an idle poll is the tag list and one manifest request; a stopped registry keeps the last good applied and names the registry", async () => {
    const run = startBerth(["run", "--config", config, "--kubeconfig", cluster.kubeconfigPath], env());
    const api = `http://127.0.0.1:${port}`;
    const view = async () =>
      (await (await fetch(`${api}/api/v1/apps/web`)).json()) as {
        git?: { reachable: boolean; error?: string };
        revision?: string;
      };
    try {
      await eventually("berth run to start", 30_000, async () =>
        run.output().includes("berth is running") ? true : undefined,
      );
      const digest = await orasPush(registry, "team/manifests:1.1.0", { files: manifests("1.1.0") }, "flux");
      await eventually("1.1.0 applied", 30_000, async () => (live() === "1.1.0" ? true : undefined));
      await eventually("the ledger entry of 1.1.0", 10_000, async () => {
        const [last] = await entries(config);
        return last?.outcome === "Succeeded" && last.revision === `1.1.0@${digest}` ? true : undefined;
      });

      // Idle: every poll is GET tags/list + HEAD manifest; no blob, no manifest body.
      await new Promise((r) => setTimeout(r, 1500));
      const mark = registry.requests.length;
      await new Promise((r) => setTimeout(r, 4000));
      const idle = registry.requests.slice(mark);
      const lists = idle.filter((q) => q.method === "GET" && q.path === "/v2/team/manifests/tags/list");
      const heads = idle.filter(
        (q) => q.method === "HEAD" && q.path === "/v2/team/manifests/manifests/1.1.0",
      );
      expect(lists.length).toBeGreaterThanOrEqual(2);
      expect(idle.length).toBe(lists.length + heads.length);
      expect(Math.abs(heads.length - lists.length)).toBeLessThanOrEqual(1);
      expect(idle.every((q) => q.status === 200)).toBe(true);

      await registry.stop();
      try {
        await eventually("the status to name the unreachable registry", 40_000, async () => {
          const v = await view();
          return v.git?.reachable === false && v.git.error?.includes(`OCI registry ${registry.host}`)
            ? v
            : undefined;
        });
        expect(live()).toBe("1.1.0");
        const [last] = await entries(config);
        expect(last?.revision).toBe(`1.1.0@${digest}`);
      } finally {
        await registry.restart();
      }
      run.child.kill("SIGTERM");
      expect(await run.exited).toBe(0);
    } finally {
      run.child.kill("SIGKILL");
    }
  }, 180_000);

  test("in sources: an OCI source syncs next to a Git source; an app on one depends on an app on the other", async () => {
    const mix = `${ns}-mix`;
    const cm = (value: string) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-${value}\n  namespace: ${mix}\ndata:\n  value: ${value}\n`;
    git = await GitFixture.start();
    const repo = git.createRepo("platform");
    const sha = git.commit("platform", {
      "base/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${mix}\n`,
      "base/cm.yaml": cm("git"),
    });
    const digest = await orasPush(registry, "team/mixed:v1", { files: { "web/cm.yaml": cm("oci") } }, "flux");
    const cfg = withPassword(
      writeConfig(`apiVersion: berth.dev/v1alpha1
kind: Agent
sources:
  platform: {url: "${repo}"}
  art:
    oci: "oci://${registry.host}/team/mixed"
    tag: v1
    auth: {username: ${auth.username}, passwordFile: registry-password}
    caFile: "${registry.caFile}"
apps:
  - {name: base, source: platform, path: base, timeout: 60s}
  - {name: web, source: art, path: web, dependsOn: [base], timeout: 60s}
ledger: {path: $DIR/ledger.db}
`),
      auth.password,
    );
    const r = await runBerth(["sync", "--config", cfg], env());
    expect(r.stderr + r.stdout).not.toContain("✗");
    expect(r.code).toBe(0);
    const value = (name: string) =>
      kubectl(cluster, "get", "configmap", name, "-n", mix, "-o", "jsonpath={.data.value}");
    expect(value("from-git")).toBe("git");
    expect(value("from-oci")).toBe("oci");
    const [web] = await entries(cfg, "web");
    const [base] = await entries(cfg, "base");
    expect(web?.outcome).toBe("Succeeded");
    expect(web?.revision).toBe(`v1@${digest}`);
    expect(base?.outcome).toBe("Succeeded");
    expect(base?.revision).toBe(`main@sha1:${sha}`);
  }, 180_000);
});
