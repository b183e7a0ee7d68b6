/**
 * The test control plane's fake nodes stay Ready for as long as the cluster runs. KWOK's heartbeat stage writes a
 * node's full status only every ~10 minutes, so readiness rests on the node Leases it renews
 * (scripts/cluster/cluster.sh: --node-lease-duration-seconds). This file runs the same path in about a minute on
 * a control plane of its own with the periods shortened: a 20 s node grace period and 10 s Leases. Without
 * Leases the nodes would go NotReady (and their pods unready) 20 s in; the test asserts that the nodes' status
 * heartbeats really are older than the grace period by the end, so it checks the Lease path and can fail.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { eventually, kubectl, type PrivateCluster, privateCluster } from "../support/cluster.ts";

const GRACE_S = 20;
let cluster: PrivateCluster;

beforeAll(() => {
  cluster = privateCluster({
    BERTH_KCM_EXTRA_ARGS: `--node-monitor-grace-period=${GRACE_S}s --node-monitor-period=1s`,
    BERTH_NODE_LEASE_SECONDS: "10",
  });
}, 300_000);

afterAll(() => cluster?.down());

interface NodeView {
  name: string;
  ready: string;
  heartbeat: string;
}

function nodes(): NodeView[] {
  const out = kubectl(
    cluster,
    "get",
    "nodes",
    "-o",
    'jsonpath={range .items[*]}{.metadata.name}|{.status.conditions[?(@.type=="Ready")].status}|{.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}{"\\n"}{end}',
  );
  return out
    .split("\n")
    .filter(Boolean)
    .map((l) => {
      const [name = "", ready = "", heartbeat = ""] = l.split("|");
      return { name, ready, heartbeat };
    });
}

/** Seconds since an API timestamp (RFC 3339, possibly with microseconds). */
function ageS(time: string): number {
  const t = Date.parse(time.replace(/(\.\d{3})\d+/, "$1"));
  if (Number.isNaN(t)) throw new Error(`not a timestamp: "${time}"`);
  return (Date.now() - t) / 1000;
}

function available(): string {
  return kubectl(
    cluster,
    "get",
    "deployment",
    "steady",
    "-n",
    "default",
    "-o",
    'jsonpath={.status.conditions[?(@.type=="Available")].status}/{.status.availableReplicas}',
  );
}

describe("fake nodes on a long-running control plane", () => {
  test("stay Ready past three node grace periods, with a Deployment Available throughout", async () => {
    kubectl(cluster, "create", "deployment", "steady", "-n", "default", "--image=nginx:1.27", "--replicas=2");
    await eventually("Deployment steady Available", 60_000, async () =>
      available() === "True/2" ? true : undefined,
    );
    const start = Date.now();
    const seen = new Set<string>();
    while (Date.now() - start < GRACE_S * 3 * 1000 + 5000) {
      for (const n of nodes()) {
        if (n.ready !== "True") seen.add(`${n.name} Ready=${n.ready}`);
      }
      const a = available();
      if (a !== "True/2") seen.add(`Deployment steady Available/replicas=${a}`);
      await new Promise((r) => setTimeout(r, 2000));
    }
    expect([...seen]).toEqual([]);
    // Leases exist and are renewed: each node's Lease was renewed within the last lease period.
    const leases = kubectl(
      cluster,
      "get",
      "leases",
      "-n",
      "kube-node-lease",
      "-o",
      'jsonpath={range .items[*]}{.metadata.name}|{.spec.renewTime}{"\\n"}{end}',
    )
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split("|"));
    expect(leases.map(([name]) => name).sort()).toEqual(
      nodes()
        .map((n) => n.name)
        .sort(),
    );
    for (const [, renew] of leases) expect(ageS(renew ?? "")).toBeLessThan(15);
    // The status heartbeat alone would have made them NotReady: it is older than the grace period.
    for (const n of nodes()) expect(ageS(n.heartbeat)).toBeGreaterThan(GRACE_S);
  }, 300_000);
});
