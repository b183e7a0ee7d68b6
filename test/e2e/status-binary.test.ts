/**
 * Commit statuses from the compiled binary against the real control plane and a real Gitea (built from the Go
 * module proxy): each sync sets `berth/<app>` pending → success on the synced commit, a failing health check
 * sets failure naming the object, and with Gitea down during a sync the sync still succeeds while the status
 * waits in the outbox (a metric and a status-page line) and arrives once Gitea is back. The statuses are read
 * back through Gitea's API. The source is the project's own Git server; each commit is pushed to Gitea too.
 * With two sources, each source's apps get their statuses on that source's own Gitea repository
 * (`sources.<name>.status`).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, runBerth, startBerth } from "../support/binary.ts";
import { eventually, freshNamespace, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { type GiteaServer, type GiteaStatus, startGitea } from "../support/gitea.ts";
import { freePort } from "../support/ports.ts";

let cluster: TestCluster;
let gitea: GiteaServer;
let git: GitFixture;
let ns: string;
let forgeRepo: string;
let port: number;
let config: string;
let run: ReturnType<typeof startBerth> | undefined;

const cm = (mode: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: ${mode}\n`;
const STUCK = `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stuck\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: stuck}}\n  template:\n    metadata: {labels: {app: stuck}}\n    spec:\n      nodeSelector: {no-such-node: "true"}\n      containers: [{name: c, image: "nginx:1.27"}]\n`;

/** The bare repository the source serves, pushed to Gitea so both hold the same commits. */
const mirror = (ref = "refs/heads/main:refs/heads/main") =>
  gitea.push(join(git.dir, "repos", "infra.git"), forgeRepo, ref);

async function statusesOf(sha: string): Promise<GiteaStatus[]> {
  return (await gitea.statuses(forgeRepo, sha)).filter((s) => s.context === "berth/web");
}

beforeAll(async () => {
  berthBinary();
  [cluster, gitea] = await Promise.all([useCluster(), startGitea()]);
  ns = await freshNamespace(cluster, "status");
  git = await GitFixture.start();
  const repo = git.createRepo("infra");
  forgeRepo = await gitea.createRepo("infra");
  port = await freePort();
  config = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${repo}", interval: 1s}\napps:\n  - {name: web, path: web, namespace: ${ns}, timeout: 3s}\nledger: {path: $DIR/ledger.db}\napi: {listen: "127.0.0.1:${port}", externalURL: "https://berth.example.test", anonymousRead: true}\nstatus: {provider: gitea, url: "${forgeRepo}", tokenFile: $DIR/gitea.token, timeout: 2s}\n`,
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

test("a sync sets berth/web pending, then success, on the synced commit", async () => {
  const a = git.commit("infra", { "web/cm.yaml": cm("one") }, { message: "First settings" });
  mirror();
  run = startBerth(["run", "--config", config, "--kubeconfig", cluster.kubeconfigPath]);
  const got = await eventually("pending and success on the commit", 90_000, async () => {
    const s = await statusesOf(a);
    return s.some((x) => x.status === "success") ? s : undefined;
  });
  expect(got.map((s) => s.status)).toEqual(["pending", "success"]);
  expect(got[1]?.description).toBe("synced and healthy");
  expect(got[1]?.target_url).toBe("https://berth.example.test/#app=web");
  // Resyncs of the same commit every second set nothing more.
  await new Promise((r) => setTimeout(r, 3000));
  expect((await statusesOf(a)).length).toBe(2);
}, 180_000);

test("a failing health check sets failure with the reason, naming the object", async () => {
  const b = git.commit(
    "infra",
    { "web/cm.yaml": cm("two"), "web/deploy.yaml": STUCK },
    { message: "Add stuck" },
  );
  mirror();
  const got = await eventually("failure on the commit", 90_000, async () => {
    const s = await statusesOf(b);
    return s.some((x) => x.status === "failure") ? s : undefined;
  });
  expect(got[0]?.status).toBe("pending");
  const failure = got.find((s) => s.status === "failure");
  expect(failure?.description).toStartWith("health failed:");
  expect(failure?.description).toContain(`Deployment/${ns}/stuck`);
  expect(failure?.description.length).toBeLessThanOrEqual(140);
}, 180_000);

test("with Gitea down during a sync the sync succeeds and the status arrives once Gitea is back", async () => {
  // The fix is committed on a side branch, pushed to Gitea, then Gitea stops and the source's main moves to it.
  const c = git.commit(
    "infra",
    { "web/cm.yaml": cm("three"), "web/deploy.yaml": null },
    {
      message: "Drop stuck",
      branch: "fix",
    },
  );
  mirror("refs/heads/fix:refs/heads/main");
  await gitea.stop();
  git.moveRef("infra", "main", c);
  await eventually("the sync applied while Gitea is down", 60_000, async () =>
    kubectl(cluster, "get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.mode}") === "three"
      ? true
      : undefined,
  );
  const app = await eventually("the sync recorded as succeeded", 30_000, async () => {
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/apps/web`);
    const v = (await r.json()) as { syncStatus: string; revision: { applied?: string } };
    return v.revision.applied?.endsWith(c) ? v : undefined;
  });
  expect(app.syncStatus).toBe("Synced");
  // The status waits: a metric and a line the status page shows.
  const failing = await eventually("the failing delivery line", 30_000, async () => {
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/apps`);
    const body = (await r.json()) as { failingDeliveries?: Array<{ receiver: string; lastError: string }> };
    return body.failingDeliveries?.find((f) => f.receiver === "status:gitea");
  });
  expect(failing.lastError).toContain("127.0.0.1");
  expect(failing.lastError).not.toContain(gitea.token);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  expect(metrics).toMatch(/berth_notifications_failing\{receiver="status:gitea"\} [1-9]/);
  expect(metrics).toMatch(/berth_notifications_total\{receiver="status:gitea",result="failed"\} [1-9]/);
  expect(run?.output() ?? "").not.toContain(gitea.token);
  await gitea.start();
  const got = await eventually("success on the commit after Gitea is back", 90_000, async () => {
    const s = await statusesOf(c);
    return s.some((x) => x.status === "success") ? s : undefined;
  });
  // The pending queued during the outage was replaced by the newer success: one status, the latest.
  expect(got.map((s) => s.status)).toEqual(["success"]);
}, 300_000);

test("with two sources, each source's apps get their statuses on that source's repository", async () => {
  run?.child.kill("SIGKILL");
  await run?.exited;
  run = undefined;
  const apps = git.createRepo("apps");
  const appsForge = await gitea.createRepo("apps");
  // main of the work tree is still the commit with the stuck Deployment (the fix went in on a side branch).
  const a = git.commit("infra", { "web/cm.yaml": cm("four"), "web/deploy.yaml": null }, { message: "Four" });
  const apiCm = (v: string) => cm(v).replace("name: settings", "name: api-settings");
  const b = git.commit("apps", { "api/cm.yaml": apiCm("one") }, { message: "Api" });
  mirror();
  gitea.push(join(git.dir, "repos", "apps.git"), appsForge, "refs/heads/main:refs/heads/main");
  const two = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${git.url("infra")}", interval: 1s}\nsources:\n  apps:\n    url: "${apps}"\n    interval: 1s\n    status: {provider: gitea, url: "${appsForge}", tokenFile: $DIR/gitea.token, timeout: 2s}\napps:\n  - {name: web, path: web, namespace: ${ns}, timeout: 3s}\n  - {name: api, path: api, source: apps, namespace: ${ns}}\nledger: {path: $DIR/ledger.db}\napi: {listen: "127.0.0.1:${await freePort()}"}\nstatus: {provider: gitea, url: "${forgeRepo}", tokenFile: $DIR/gitea.token, timeout: 2s}\n`,
  );
  writeFileSync(join(dirname(two), "gitea.token"), `${gitea.token}\n`, { mode: 0o600 });
  const contexts = async (repo: string, sha: string) =>
    (await gitea.statuses(repo, sha)).map((s) => `${s.context} ${s.status}`);
  run = startBerth(["run", "--config", two, "--kubeconfig", cluster.kubeconfigPath]);
  await eventually("success on both commits", 90_000, async () =>
    (await contexts(forgeRepo, a)).includes("berth/web success") &&
    (await contexts(appsForge, b)).includes("berth/api success")
      ? true
      : undefined,
  );
  // Only each source's own app on each repository (a pending still queued when the success came is replaced).
  const onInfra = await contexts(forgeRepo, a);
  expect(onInfra.at(-1)).toBe("berth/web success");
  expect(onInfra.every((x) => x.startsWith("berth/web "))).toBe(true);
  const onApps = await contexts(appsForge, b);
  expect(onApps.at(-1)).toBe("berth/api success");
  expect(onApps.every((x) => x.startsWith("berth/api "))).toBe(true);
  // A new commit of the second source: its status again goes to its own repository, none to the other.
  const c = git.commit("apps", { "api/cm.yaml": apiCm("two") }, { message: "Api two" });
  gitea.push(join(git.dir, "repos", "apps.git"), appsForge, "refs/heads/main:refs/heads/main");
  await eventually("success on the new commit", 60_000, async () =>
    (await contexts(appsForge, c)).includes("berth/api success") ? true : undefined,
  );
  expect(await contexts(forgeRepo, a)).toEqual(onInfra);
}, 240_000);

test("a bad status config is exit 2 naming the field", async () => {
  const base = `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "http://127.0.0.1:9/x.git"}\napps: [{name: web, path: web}]\nledger: {path: $DIR/l.db}\napi: {listen: "127.0.0.1:0"}\n`;
  const cases: Array<[string, RegExp]> = [
    [
      'status: {provider: bitbucket, url: "https://b.example/o/r", tokenFile: t}\n',
      /status\.provider: expected one of/,
    ],
    [
      'status: {provider: gitea, url: "https://g.example/o/r", tokenFile: $DIR/missing.token}\n',
      /status\.tokenFile: .*no such file/,
    ],
    [
      'status: {provider: gitea, url: "https://g.example/onlyowner", tokenFile: $DIR/t.token}\n',
      /status\.url: .*owner\/name/,
    ],
    [
      'sources: {apps: {url: "http://127.0.0.1:9/a.git", status: {provider: gitea, url: "https://g.example/o/a", tokenFile: $DIR/missing.token}}}\n',
      /sources\.apps\.status\.tokenFile: .*no such file/,
    ],
  ];
  for (const [yaml, expected] of cases) {
    const file = writeConfig(base + yaml);
    writeFileSync(join(dirname(file), "t.token"), "secret-token-value\n");
    const r = await runBerth(["run", "--config", file, "--kubeconfig", cluster.kubeconfigPath], {}, 60_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(expected);
    expect(r.stderr).not.toContain("secret-token-value");
  }
}, 180_000);
