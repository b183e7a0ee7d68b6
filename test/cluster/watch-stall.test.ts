/**
 * A stalled watch against the real control plane: berth talks to the API server through a loopback TCP proxy
 * that, at one moment, stops forwarding on every open connection without closing any. The watches must notice
 * within 30 s, relist through a new connection, and heal a drift made while they were blind.
 */
import { beforeAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { type DriftWiring, type Wired, wireDrift } from "../../agent/cli/wire.ts";
import type { DriftReport } from "../../agent/drift/drift.ts";
import type { Logger } from "../../agent/engine/log.ts";
import { syncApp, wireFor } from "../support/berth.ts";
import { eventually } from "../support/cluster.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { configMapYaml, namespaceYaml } from "../support/manifests.ts";
import { StallingProxy } from "../support/tcp-proxy.ts";

const t = useClusterTest({ prefix: "stall" });
const ns = t.ns;
const app = ns;
let proxy: StallingProxy;
let w: Wired;
let drift: DriftWiring;
const reports: DriftReport[] = [];
const watchLog: Array<{ at: number; message: string; error?: string }> = [];

/** Records the view's watch state changes, with when they happened. */
const log: Logger = {
  log: (_level, message, fields) => {
    if (message.startsWith("watch"))
      watchLog.push({
        at: performance.now(),
        message,
        ...(fields?.error ? { error: String(fields.error) } : {}),
      });
  },
  child: () => log,
};

beforeAll(async () => {
  const server = new URL(t.cluster.kubeConfig.getCurrentCluster()?.server ?? "");
  proxy = await StallingProxy.start(server.hostname, Number(server.port || 443));
  t.commit(
    { [`${ns}/ns.yaml`]: namespaceYaml(ns), [`${ns}/cm.yaml`]: configMapYaml("settings", "hello") },
    "app",
  );
  const config = t.writeConfig([{ name: app, path: ns, namespace: ns, timeout: "60s", drift: "heal" }], {
    source: "ref: main, interval: 1h",
  });
  // The same kubeconfig, but berth reaches the API server only through the proxy (TLS passes through it).
  const proxied = join(dirname(config), "kubeconfig");
  const original = readFileSync(t.cluster.kubeconfigPath, "utf8");
  expect(original).toContain(server.origin);
  writeFileSync(proxied, original.replaceAll(server.origin, `https://127.0.0.1:${proxy.port}`));
  w = await wireFor(config, proxied);
  drift = wireDrift(w, log, (r) => reports.push(r));
  t.onTeardown(() => proxy.close());
  t.onTeardown(() => w.close());
  t.onTeardown(() => drift.close());
  expect((await syncApp(w, app)).outcome).toBe("Succeeded");
}, 600_000);

test("a watch that stops forwarding without closing is relisted within 30 s; a drift made meanwhile is healed", async () => {
  await eventually("the app's watches to connect", 15_000, async () =>
    drift.view.connected(app) ? true : undefined,
  );
  const stalled = proxy.stall();
  expect(stalled).toBeGreaterThanOrEqual(2); // at least the Namespace and ConfigMap watches
  const t0 = performance.now();
  // Made directly on the API server: the stalled watch cannot see it.
  t.kubectl("patch", "configmap", "settings", "-n", ns, "-p", '{"data":{"greeting":"tampered"}}');
  const lost = await eventually("the stalled watch to be noticed", 35_000, async () =>
    watchLog.find((l) => l.at > t0 && l.error?.includes("watch of ConfigMap stalled")),
  );
  expect(lost.error).toBe("watch of ConfigMap stalled: nothing received for 25s; relisting");
  const healed = await eventually("the drift to be healed", 40_000, async () =>
    reports.find((r) => r.app === app && r.subject === `ConfigMap/${ns}/settings` && r.seenAt > t0),
  );
  expect(healed).toMatchObject({ action: "healed", fields: ["/data/greeting"] });
  const relistedAfter = (healed.seenAt - t0) / 1000;
  console.log(
    JSON.stringify({
      stalledConnections: stalled,
      noticedAfterS: (lost.at - t0) / 1000,
      relistedAfterS: relistedAfter,
    }),
  );
  expect(relistedAfter).toBeLessThan(30);
  expect(JSON.parse(t.kubectl("get", "configmap", "settings", "-n", ns, "-o", "json")).data.greeting).toBe(
    "hello",
  );
  // The heal comes from the relist; the new watch that follows it may still be opening on a loaded machine.
  await eventually("the view's watches to reconnect after the relist", 10_000, async () =>
    drift.view.connected(app) ? true : undefined,
  );
  // berth closed the watch connections it gave up on (idle pooled ones, if any, stay until next used).
  const leftOpen = await eventually("the stalled watch connections to be closed", 10_000, async () =>
    proxy.stalledOpen <= stalled - 2 ? proxy.stalledOpen : undefined,
  );
  console.log(JSON.stringify({ stalledConnectionsLeftOpen: leftOpen }));
}, 90_000);
