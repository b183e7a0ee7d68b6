/**
 * Commit statuses with several sources, from the compiled binary against the real control plane and a real
 * Gitea: the default source's apps get `berth/<app>` on the default source's repository (top-level `status:`),
 * the apps of a second source on that source's own repository (`sources.<name>.status`) — each status on the
 * repository that holds the commit, read back through Gitea's API.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, runBerth, startBerth } from "../support/binary.ts";
import { eventually, freshNamespace, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { type GiteaServer, startGitea } from "../support/gitea.ts";
import { freePort } from "../support/ports.ts";

let cluster: TestCluster;
let gitea: GiteaServer;
let git: GitFixture;
let ns: string;
let infraForge: string;
let appsForge: string;
let config: string;
let run: ReturnType<typeof startBerth> | undefined;

const cm = (name: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: ${ns}\ndata:\n  value: "${value}"\n`;
const mirror = (name: string, forgeRepo: string) =>
  gitea.push(join(git.dir, "repos", `${name}.git`), forgeRepo, "refs/heads/main:refs/heads/main");
const contexts = async (repo: string, sha: string) =>
  (await gitea.statuses(repo, sha)).map((s) => `${s.context} ${s.status}`);

beforeAll(async () => {
  berthBinary();
  [cluster, gitea, git] = await Promise.all([useCluster(), startGitea(), GitFixture.start()]);
  ns = await freshNamespace(cluster, "status-src");
  const infra = git.createRepo("infra");
  const apps = git.createRepo("apps");
  [infraForge, appsForge] = await Promise.all([gitea.createRepo("infra"), gitea.createRepo("apps")]);
  config = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${infra}", interval: 1s}\nsources:\n  apps:\n    url: "${apps}"\n    interval: 1s\n    status: {provider: gitea, url: "${appsForge}", tokenFile: $DIR/gitea.token, timeout: 2s}\napps:\n  - {name: base, path: base, namespace: ${ns}}\n  - {name: web, path: web, source: apps, namespace: ${ns}}\nledger: {path: $DIR/ledger.db}\napi: {listen: "127.0.0.1:${await freePort()}", externalURL: "https://berth.example.test"}\nstatus: {provider: gitea, url: "${infraForge}", tokenFile: $DIR/gitea.token, timeout: 2s}\n`,
  );
  writeFileSync(join(dirname(config), "gitea.token"), `${gitea.token}\n`, { mode: 0o600 });
}, 1_800_000);

afterAll(async () => {
  run?.child.kill("SIGKILL");
  await run?.exited;
  await Promise.all([gitea?.close(), git?.close()]);
  try {
    kubectl(cluster, "delete", "namespace", ns, "--wait=false");
  } catch {}
});

test("each source's apps get their statuses on that source's repository", async () => {
  const a = git.commit("infra", { "base/cm.yaml": cm("base", "one") }, { message: "Base" });
  const b = git.commit("apps", { "web/cm.yaml": cm("web", "one") }, { message: "Web" });
  mirror("infra", infraForge);
  mirror("apps", appsForge);
  run = startBerth(["run", "--config", config, "--kubeconfig", cluster.kubeconfigPath]);
  await eventually("success on both commits", 90_000, async () =>
    (await contexts(infraForge, a)).includes("berth/base success") &&
    (await contexts(appsForge, b)).includes("berth/web success")
      ? true
      : undefined,
  );
  expect(await contexts(infraForge, a)).toEqual(["berth/base pending", "berth/base success"]);
  expect(await contexts(appsForge, b)).toEqual(["berth/web pending", "berth/web success"]);
  // A new commit on the second source: its status again goes to its own repository only.
  const c = git.commit("apps", { "web/cm.yaml": cm("web", "two") }, { message: "Web two" });
  mirror("apps", appsForge);
  await eventually("success on the new apps commit", 60_000, async () =>
    (await contexts(appsForge, c)).includes("berth/web success") ? true : undefined,
  );
  expect(await contexts(infraForge, a)).toEqual(["berth/base pending", "berth/base success"]);
}, 240_000);

test("a second `status` for the default source is exit 2 naming the field", async () => {
  const dir = dirname(config);
  const path = join(dir, "both.yaml");
  writeFileSync(
    path,
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource:\n  url: "${git.url("infra")}"\n  status: {provider: gitea, url: "${infraForge}", tokenFile: ${dir}/gitea.token}\napps: [{name: base, path: base}]\nledger: {path: ${dir}/both.db}\nstatus: {provider: gitea, url: "${infraForge}", tokenFile: ${dir}/gitea.token}\n`,
  );
  const r = await runBerth(["run", "--config", path, "--kubeconfig", cluster.kubeconfigPath]);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("source.status");
  // A missing token file of a second source names that source's field.
  writeFileSync(
    path,
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${git.url("infra")}"}\nsources:\n  apps: {url: "${git.url("apps")}", status: {provider: gitea, url: "${appsForge}", tokenFile: ${dir}/absent.token}}\napps: [{name: base, path: base}]\nledger: {path: ${dir}/both.db}\n`,
  );
  const missing = await runBerth(["run", "--config", path, "--kubeconfig", cluster.kubeconfigPath]);
  expect(missing.code).toBe(2);
  expect(missing.stderr).toContain("sources.apps.status.tokenFile");
}, 60_000);
