import { beforeAll, describe, expect, test } from "bun:test";
import { eventually, freshNamespace, type TestCluster, useCluster } from "../support/cluster.ts";

let cluster: TestCluster;
beforeAll(async () => {
  cluster = await useCluster();
}, 600_000);

describe("the real control plane", () => {
  test("a 2-replica Deployment becomes Available through real controllers and KWOK, and namespace deletion garbage-collects it", async () => {
    const ns = await freshNamespace(cluster, "cp");
    await cluster.apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: "web", labels: { app: "web" } },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: "web" } },
          template: {
            metadata: { labels: { app: "web" } },
            spec: { containers: [{ name: "web", image: "nginx:1.27" }] },
          },
        },
      },
    });
    const dep = await eventually("Deployment web Available with 2 ready replicas", 60_000, async () => {
      const d = await cluster.apps.readNamespacedDeployment({ name: "web", namespace: ns });
      const available = d.status?.conditions?.find((c) => c.type === "Available");
      return available?.status === "True" && d.status?.readyReplicas === 2 ? d : undefined;
    });
    expect(dep.status?.availableReplicas).toBe(2);
    // The pods were really scheduled onto KWOK's fake nodes and marked Running.
    const pods = await cluster.core.listNamespacedPod({ namespace: ns });
    expect(pods.items).toHaveLength(2);
    for (const pod of pods.items) {
      expect(pod.spec?.nodeName).toMatch(/^kwok-node-/);
      expect(pod.status?.phase).toBe("Running");
    }
    const rs = await cluster.apps.listNamespacedReplicaSet({ namespace: ns });
    expect(rs.items).toHaveLength(1);

    await cluster.core.deleteNamespace({ name: ns });
    await eventually(`namespace ${ns} and its objects gone`, 90_000, async () => {
      try {
        await cluster.core.readNamespace({ name: ns });
        return undefined;
      } catch (err) {
        return (err as { code?: number }).code === 404 ? true : undefined;
      }
    });
    const leftover = await cluster.apps.listDeploymentForAllNamespaces({
      fieldSelector: `metadata.namespace=${ns}`,
    });
    expect(leftover.items).toHaveLength(0);
    const leftoverPods = await cluster.core.listPodForAllNamespaces({
      fieldSelector: `metadata.namespace=${ns}`,
    });
    expect(leftoverPods.items).toHaveLength(0);
  }, 180_000);
});
