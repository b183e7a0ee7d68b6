/**
 * `berth approve` from the command line while `berth run` runs (compiled binary, real control plane): the CLI
 * writes the approval to the ledger file, the running agent notices it there and sends the same `Approved`
 * notification an approval over the API does — once — and the held object is applied.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { NotifyEvent } from "../../agent/notify/event.ts";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, runBerth, startBerth } from "../support/binary.ts";
import { eventually, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { freePort } from "../support/ports.ts";
import { type Receiver, startReceiver } from "../support/receiver.ts";

let cluster: TestCluster;
let git: GitFixture;
let rx: Receiver;
let config: string;
let run: ReturnType<typeof startBerth>;
const ns = `approve-cli-${Math.random().toString(16).slice(2, 8)}`;
const SECRET = "approve-cli-secret";
const RULES = `apiVersion: berth.dev/v1alpha1
kind: Rules
sync:
  - name: gate-the-gated
    when: change.action == 'created' && change.object.metadata.name.startsWith('gated')
    verdict: hold
    message: a gated object needs an approval
`;
const cm = (name: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: ${ns}}\ndata: {a: "1"}\n`;
const exists = (name: string) => {
  try {
    kubectl(cluster, "get", "configmap", name, "-n", ns);
    return true;
  } catch {
    return false;
  }
};
const events = () =>
  rx.received.filter((r) => r.path === "/hook/approve").map((r) => (r.body as { event: NotifyEvent }).event);

beforeAll(async () => {
  berthBinary();
  [cluster, git, rx] = await Promise.all([
    useCluster(),
    GitFixture.start(),
    startReceiver({ webhookSecret: SECRET }),
  ]);
  const url = git.createRepo("infra");
  git.commit("infra", {
    "app/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n`,
    "app/plain.yaml": cm("plain"),
  });
  config = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", interval: 1s}\napps:\n  - {name: app, path: app, timeout: 30s}\nrules: [$DIR/rules.yaml]\nledger: {path: $DIR/ledger.db}\napi: {listen: "127.0.0.1:${await freePort()}", externalURL: "https://berth.example.test"}\nnotify:\n  - {name: hook, type: webhook, url: "${rx.url}/hook/approve", secretFile: $DIR/hook.secret}\n`,
  );
  writeFileSync(join(dirname(config), "rules.yaml"), RULES);
  writeFileSync(join(dirname(config), "hook.secret"), SECRET, { mode: 0o600 });
  run = startBerth(["run", "--config", config, "--kubeconfig", cluster.kubeconfigPath]);
  await eventually("the first sync", 90_000, async () => (exists("plain") ? true : undefined));
}, 180_000);

afterAll(async () => {
  run?.child.kill("SIGTERM");
  await run?.exited;
  await Promise.all([git?.close(), rx?.close()]);
  try {
    kubectl(cluster, "delete", "namespace", ns, "--wait=false");
  } catch {}
});

test("an approval by `berth approve` is notified like one through the API, once, and releases the hold", async () => {
  git.commit("infra", { "app/gated.yaml": cm("gated-one") }, { message: "add a gated object" });
  const held = await eventually("the hold notified", 60_000, async () =>
    events().find((e) => e.reason === "HeldForApproval"),
  );
  expect(exists("gated-one")).toBe(false);
  const r = await runBerth(["approve", "--app", "app", "--by", "cli-reviewer", "--config", config]);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain(`approved app at ${held.revision} by cli-reviewer`);
  const approved = await eventually("the Approved notification", 30_000, async () =>
    events().find((e) => e.reason === "Approved"),
  );
  expect(approved).toMatchObject({ app: "app", revision: held.revision, severity: "info" });
  expect(approved.summary).toBe("app: approved by cli-reviewer");
  expect(approved.link).toBe("https://berth.example.test/#app=app");
  await eventually("the held object applied", 30_000, async () => (exists("gated-one") ? true : undefined));
  await new Promise((r) => setTimeout(r, 4000));
  expect(events().filter((e) => e.reason === "Approved")).toHaveLength(1);
  for (const x of rx.received) expect(x.problems).toEqual([]);
}, 180_000);
