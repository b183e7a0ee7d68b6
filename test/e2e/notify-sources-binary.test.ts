/**
 * Source outages from the compiled binary (`berth run`) against the real control plane: two Git sources (real
 * Git http-backend behind proxies that can be cut) and a chart from a real HTTPS Helm repository that is
 * stopped. Each outage is notified on its own, naming the source; a restart of berth in the middle of the
 * outages tells nobody again; each recovery is notified once.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { NotifyEvent } from "../../agent/notify/event.ts";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, runBerth, startBerth } from "../support/binary.ts";
import { eventually, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { HelmRepoFixture } from "../support/helm-repo.ts";
import { freePort } from "../support/ports.ts";
import { type Receiver, startReceiver } from "../support/receiver.ts";
import { StallingProxy } from "../support/tcp-proxy.ts";
import { toolPaths } from "../support/tools.ts";

let cluster: TestCluster;
let git: GitFixture;
let charts: HelmRepoFixture;
let infraProxy: StallingProxy;
let appsProxy: StallingProxy;
let rx: Receiver;
let config: string;
let run: ReturnType<typeof startBerth> | undefined;
const SECRET = "sources-hook-secret";
const ns = `nsrc-${Math.random().toString(16).slice(2, 8)}`;
const cm = (name: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: ${ns}\ndata:\n  value: "${value}"\n`;

beforeAll(async () => {
  berthBinary();
  const { helm } = await toolPaths();
  [cluster, rx, charts, git] = await Promise.all([
    useCluster(),
    startReceiver({ webhookSecret: SECRET }),
    HelmRepoFixture.start({ username: "charts", password: "repo-s3cret" }),
    GitFixture.start(),
  ]);
  charts.publish("demo", "1.0.0");
  git.createRepo("infra");
  git.createRepo("apps");
  git.commit("infra", {
    "base/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
    "demo/values.yaml": "greeting: hello\n",
  });
  git.commit("apps", { "web/web.yaml": cm("web", "one") });
  const origin = new URL(git.url("infra"));
  infraProxy = await StallingProxy.start(origin.hostname, Number(origin.port));
  appsProxy = await StallingProxy.start(origin.hostname, Number(origin.port));
  const via = (proxy: StallingProxy, name: string) =>
    git.url(name).replace(`${origin.host}`, `127.0.0.1:${proxy.port}`);
  config = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${via(infraProxy, "infra")}", interval: 1s, timeout: 5s}\nsources:\n  apps: {url: "${via(appsProxy, "apps")}", interval: 1s, timeout: 5s}\nrender: {helm: "${helm}"}\napps:\n  - {name: base, path: base}\n  - {name: web, path: web, source: apps, dependsOn: [base]}\n  - name: demo\n    path: demo\n    namespace: ${ns}\n    dependsOn: [base]\n    helm: {repo: "${charts.url}", chart: demo, version: "1.x", auth: {username: charts, passwordFile: $DIR/repo-password}, caFile: "${charts.caFile}", values: [demo/values.yaml]}\nledger: {path: $DIR/ledger.db}\napi: {listen: "127.0.0.1:${await freePort()}", externalURL: "https://berth.example.test"}\nnotify:\n  - {name: hook, type: webhook, url: "${rx.url}/hook/sources", secretFile: $DIR/hook.secret, sourceUnreachableAfter: 2s}\n`,
  );
  writeFileSync(join(dirname(config), "repo-password"), "repo-s3cret\n");
  writeFileSync(join(dirname(config), "hook.secret"), SECRET, { mode: 0o600 });
}, 600_000);

afterAll(async () => {
  run?.child.kill("SIGKILL");
  await run?.exited;
  await Promise.all([rx?.close(), git?.close(), charts?.close(), infraProxy?.close(), appsProxy?.close()]);
  try {
    kubectl(cluster, "delete", "namespace", ns, "--wait=false");
  } catch {}
});

const start = () => startBerth(["run", "--config", config, "--kubeconfig", cluster.kubeconfigPath]);
const events = () =>
  rx.received
    .filter((r) => r.path === "/hook/sources")
    .map((r) => (r.body as { event: NotifyEvent }).event)
    .filter((e) => e.reason.startsWith("Source"));
const said = () => events().map((e) => `${e.reason} ${e.source?.kind} ${e.source?.name}`);

test("each source's outage is notified once, naming it, across a restart; each recovery once", async () => {
  const chart = `chart helm repository ${charts.url}`;
  run = start();
  await eventually("demo and web synced", 90_000, async () => {
    const r = await runBerth(["status", "--json", "--config", config]);
    const apps = JSON.parse(r.stdout) as Array<{ app: string; last?: { outcome?: string } }>;
    return ["base", "web", "demo"].every((a) => apps.find((s) => s.app === a)?.last?.outcome === "Succeeded")
      ? true
      : undefined;
  });
  appsProxy.cut();
  await charts.stop();
  await eventually("both outages notified", 60_000, async () => (said().length >= 2 ? true : undefined));
  await new Promise((r) => setTimeout(r, 1000));
  expect(said().sort()).toEqual([`SourceUnreachable ${chart}`, "SourceUnreachable git apps"].sort());
  const git = events().find((e) => e.source?.name === "apps");
  expect(git?.summary).toStartWith(`Git source "apps" http://127.0.0.1:${appsProxy.port}/`);
  expect(git?.summary).toContain("unreachable for");
  const helm = events().find((e) => e.source?.kind === "chart");
  expect(helm?.summary).toStartWith(`chart source helm repository ${charts.url} unreachable for`);
  expect(helm?.source?.url).toBe(charts.url);
  // The default source answers all along: no event names it.
  expect(said().some((s) => s.includes(" default"))).toBe(false);

  // berth restarts in the middle of both outages: they began before, and everyone was told already.
  run.child.kill("SIGKILL");
  await run.exited;
  run = start();
  await eventually("demo rendered from the cache again", 60_000, async () =>
    /chart source unreachable; rendering the last chart pulled/.test(run?.output() ?? "") ? true : undefined,
  );
  // Two looks at the sources (every 5 s) after the restart.
  await new Promise((r) => setTimeout(r, 11_000));
  expect(said()).toHaveLength(2);

  appsProxy.up();
  await charts.restart();
  await eventually("both recoveries", 60_000, async () => (said().length >= 4 ? true : undefined));
  await new Promise((r) => setTimeout(r, 6000));
  expect(said().slice(2).sort()).toEqual([`SourceRecovered ${chart}`, "SourceRecovered git apps"].sort());
  const recovered = events().find((e) => e.reason === "SourceRecovered" && e.source?.name === "apps");
  expect(recovered?.since).toBe(git?.since ?? "");
  for (const r of rx.received) expect(r.problems).toEqual([]);
}, 300_000);
