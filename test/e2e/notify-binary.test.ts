/**
 * Notifications from the compiled binary against the real control plane: a failing sync sends one Slack-format
 * message and one Alertmanager alert (a real Alertmanager, read back through its v2 API), the same failure
 * over several intervals sends nothing more, the fix sends "recovered" and resolves the alert; berth killed
 * with SIGKILL while the receivers are down delivers the pending notification exactly once after a restart;
 * a bad receiver config is exit 2 naming the field. Slack/Teams/Discord are a local receiver that checks each
 * payload's documented shape (their servers cannot be reached from here).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type AlertmanagerServer, startAlertmanager } from "../support/alertmanager.ts";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, runBerth, startBerth } from "../support/binary.ts";
import { eventually, freshNamespace, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { patchConfigMap } from "../support/cluster-test.ts";
import { GitFixture } from "../support/git.ts";
import { freePort } from "../support/ports.ts";
import { type Receiver, startReceiver } from "../support/receiver.ts";

let cluster: TestCluster;
let git: GitFixture;
let am: AlertmanagerServer;
let rx: Receiver;
let ns: string;
let repo: string;
let port: number;
let config: string;
let run: ReturnType<typeof startBerth> | undefined;
const SECRET = "notify-hook-secret";

const CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: safe\n";
const service = (p: number) =>
  `apiVersion: v1\nkind: Service\nmetadata:\n  name: api\nspec:\n  selector: {app: api}\n  ports: [{port: ${p}}]\n`;

beforeAll(async () => {
  berthBinary();
  [cluster, am, rx] = await Promise.all([
    useCluster(),
    startAlertmanager(),
    startReceiver({ webhookSecret: SECRET }),
  ]);
  ns = await freshNamespace(cluster, "notify");
  git = await GitFixture.start();
  repo = git.createRepo("infra");
  git.commit("infra", { "web/svc.yaml": service(70000) }, { message: "Open port 70000" });
  port = await freePort();
  config = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${repo}", interval: 1s}\napps:\n  - {name: web, path: web, namespace: ${ns}}\nledger: {path: $DIR/ledger.db}\napi: {listen: "127.0.0.1:${port}", externalURL: "https://berth.example.test"}\nnotify:\n  - {name: ops-slack, type: slack, urlFile: $DIR/slack.url}\n  - {name: am, type: alertmanager, url: "${am.url}"}\n  - {name: teams-errors, type: msteams, urlEnv: TEAMS_URL, when: 'event.severity == "error"'}\n  - {name: discord-other, type: discord, urlFile: $DIR/discord.url, when: 'event.app == "other"'}\n  - {name: hook, type: webhook, url: "${rx.url}/hook/e2e", secretFile: $DIR/hook.secret}\n`,
  );
  const dir = dirname(config);
  writeFileSync(join(dir, "slack.url"), `${rx.url}/slack/T000/B000/XXXX\n`, { mode: 0o600 });
  writeFileSync(join(dir, "discord.url"), `${rx.url}/discord/1/token\n`, { mode: 0o600 });
  writeFileSync(join(dir, "hook.secret"), SECRET, { mode: 0o600 });
}, 600_000);

afterAll(async () => {
  run?.child.kill("SIGKILL");
  await run?.exited;
  await Promise.all([am?.close(), rx?.close(), git?.close()]);
  try {
    kubectl(cluster, "delete", "namespace", ns, "--wait=false");
  } catch {}
});

const start = () =>
  startBerth(["run", "--config", config, "--kubeconfig", cluster.kubeconfigPath], {
    TEAMS_URL: `${rx.url}/teams/workflow`,
  });
const got = (prefix: string) => rx.received.filter((r) => r.path.startsWith(prefix));
const slackTexts = () => got("/slack/").map((r) => String((r.body as { text: string }).text));
const webAlerts = async () => (await am.alerts()).filter((a) => a.labels.app === "web");

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(name))
    .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
}

test("a failing sync notifies once over many intervals; the fix notifies recovered and resolves the alert", async () => {
  run = start();
  await eventually("the Slack message", 60_000, async () => (slackTexts().length >= 1 ? true : undefined));
  const alert = await eventually("the Alertmanager alert", 30_000, async () => (await webAlerts())[0]);
  expect(alert.labels).toEqual({ alertname: "BerthAppFailing", app: "web" });
  expect(alert.annotations.reason).toBe("SyncFailed");
  expect(alert.annotations.commit).toContain("Open port 70000");
  expect(alert.generatorURL).toBe("https://berth.example.test/#app=web");
  expect(Date.parse(alert.endsAt)).toBeGreaterThan(Date.now() + 3_600_000);
  // Several more failed intervals of the same failure.
  const failedBefore = await metric('berth_sync_total{app="web",result="Failed"}');
  await eventually("five more failed syncs", 60_000, async () =>
    (await metric('berth_sync_total{app="web",result="Failed"}')) >= failedBefore + 5 ? true : undefined,
  );
  expect(slackTexts()).toHaveLength(1);
  expect(slackTexts()[0]).toStartWith("web: sync failed (main@sha1:");
  const block = JSON.stringify((got("/slack/")[0]?.body as { blocks?: unknown } | undefined)?.blocks);
  expect(block).toContain("Open port 70000");
  expect(block).toContain("https://berth.example.test/#app=web");
  expect(block).toContain("70000");
  expect(got("/teams/")).toHaveLength(1);
  expect(got("/hook/")).toHaveLength(1);
  expect(got("/discord/")).toHaveLength(0);
  expect(await webAlerts()).toHaveLength(1);
  for (const r of rx.received) expect(r.problems).toEqual([]);

  git.commit(
    "infra",
    { "web/svc.yaml": service(8080), "web/cm.yaml": CONFIGMAP },
    { message: "Use port 8080" },
  );
  await eventually("the recovered message", 60_000, async () =>
    slackTexts().length >= 2 ? true : undefined,
  );
  expect(slackTexts()[1]).toStartWith("web: sync recovered (main@sha1:");
  expect(JSON.stringify(got("/slack/")[1]?.body)).toContain("Use port 8080");
  await eventually("the alert resolved", 30_000, async () =>
    (await webAlerts()).length === 0 ? true : undefined,
  );
  expect(kubectl(cluster, "get", "service", "api", "-n", ns, "-o", "jsonpath={.spec.ports[0].port}")).toBe(
    "8080",
  );
  await new Promise((r) => setTimeout(r, 2000));
  expect(slackTexts()).toHaveLength(2);
  expect(got("/teams/")).toHaveLength(2);
  expect((got("/hook/")[1]?.body as { event?: { reason?: string } } | undefined)?.event?.reason).toBe(
    "SyncRecovered",
  );
  for (const r of rx.received) expect(r.problems).toEqual([]);
}, 240_000);

test("a change made behind berth's back is healed and notified as drift", async () => {
  const before = slackTexts().length;
  patchConfigMap(cluster, ns, "settings", { mode: "fast" });
  await eventually("the drift message", 30_000, async () =>
    slackTexts()
      .slice(before)
      .some((t) => t.startsWith(`web: drift healed on ConfigMap/${ns}/settings`))
      ? true
      : undefined,
  );
  await eventually("the value restored", 30_000, async () =>
    kubectl(cluster, "get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.mode}") === "safe"
      ? true
      : undefined,
  );
  const hook = got("/hook/").at(-1)?.body as
    | { event?: { reason?: string; objects?: Array<{ subject: string }> } }
    | undefined;
  expect(hook?.event?.reason).toBe("DriftHealed");
  expect(hook?.event?.objects?.[0]?.subject).toBe(`ConfigMap/${ns}/settings`);
  // Info news is not an alert, and `when: event.severity == "error"` keeps it from Teams.
  expect(await webAlerts()).toHaveLength(0);
  expect(got("/teams/")).toHaveLength(2);
  for (const r of rx.received) expect(r.problems).toEqual([]);
}, 90_000);

test("killed with SIGKILL while the receiver is down, berth delivers the pending notification once after a restart", async () => {
  if (!run) throw new Error("the first test starts berth");
  await rx.stop();
  const before = slackTexts().length;
  git.commit(
    "infra",
    { "web/svc.yaml": service(70001), "web/cm.yaml": CONFIGMAP },
    { message: "Open port 70001" },
  );
  await eventually("a failed delivery to Slack", 60_000, async () =>
    /notify: delivery failed; will retry[^\n]*ops-slack|ops-slack[^\n]*notify: delivery failed/.test(
      run?.output() ?? "",
    )
      ? true
      : undefined,
  );
  run.child.kill("SIGKILL");
  await run.exited;
  await rx.start();
  run = start();
  await eventually("the pending Slack message", 60_000, async () =>
    slackTexts().length > before ? true : undefined,
  );
  // Several more failing intervals after the restart: the failure was already queued, so nothing new.
  const failedBefore = await eventually("the API", 30_000, async () =>
    metric('berth_sync_total{app="web",result="Failed"}'),
  );
  await eventually("three more failed syncs", 60_000, async () =>
    (await metric('berth_sync_total{app="web",result="Failed"}')) >= failedBefore + 3 ? true : undefined,
  );
  const fresh = got("/slack/").slice(before);
  expect(fresh).toHaveLength(1);
  expect(JSON.stringify(fresh[0]?.body)).toContain("Open port 70001");
  expect(slackTexts()[before]).toStartWith("web: sync failed");
  const alert = await eventually("the new alert", 30_000, async () => (await webAlerts())[0]);
  expect(alert.annotations.commit).toContain("Open port 70001");
  expect(await metric("berth_notifications_pending")).toBe(0);
  for (const r of rx.received) expect(r.problems).toEqual([]);
}, 240_000);

test("a bad receiver is exit 2 naming the field", async () => {
  const dir = dirname(config);
  const head = `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${repo}"}\napps: [{name: web, path: web}]\nledger: {path: ${dir}/bad-ledger.db}\n`;
  const cases: Array<[string, string]> = [
    ["notify: [{name: x, type: pagerduty, url: 'http://127.0.0.1:9'}]", "notify[0].type"],
    [`notify: [{name: x, type: slack, urlFile: ${dir}/absent.url}]`, "notify[0].urlFile"],
    ["notify: [{name: x, type: slack, urlEnv: SLACK_URL, when: 'event.reason =='}]", "notify[0].when"],
  ];
  for (const [yaml, field] of cases) {
    const path = join(dir, "bad.yaml");
    writeFileSync(path, `${head}${yaml}\n`);
    const r = await runBerth(["run", "--config", path, "--kubeconfig", cluster.kubeconfigPath], {
      SLACK_URL: "http://127.0.0.1:9/x",
    });
    expect({ code: r.code, field, named: r.stderr.includes(field) }).toEqual({ code: 2, field, named: true });
  }
}, 60_000);
