/**
 * Drift across an API-server restart, on a control plane of its own (the shared one is never restarted):
 * berth's watches lose their connection, kube-apiserver comes back on the same port, a kubectl change is
 * made at once, and the drift watcher still catches and heals it after the watches reconnect; and, through a
 * proxy the test cuts, an edit made while berth cannot reach the API server at all is healed after it can.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type DriftWiring, type Wired, wireDrift } from "../../agent/cli/wire.ts";
import type { DriftReport } from "../../agent/drift/drift.ts";
import type { Logger } from "../../agent/engine/log.ts";
import { syncApp, wireFor, writeConfig } from "../support/berth.ts";
import { eventually } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { StallingProxy } from "../support/tcp-proxy.ts";

const SCRIPT = join(import.meta.dir, "..", "..", "scripts", "cluster", "cluster.sh");
const clusterDir = mkdtempSync(join(tmpdir(), "berth-drift-restart-"));
const env = { ...process.env, BERTH_CLUSTER_DIR: clusterDir };
const run = promisify(execFile);
const ns = `drift-restart-${Math.random().toString(16).slice(2, 8)}`;
const appName = "restart";

let kubeconfig = "";
let kubectlBin = "";
let git: GitFixture;
let w: Wired;
let drift: DriftWiring;
let proxy: StallingProxy;
const reports: DriftReport[] = [];
const states: Array<{ msg: string; kind: unknown }> = [];
// Captures the view's "watch lost" / "watch connected" lines, to prove the watches really were cut.
const logger: Logger = {
  log: (_level, msg, fields) => {
    if (msg.startsWith("watch ")) states.push({ msg, kind: fields?.kind });
  },
  child: () => logger,
};

// Async: the Git server runs in this process, and a sync spawn would block it.
const kubectl = async (...args: string[]) =>
  (await run(kubectlBin, ["--kubeconfig", kubeconfig, ...args], { encoding: "utf8" })).stdout;
const greeting = async () =>
  JSON.parse(await kubectl("get", "configmap", "settings", "-n", ns, "-o", "json")).data.greeting;

beforeAll(async () => {
  // Started before the Git server, so a sync spawn is harmless here.
  const up = execFileSync("bash", [SCRIPT, "up"], {
    env,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  kubeconfig = /^KUBECONFIG=(.+)$/m.exec(up)?.[1] ?? "";
  const bin = /^BERTH_CLUSTER_BIN=(.+)$/m.exec(
    execFileSync("bash", [SCRIPT, "env"], { env, encoding: "utf8" }),
  )?.[1];
  kubectlBin = join(bin ?? "", "kubectl");
  git = await GitFixture.start();
  const url = git.createRepo("infra");
  git.commit(
    "infra",
    {
      "app/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
      "app/cm.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: hello\n  colour: blue\n`,
    },
    { message: "app" },
  );
  const config = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", ref: main, interval: 1h}\napps:\n  - {name: ${appName}, path: app, namespace: ${ns}, timeout: 60s, drift: heal}\nledger: {path: $DIR/ledger.db}\n`,
  );
  // berth reaches the API server through a proxy the test can cut; kubectl goes direct.
  const server = new URL(/server: (\S+)/.exec(readFileSync(kubeconfig, "utf8"))?.[1] ?? "");
  proxy = await StallingProxy.start(server.hostname, Number(server.port));
  const berthKubeconfig = join(clusterDir, "berth.kubeconfig");
  writeFileSync(
    berthKubeconfig,
    readFileSync(kubeconfig, "utf8").replace(/server: \S+/, `server: https://127.0.0.1:${proxy.port}`),
  );
  w = await wireFor(config, berthKubeconfig);
  drift = wireDrift(w, logger, (r) => reports.push(r));
  const r = await syncApp(w, appName);
  expect(r.outcome).toBe("Succeeded");
  await eventually("the view connected", 10_000, async () =>
    drift.view.connected(appName) ? true : undefined,
  );
}, 300_000);

afterAll(async () => {
  await drift?.close();
  w?.close();
  await git?.close();
  await proxy?.close();
  await run("bash", [SCRIPT, "down"], { env }).catch(() => {});
}, 60_000);

test("a change made right after kube-apiserver restarts is caught and healed once the watches reconnect", async () => {
  const subject = `ConfigMap/${ns}/settings`;
  const before = reports.length;
  const lostBefore = states.filter((s) => s.msg.startsWith("watch lost")).length;
  await run("bash", [SCRIPT, "restart-apiserver"], { env });
  // The change races the watches' reconnect: it lands while they are down or just after they relisted.
  await kubectl("patch", "configmap", "settings", "-n", ns, "-p", '{"data":{"greeting":"tampered"}}');
  const r = await eventually("a drift report after the restart", 30_000, async () =>
    reports.slice(before).find((x) => x.subject === subject),
  );
  expect(r).toMatchObject({ app: appName, action: "healed", fields: ["/data/greeting"] });
  expect(await greeting()).toBe("hello");
  // The restart really cut the watches, and they came back.
  expect(states.filter((s) => s.msg.startsWith("watch lost")).length).toBeGreaterThan(lostBefore);
  await eventually("the view reconnected", 15_000, async () =>
    drift.view.connected(appName) ? true : undefined,
  );
  expect(w.ledger.driftEvents({ app: appName })[0]).toMatchObject({
    action: "healed",
    fields: ["/data/greeting"],
  });
}, 120_000);

test("a change made while berth cannot reach the API server is caught by the relist when it can again", async () => {
  // berth's own connection goes through a proxy that can make the API server look down; kubectl does not,
  // so the edit provably happens while every watch is disconnected (not racing the reconnect).
  const subject = `ConfigMap/${ns}/settings`;
  const before = reports.length;
  const lostBefore = states.filter((s) => s.msg.startsWith("watch lost")).length;
  proxy.cut();
  await eventually("the view to see its watches lost", 15_000, async () =>
    states.filter((s) => s.msg.startsWith("watch lost")).length > lostBefore ? true : undefined,
  );
  await kubectl("patch", "configmap", "settings", "-n", ns, "-p", '{"data":{"greeting":"offline-edit"}}');
  // Down for a while: nothing can be healed, and the edit stays.
  await new Promise((r) => setTimeout(r, 2_000));
  expect(drift.view.connected(appName)).toBe(false);
  expect(reports.slice(before).filter((x) => x.subject === subject)).toEqual([]);
  expect(await greeting()).toBe("offline-edit");
  proxy.up();
  const r = await eventually("a drift report after the API server is reachable again", 30_000, async () =>
    reports.slice(before).find((x) => x.subject === subject),
  );
  expect(r).toMatchObject({ app: appName, action: "healed", fields: ["/data/greeting"] });
  expect(await greeting()).toBe("hello");
}, 120_000);

test("after the reconnect the watch keeps delivering: a second change is healed too", async () => {
  const before = reports.length;
  await kubectl("patch", "configmap", "settings", "-n", ns, "-p", '{"data":{"colour":"red"}}');
  const r = await eventually("a second drift report", 15_000, async () =>
    reports.slice(before).find((x) => x.subject === `ConfigMap/${ns}/settings`),
  );
  expect(r).toMatchObject({ action: "healed", fields: ["/data/colour"] });
  const cm = JSON.parse(await kubectl("get", "configmap", "settings", "-n", ns, "-o", "json"));
  expect(cm.data).toMatchObject({ greeting: "hello", colour: "blue" });
}, 60_000);
