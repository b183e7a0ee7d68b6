/**
 * The compiled binary's `berth run` with apps in parallel, against the real control plane and Git server:
 * app `stuck` waits (timeout 60 s) on a Deployment no node can take, while a push to app `web` goes live
 * within 2 s and a kubectl edit of `web` is healed; app `after` (dependsOn stuck) starts only once `stuck` is
 * healthy at the same revision. Then: every trigger kind as the ledger file records it (api:<token>,
 * webhook:<provider>, loop, cli, replay), and a SIGTERM that logs no "watch lost" line.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, runBerth, startBerth } from "../support/binary.ts";
import { eventually, freshNamespace, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { freePort } from "../support/ports.ts";

let cluster: TestCluster;
let git: GitFixture;
let config: string;
let ns: string;
let base: string;
let run: ReturnType<typeof startBerth>;
let stderr = "";
const suffix = Math.random().toString(16).slice(2, 8);
/** A node label only this test sets: the Deployment of `stuck` cannot schedule until a node carries it. */
const NODE_LABEL = `berth.dev/concur-${suffix}`;
const SECRET = "concur-webhook-secret";
const OPS_TOKEN = "concur-ops-token";
const node = "kwok-node-0";
// App names are unique per run: berth watches its objects by app label cluster-wide, and other tests have a "web".
const STUCK = `stuck-${suffix}`;
const WEB = `web-${suffix}`;
const AFTER = `after-${suffix}`;

const cm = (name: string, greeting: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: ${ns}\ndata:\n  greeting: ${greeting}\n`;
const stuckDeployment = () =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: stuck\n  namespace: ${ns}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: stuck}}\n  template:\n    metadata: {labels: {app: stuck}}\n    spec:\n      nodeSelector: {"${NODE_LABEL}": "yes"}\n      containers: [{name: c, image: "nginx:1.27"}]\n`;

const api = async (path: string, init: RequestInit = {}) => {
  const r = await fetch(`${base}${path}`, init);
  return { status: r.status, body: (await r.json()) as any };
};
const entries = async (app: string) =>
  (await api(`/api/v1/ledger?app=${app}&limit=50`)).body.entries as any[];
// Read through the async client: a blocking kubectl would stall the in-process Git server berth fetches from.
const greeting = async (name: string) =>
  (await cluster.core.readNamespacedConfigMap({ name, namespace: ns }).catch(() => undefined))?.data
    ?.greeting;
const exists = (kind: string, name: string) => {
  try {
    execFileSync(cluster.kubectl, ["--kubeconfig", cluster.kubeconfigPath, "get", kind, name, "-n", ns], {
      stdio: "ignore",
    });
    return true;
  } catch {
    return false;
  }
};
/** What the ledger file holds for one entry, as `berth ledger show --json` prints it. */
const ledgerShow = async (id: number) => {
  const r = await runBerth(["ledger", "show", String(id), "--json", "--config", config]);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
};

beforeAll(async () => {
  berthBinary();
  cluster = await useCluster();
  ns = await freshNamespace(cluster, "concur");
  git = await GitFixture.start();
  const url = git.createRepo("infra");
  git.commit("infra", {
    "stuck/deploy.yaml": stuckDeployment(),
    "web/settings.yaml": cm("web-settings", "one"),
    "after/settings.yaml": cm("after-settings", "after"),
  });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  // Git is polled every 250 ms; the apps' own intervals are long, so only a commit or a trigger syncs them.
  config = writeConfig(
    [
      "apiVersion: berth.dev/v1alpha1",
      "kind: Agent",
      `source: {url: "${url}", interval: 250ms}`,
      "apps:",
      `  - {name: ${STUCK}, path: stuck, timeout: 60s, interval: 1h}`,
      `  - {name: ${WEB}, path: web, interval: 1h}`,
      `  - {name: ${AFTER}, path: after, dependsOn: [${STUCK}], interval: 1h}`,
      "ledger: {path: $DIR/ledger.db}",
      "api:",
      `  listen: 127.0.0.1:${port}`,
      "  anonymousRead: true",
      "  tokens: [{file: $DIR/ops-token, scope: operate, name: ops}]",
      "  webhook: {secretFile: $DIR/hook-secret}",
      "",
    ].join("\n"),
  );
  const dir = dirname(config);
  writeFileSync(join(dir, "ops-token"), `${OPS_TOKEN}\n`, { mode: 0o600 });
  writeFileSync(join(dir, "hook-secret"), `${SECRET}\n`, { mode: 0o600 });
  run = startBerth(["run", "--config", config, "--kubeconfig", cluster.kubeconfigPath]);
  run.child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
}, 600_000);

afterAll(async () => {
  run?.child.kill("SIGKILL");
  await git?.close();
  try {
    kubectl(cluster, "label", "node", node, `${NODE_LABEL}-`);
  } catch {}
  try {
    kubectl(cluster, "delete", "namespace", ns, "--wait=false");
  } catch {}
});

describe("berth run with apps in parallel", () => {
  test("a push to one app is live within 2 s and its drift healed while another app waits on health; dependsOn holds", async () => {
    await eventually("web synced and stuck applied", 30_000, async () =>
      exists("configmap", "web-settings") && exists("deployment", "stuck") ? true : undefined,
    );
    // stuck is in its health wait: its entry is open, and after has not started.
    expect((await entries(STUCK))[0]).toMatchObject({ outcome: "Running" });
    expect(await entries(AFTER)).toEqual([]);

    // Timed from the moment the commit is on the server (the local commit and push take a while under load).
    const sha = git.commit("infra", { "web/settings.yaml": cm("web-settings", "two") });
    const t0 = Date.now();
    await eventually("the push to web live", 5_000, async () =>
      (await greeting("web-settings")) === "two" ? true : undefined,
    );
    const elapsed = Date.now() - t0;
    // Live once applied; the entry closes a moment later, after the (immediate) health check.
    const webEntry = await eventually("web's entry recorded", 5_000, async () => {
      const e = (await entries(WEB))[0];
      return e?.outcome !== "Running" ? e : undefined;
    });
    expect(webEntry).toMatchObject({ revision: `main@sha1:${sha}`, outcome: "Succeeded" });
    const { timings } = (await api(`/api/v1/ledger/${webEntry.id}`)).body;
    console.log(`push → live for web while stuck waits: ${elapsed} ms; stages ${JSON.stringify(timings)}`);
    expect(elapsed).toBeLessThan(2_000);
    const stuckEntry = (await entries(STUCK))[0];
    expect(stuckEntry).toMatchObject({ outcome: "Running" });

    // Drift on web (another field manager) is healed while stuck still waits.
    kubectl(
      cluster,
      "patch",
      "configmap",
      "web-settings",
      "-n",
      ns,
      "--type=merge",
      "-p",
      '{"data":{"greeting":"drifted"}}',
    );
    await eventually("web's drift healed", 10_000, async () =>
      (await greeting("web-settings")) === "two" ? true : undefined,
    );
    expect((await entries(STUCK))[0]).toMatchObject({ id: stuckEntry.id, outcome: "Running" });
    expect(exists("configmap", "after-settings")).toBe(false);
    expect(await entries(AFTER)).toEqual([]);
    expect((await api(`/api/v1/apps/${AFTER}`)).body.syncStatus).toBe("WaitingOnDependency");

    // A node that fits: stuck becomes healthy (then re-syncs at the pushed commit), and only then after starts.
    kubectl(cluster, "label", "node", node, `${NODE_LABEL}=yes`);
    await eventually("after synced", 60_000, async () =>
      (await entries(AFTER))[0]?.outcome === "Succeeded" ? true : undefined,
    );
    const stuck = await entries(STUCK);
    const firstHealthyAtHead = stuck
      .filter((e) => e.outcome === "Succeeded" && e.revision === `main@sha1:${sha}`)
      .at(-1);
    expect(firstHealthyAtHead).toBeDefined();
    const after = await entries(AFTER);
    expect(after).toHaveLength(1);
    expect(after[0].revision).toBe(`main@sha1:${sha}`);
    expect(Date.parse(after[0].startedAt)).toBeGreaterThanOrEqual(Date.parse(firstHealthyAtHead.finishedAt));
    expect(await greeting("after-settings")).toBe("after");
  }, 120_000);

  test("the API and webhooks record who started a sync", async () => {
    // One at a time: the API answers 202 at once, and two triggers before the attempt starts make one attempt.
    const finishedBy = (trigger: string) =>
      eventually(`an attempt by ${trigger} finished`, 20_000, async () => {
        const e = (await entries(WEB)).find((x) => x.trigger === trigger);
        return e && e.outcome !== "Running" ? e : undefined;
      });
    const bySync = await api(`/api/v1/apps/${WEB}/sync`, {
      method: "POST",
      headers: { Authorization: `Bearer ${OPS_TOKEN}` },
    });
    expect(bySync.status).toBe(202);
    expect((await finishedBy("api:ops")).outcome).toBe("Succeeded");
    const body = JSON.stringify({ ref: "refs/heads/main", app: WEB });
    const ts = String(Math.floor(Date.now() / 1000));
    const hook = await fetch(`${base}/hooks/generic`, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "X-Berth-Timestamp": ts,
        "X-Berth-Delivery": `concur-${suffix}`,
        "X-Berth-Signature": `sha256=${createHmac("sha256", SECRET).update(`${ts}.${body}`).digest("hex")}`,
      },
      body,
    });
    expect(hook.status).toBe(202);
    expect(await hook.json()).toEqual({ triggered: [WEB] });
    expect((await finishedBy("webhook:generic")).outcome).toBe("Succeeded");
    const web = await entries(WEB);
    expect(web.filter((e) => e.trigger === "api:ops")).toHaveLength(1);
    expect(web.filter((e) => e.trigger === "webhook:generic")).toHaveLength(1);
  }, 60_000);

  test("SIGTERM stops berth run without a single 'watch lost' line; the ledger file holds every trigger kind", async () => {
    expect(stderr).toContain("watch connected");
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
    expect(stderr).toContain('"msg":"stopped"');
    expect(stderr).not.toContain("watch lost");
    // Nothing was still at work when the ledger closed.
    expect(stderr).not.toContain("connection is closed");

    // One pass of the CLI, and a replay of web's first entry.
    const sync = await runBerth(["sync", "--config", config, "--kubeconfig", cluster.kubeconfigPath]);
    expect(sync.code).toBe(0);
    expect(sync.stderr).not.toContain("watch lost");
    const list = JSON.parse(
      (await runBerth(["ledger", "list", "--json", "--limit", "200", "--config", config])).stdout,
    );
    const webFirst = list.filter((e: any) => e.app === WEB).at(-1);
    const replay = await runBerth([
      "replay",
      "--app",
      WEB,
      "--to",
      String(webFirst.id),
      "--config",
      config,
      "--kubeconfig",
      cluster.kubeconfigPath,
    ]);
    expect(replay.code).toBe(0);
    const all = JSON.parse(
      (await runBerth(["ledger", "list", "--json", "--limit", "200", "--config", config])).stdout,
    );
    const firstOf = (trigger: string) =>
      all.find((e: any) => e.trigger === trigger)?.id as number | undefined;
    for (const trigger of ["loop", "api:ops", "webhook:generic", "cli", "replay"]) {
      const id = firstOf(trigger);
      expect(id, `an entry with trigger ${trigger}`).toBeDefined();
      const entry = await ledgerShow(id as number);
      expect(entry.trigger).toBe(trigger);
    }
    // berth sync ran every app of the pass under cli.
    expect(new Set(all.filter((e: any) => e.trigger === "cli").map((e: any) => e.app))).toEqual(
      new Set([STUCK, WEB, AFTER]),
    );
  }, 120_000);

  test("SIGTERM stops berth sync mid health wait: the wait is recorded as Interrupted, dependants skipped, no 'watch lost'", async () => {
    // The Deployment's new pods fit no node again, so stuck's next sync waits on health.
    git.commit("infra", { "stuck/deploy.yaml": stuckDeployment().replace('"yes"', '"no"') });
    const sync = startBerth(["sync", "--config", config, "--kubeconfig", cluster.kubeconfigPath]);
    let stuckEntry: any;
    try {
      stuckEntry = await eventually("stuck waiting on health in berth sync", 30_000, async () => {
        const list = JSON.parse(
          (await runBerth(["ledger", "list", "--json", "--app", STUCK, "--limit", "1", "--config", config]))
            .stdout,
        );
        return list[0]?.trigger === "cli" && list[0]?.outcome === "Running" ? list[0] : undefined;
      });
      await Bun.sleep(500);
      const t0 = Date.now();
      sync.child.kill("SIGTERM");
      expect(await sync.exited).toBe(1);
      const stopped = Date.now() - t0;
      console.log(`berth sync stopped ${stopped} ms after SIGTERM`);
      expect(stopped).toBeLessThan(5_000);
    } finally {
      sync.child.kill("SIGKILL");
    }
    expect(sync.output()).toContain(`skipped ${AFTER}: the sync was stopped before it started`);
    expect(sync.output()).not.toContain("watch lost");
    const entry = await ledgerShow(stuckEntry.id);
    expect(entry).toMatchObject({ outcome: "Failed", reason: "Interrupted", trigger: "cli" });
  }, 90_000);
});
