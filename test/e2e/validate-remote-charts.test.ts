/**
 * `berth validate --dir` with remote charts, compiled binary: a chart from a reachable HTTPS Helm repository or
 * OCI registry is pulled and rendered; an unreachable one is a warning naming the app and the repository (exit
 * 0), while a wrong password is still a failure; nothing is written beside the agent's ledger.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, runBerth } from "../support/binary.ts";
import { HelmRepoFixture, OciRegistryFixture } from "../support/helm-repo.ts";
import { toolPaths } from "../support/tools.ts";

let repo: HelmRepoFixture;
let registry: OciRegistryFixture;
let helm: string;

beforeAll(async () => {
  berthBinary();
  helm = (await toolPaths()).helm;
  repo = await HelmRepoFixture.start({ username: "charts", password: "repo-pw" });
  repo.publish("demo", "1.0.0");
  registry = await OciRegistryFixture.start({ username: "pusher", password: "oci-pw" });
  registry.push("cache", "2.1.0");
}, 300_000);

afterAll(async () => {
  await repo?.close();
  await registry?.close();
});

function setup(repoPassword: string): { config: string; dir: string } {
  const config = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "https://git.example/infra.git"}\nrender: {helm: "${helm}"}\napps:\n  - {name: plain, path: plain}\n  - name: web\n    path: apps/web\n    namespace: web\n    helm: {repo: "${repo.url}", chart: demo, version: "1.x", auth: {username: charts, passwordFile: repo-pw}, caFile: "${repo.caFile}"}\n  - name: cache\n    path: apps/cache\n    namespace: cache\n    helm: {chart: "oci://${registry.host}/charts/cache", version: "2.1.0", auth: {username: pusher, passwordFile: oci-pw}, caFile: "${registry.caFile}"}\nledger: {path: $DIR/state/ledger.db}\n`,
  );
  const base = dirname(config);
  writeFileSync(join(base, "repo-pw"), `${repoPassword}\n`);
  writeFileSync(join(base, "oci-pw"), "oci-pw\n");
  const dir = join(base, "tree");
  mkdirSync(join(dir, "plain"), { recursive: true });
  mkdirSync(join(dir, "apps", "web"), { recursive: true });
  mkdirSync(join(dir, "apps", "cache"), { recursive: true });
  writeFileSync(
    join(dir, "plain", "cm.yaml"),
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default}\n",
  );
  return { config, dir };
}

describe("berth validate --dir with remote charts", () => {
  test("reachable repositories: both charts are pulled and rendered, their version and digest shown", async () => {
    const { config, dir } = setup("repo-pw");
    const r = await runBerth(["validate", "--config", config, "--dir", dir]);
    // validate's warnings (no ledger key, no API token, …) aside, nothing on stderr.
    expect(r.stderr.split("\n").filter((l) => l && !l.startsWith("warning: "))).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/✓ web: 1 objects from apps\/web \(chart demo 1\.0\.0 sha256:[0-9a-f]{64}\)/);
    expect(r.stdout).toMatch(
      /✓ cache: 1 objects from apps\/cache \(chart cache 2\.1\.0 sha256:[0-9a-f]{64}\)/,
    );
    expect(existsSync(join(dirname(config), "state"))).toBe(false);
  }, 120_000);

  test("a wrong password is still a failure naming the app and the repository", async () => {
    const { config, dir } = setup("not-it");
    const r = await runBerth(["validate", "--config", config, "--dir", dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`✗ web:`);
    expect(r.stderr).toContain(`helm repository ${repo.url}: authentication failed`);
  }, 120_000);

  test("unreachable repositories: a warning naming each app and repository, the rest validated, exit 0", async () => {
    const { config, dir } = setup("repo-pw");
    await repo.stop();
    await registry.stop();
    const r = await runBerth(["validate", "--config", config, "--dir", dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("✓ plain: 1 objects from plain");
    expect(r.stderr).toContain(
      `⚠ web: not rendered: helm repository ${repo.url} cannot be reached from here`,
    );
    expect(r.stderr).toContain(
      `⚠ cache: not rendered: OCI registry oci://${registry.host}/charts/cache cannot be reached from here`,
    );
    expect(r.stderr).not.toContain("✗");
  }, 120_000);
});
