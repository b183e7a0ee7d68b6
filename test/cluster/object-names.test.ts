/**
 * Object names the API server refuses are plan errors naming the object and file, with nothing written;
 * and berth's per-kind name rules agree with what the real API server accepts.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import type { Wired } from "../../agent/cli/wire.ts";
import { invalidNameMessage } from "../../agent/object/names.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import { syncApp } from "../support/berth.ts";
import { auditEvents, quietSince, writesIn } from "../support/cluster.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { configMapYaml } from "../support/manifests.ts";

const t = useClusterTest({
  prefix: "names",
  createNamespace: true,
  repo: "names",
  files: {
    "app/marker.yaml": configMapYaml("marker", { ok: "yes" }),
    "app/bad.yaml": configMapYaml("team/settings", { ok: "yes" }),
  },
});
const ns = t.ns;
let w: Wired;

beforeAll(async () => {
  w = await t.wire(t.writeConfig([{ name: "app", path: "app", namespace: ns, timeout: "10s" }]));
}, 600_000);

describe("object names", () => {
  test("a name with '/' is a plan error naming the object and file; nothing is written", async () => {
    const since = await quietSince();
    const result = await syncApp(w, "app");
    expect(result.reason).toBe("PlanRejected");
    expect(result.message).toContain(`ConfigMap/${ns}/team/settings (app/bad.yaml#0)`);
    expect(result.message).toContain(`metadata.name "team/settings" is not a valid ConfigMap name`);
    expect(w.ledger.get(result.entry)?.reason).toBe("PlanRejected");
    await quietSince();
    const requests = auditEvents(t.cluster, since, "berth", ns);
    expect(requests.length).toBeGreaterThan(0); // berth did talk to the server (dry-runs of the marker)
    expect(writesIn(requests)).toEqual([]);
    expect(t.kubectl("get", "configmaps", "-n", ns, "-o", "name").trim().split("\n").sort()).toEqual([
      "configmap/kube-root-ca.crt",
    ]);
  }, 60_000);

  test("berth's name rules agree with the API server's dry-run, kind by kind", async () => {
    const pod = { containers: [{ name: "c", image: "nginx" }] };
    const meta = (name: string, namespaced = true) => ({ name, ...(namespaced ? { namespace: ns } : {}) });
    const cm = (name: string): KubeObject => ({ apiVersion: "v1", kind: "ConfigMap", metadata: meta(name) });
    const cases: KubeObject[] = [
      cm("plain"),
      cm("with.dots-and-1"),
      cm("Upper"),
      cm("under_score"),
      cm("a..b"),
      cm("-dash"),
      cm("x".repeat(253)),
      cm("x".repeat(254)),
      cm("team/settings"),
      cm("fifty%"),
      { apiVersion: "v1", kind: "Namespace", metadata: meta(`${ns}-ok`, false) },
      { apiVersion: "v1", kind: "Namespace", metadata: meta(`${ns}.dotted`, false) },
      { apiVersion: "v1", kind: "Namespace", metadata: meta(`${"n".repeat(64)}`, false) },
      { apiVersion: "v1", kind: "Service", metadata: meta("1api"), spec: { ports: [{ port: 80 }] } },
      { apiVersion: "v1", kind: "Service", metadata: meta("api.v2"), spec: { ports: [{ port: 80 }] } },
      ...["db", "db.main"].map(
        (name): KubeObject => ({
          apiVersion: "apps/v1",
          kind: "StatefulSet",
          metadata: meta(name),
          spec: {
            selector: { matchLabels: { a: "b" } },
            serviceName: "db",
            template: { metadata: { labels: { a: "b" } }, spec: pod },
          },
        }),
      ),
      ...["c".repeat(52), "c".repeat(53)].map(
        (name): KubeObject => ({
          apiVersion: "batch/v1",
          kind: "CronJob",
          metadata: meta(name),
          spec: {
            schedule: "* * * * *",
            jobTemplate: { spec: { template: { spec: { ...pod, restartPolicy: "Never" } } } },
          },
        }),
      ),
      ...["system:Berth_Test", "a/b"].map(
        (name): KubeObject => ({
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "ClusterRole",
          metadata: meta(name, false),
          rules: [],
        }),
      ),
    ];
    const verdicts = await Promise.all(
      cases.map(async (obj) => {
        const berth = invalidNameMessage(obj) === undefined ? "accepted" : "refused";
        let server: string;
        try {
          await w.kube.apply(obj, { dryRun: true });
          server = "accepted";
        } catch {
          server = "refused";
        }
        const name = obj.metadata.name;
        return {
          what: `${obj.kind}/${name.length > 20 ? `${name.slice(0, 4)}…(${name.length})` : name}`,
          berth,
          server,
        };
      }),
    );
    // Both sides, so the table shows it is not trivially one-sided.
    expect(verdicts.filter((v) => v.server === "accepted").length).toBeGreaterThan(4);
    expect(verdicts.filter((v) => v.server === "refused").length).toBeGreaterThan(4);
    for (const v of verdicts)
      expect({ what: v.what, verdict: v.berth }).toEqual({ what: v.what, verdict: v.server });
  }, 60_000);
});
