/**
 * Approval over HTTP, end to end: a running compiled binary holds a sync on a `hold` rule (nothing applied,
 * the ledger says why), a read token cannot approve, and `POST /api/v1/apps/NAME/approve` with an operate token
 * releases it: the next attempt applies the held object without any other trigger. `berth approve` on the command
 * line (which writes the ledger file) releases the next hold the same way, and both approvals are notified the
 * same: one `Approved` event each, from the running agent (a webhook receiver reads them).
 */
import { beforeAll, describe, expect, test } from "bun:test";
import type { NotifyEvent } from "../../agent/notify/event.ts";
import { writeBeside } from "../support/berth.ts";
import { apiAddress, runBerth } from "../support/binary.ts";
import { eventually } from "../support/cluster.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { GATE_RULE, syncRules } from "../support/manifests.ts";
import { type Receiver, startReceiver } from "../support/receiver.ts";

const t = useClusterTest({ prefix: "approve-http", binary: true });
const ns = t.ns;
let base: string;
let rx: Receiver;
let config: string;
const approvals = () =>
  rx.received
    .filter((r) => r.path === "/hook/approve")
    .map((r) => (r.body as { event: NotifyEvent }).event)
    .filter((e) => e.reason === "Approved");
const OPERATE = "approve-operate-token";
const READ = "approve-read-token";

const RULES = syncRules(GATE_RULE);
const cm = (name: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, namespace: ${ns}}\ndata: {a: "1"}\n`;

const exists = (name: string) => {
  try {
    t.inNs("get", "configmap", name);
    return true;
  } catch {
    return false;
  }
};
const entries = async () => {
  const r = await fetch(`${base}/api/v1/ledger?app=app&limit=5`, {
    headers: { Authorization: `Bearer ${READ}` },
  });
  expect(r.status).toBe(200);
  return (
    (await r.json()) as {
      entries: Array<{ id: number; revision: string; outcome: string; reason: string; message: string }>;
    }
  ).entries;
};

beforeAll(async () => {
  rx = await startReceiver({ webhookSecret: "approve-hook-secret" });
  t.onTeardown(() => rx.close());
  t.commit({
    "app/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n`,
    "app/plain.yaml": cm("plain"),
  });
  const api = await apiAddress();
  base = api.base;
  config = t.writeConfig([{ name: "app", path: "app", timeout: "30s" }], {
    source: "interval: 1s",
    before: "rules: [$DIR/rules.yaml]\n",
    extra: `api:\n  listen: 127.0.0.1:${api.port}\n  tokenFile: $DIR/token\n  tokens: [{file: $DIR/read-token, scope: read}]\nnotify:\n  - {name: hook, type: webhook, url: "${rx.url}/hook/approve", secretFile: $DIR/hook.secret}\n`,
  });
  writeBeside(config, {
    "rules.yaml": RULES,
    token: `${OPERATE}\n`,
    "read-token": `${READ}\n`,
    "hook.secret": "approve-hook-secret",
  });
  t.startRun(config);
  await eventually("the first sync", 90_000, async () => (exists("plain") ? true : undefined));
}, 180_000);

describe("approve over HTTP on a running binary", () => {
  test("a held sync waits, a read token is refused, POST approve releases it", async () => {
    t.commit({ "app/gated.yaml": cm("gated-one") }, "add a gated object");
    const held = await eventually("the sync to be held", 60_000, async () =>
      (await entries()).find((e) => e.reason === "PlanRejected" && e.message.includes("gate-the-gated")),
    );
    expect(held.message).toContain("a gated object needs an approval");
    // Held over several intervals: still nothing applied.
    await new Promise((r) => setTimeout(r, 3_000));
    expect(exists("gated-one")).toBe(false);

    const denied = await fetch(`${base}/api/v1/apps/app/approve`, {
      method: "POST",
      headers: { Authorization: `Bearer ${READ}`, "Content-Type": "application/json" },
      body: JSON.stringify({ revision: held.revision }),
    });
    expect(denied.status).toBe(403);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(exists("gated-one")).toBe(false);

    const approved = await fetch(`${base}/api/v1/apps/app/approve`, {
      method: "POST",
      headers: { Authorization: `Bearer ${OPERATE}`, "Content-Type": "application/json" },
      body: JSON.stringify({ revision: held.revision, by: "e2e-reviewer" }),
    });
    expect(approved.status).toBe(200);
    expect(await approved.json()).toMatchObject({ app: "app", revision: held.revision, by: "e2e-reviewer" });

    await eventually("the approved sync to apply the held object", 30_000, async () =>
      exists("gated-one") ? true : undefined,
    );
    const done = await eventually("the approved attempt recorded as Succeeded", 30_000, async () =>
      (await entries()).find((e) => e.revision === held.revision && e.outcome === "Succeeded"),
    );
    expect(done.id).toBeGreaterThan(held.id);
    const told = await eventually("the Approved notification", 30_000, async () => approvals()[0]);
    expect(told).toMatchObject({
      app: "app",
      revision: held.revision,
      summary: "app: approved by e2e-reviewer",
    });
  }, 180_000);

  test("`berth approve` on the command line is notified like an approval over HTTP, once, and releases the hold", async () => {
    t.commit({ "app/gated2.yaml": cm("gated-two") }, "add another gated object");
    const held = await eventually("the next sync to be held", 60_000, async () =>
      (await entries()).find((e) => e.reason === "PlanRejected" && e.revision.endsWith(t.git.head("infra"))),
    );
    const r = await runBerth(["approve", "--app", "app", "--by", "cli-reviewer", "--config", config]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`approved app at ${held.revision} by cli-reviewer`);
    const told = await eventually("the CLI approval notified", 30_000, async () => approvals()[1]);
    expect(told).toMatchObject({ app: "app", revision: held.revision, severity: "info" });
    expect(told.summary).toBe("app: approved by cli-reviewer");
    await eventually("the held object applied", 30_000, async () => (exists("gated-two") ? true : undefined));
    // Each approval is told once: the agent's look at the ledger every 2 s does not repeat them.
    await new Promise((r) => setTimeout(r, 4000));
    expect(approvals().map((e) => e.summary)).toEqual([
      "app: approved by e2e-reviewer",
      "app: approved by cli-reviewer",
    ]);
    for (const x of rx.received) expect(x.problems).toEqual([]);
  }, 180_000);
});
