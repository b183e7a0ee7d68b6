/**
 * SIGTERM to `berth sync` (compiled binary) mid-apply of 200 ConfigMaps: it stops after the writes in flight,
 * exits 1, and the entry (Interrupted) lists as applied exactly the objects the cluster holds and the API
 * server's audit log shows as written; the rest as not attempted. The next sync completes. berth reaches the
 * API server through a proxy that delays every answer, so the 200 writes take about a second on any machine
 * and the signal lands among them (on a fast machine they all finished before a poll saw 20).
 * SIGTERM during the plan's dry-runs, with every connection gone silent, stops at once (it waited for the
 * 30 s request timeout) and writes nothing.
 */

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, runBerth, startBerth } from "../support/binary.ts";
import {
  auditEvents,
  freshNamespace,
  kubectl,
  quietSince,
  type TestCluster,
  useCluster,
  writesIn,
} from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { proxyCluster, type StallingProxy } from "../support/tcp-proxy.ts";

const COUNT = 200;
let cluster: TestCluster;
let git: GitFixture;
let ns: string;
let config: string;
let proxy: StallingProxy;
let kubeconfig: string;
let url: string;

const configMaps = (value: (i: number) => string) =>
  Array.from(
    { length: COUNT },
    (_, i) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-${String(i).padStart(3, "0")}}\ndata: {i: "${value(i)}"}\n`,
  ).join("---\n");

beforeAll(async () => {
  berthBinary();
  cluster = await useCluster();
  git = await GitFixture.start();
  ns = await freshNamespace(cluster, "term");
  url = git.createRepo("big");
  git.commit("big", { "app/all.yaml": configMaps(String) });
  config = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}"}\napps:\n  - {name: big, path: app, namespace: ${ns}, timeout: 60s}\nledger: {path: $DIR/ledger.db}\n`,
  );
  ({ proxy, kubeconfig } = await proxyCluster(cluster, dirname(config), { latencyMs: 50 }));
}, 600_000);

afterAll(async () => {
  await git?.close();
  await proxy?.close();
  try {
    kubectl(cluster, "delete", "namespace", ns, "--wait=false");
  } catch {}
});

const env = () => ({ KUBECONFIG: cluster.kubeconfigPath });
const liveNames = () =>
  kubectl(cluster, "get", "configmaps", "-n", ns, "-l", "berth.dev/app=big", "-o", "name")
    .split("\n")
    .filter(Boolean)
    .map((n) => n.replace("configmap/", ""));

describe("SIGTERM to berth sync mid-apply", () => {
  test("the entry lists exactly what was written; the next sync completes", async () => {
    const since = await quietSince();
    const run = startBerth(["sync", "--config", config], { KUBECONFIG: kubeconfig });
    let exited = false;
    void run.exited.then(() => {
      exited = true;
    });
    // Polled often: the signal must land while later writes are still to start.
    const deadline = Date.now() + 60_000;
    while ((run.output().match(/applied (created|configured)/g)?.length ?? 0) < 20) {
      if (exited) throw new Error(`berth sync ended before 20 writes: ${run.output().slice(-2000)}`);
      if (Date.now() > deadline)
        throw new Error(`no 20 applied writes within 60 s: ${run.output().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(1);
    const out = run.output();
    const line =
      /✗ big \S+: Interrupted — stopped by the agent; partially applied: (\d+) of 200 \((\d+) not attempted\)/.exec(
        out,
      );
    expect(line).not.toBeNull();
    const applied = Number(line?.[1]);
    console.log(`SIGTERM after ${applied} of ${COUNT} applied`);
    expect(applied + Number(line?.[2])).toBe(COUNT);
    expect(applied).toBeLessThan(COUNT);

    const entryId = /\[entry (\d+);/.exec(out)?.[1] ?? "";
    const shown = await runBerth(["ledger", "show", entryId, "--json", "--config", config], env());
    const entry = JSON.parse(shown.stdout) as {
      reason: string;
      objects: Array<{ ref: { name: string }; status?: string }>;
    };
    expect(entry.reason).toBe("Interrupted");
    const appliedNames = entry.objects.filter((o) => o.status === "applied").map((o) => o.ref.name);
    expect(appliedNames).toHaveLength(applied);
    expect(entry.objects.filter((o) => o.status === "not-attempted")).toHaveLength(COUNT - applied);
    // The cluster and the API server's audit log agree with the entry.
    expect(liveNames().sort()).toEqual([...appliedNames].sort());
    const written = writesIn(auditEvents(cluster, since, "berth"))
      .filter((e) => e.requestURI.includes(`/namespaces/${ns}/configmaps/`))
      .map((e) => /\/configmaps\/([^/?]+)/.exec(e.requestURI)?.[1]);
    expect(written.sort()).toEqual([...appliedNames].sort());

    const next = await runBerth(["sync", "--config", config], env());
    expect(next.code).toBe(0);
    expect(liveNames()).toHaveLength(COUNT);
  }, 180_000);

  test("SIGTERM while the plan's dry-runs hang stops at once and writes nothing", async () => {
    // Every object changes, so each is dry-run; answers 300 ms late make the plan last past the progress line.
    git.commit("big", { "app/all.yaml": configMaps((i) => `changed-${i}`) });
    const dir = join(dirname(config), "slow");
    mkdirSync(dir, { recursive: true });
    const slow = await proxyCluster(cluster, dir, { latencyMs: 300 });
    try {
      const run = startBerth(["sync", "--config", config], { KUBECONFIG: slow.kubeconfig });
      const deadline = Date.now() + 90_000;
      while (!run.output().includes("still planning")) {
        if (Date.now() > deadline) throw new Error(`no plan progress line: ${run.output().slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      // The dry-runs in flight will never be answered now.
      expect(slow.proxy.stall()).toBeGreaterThan(0);
      const t0 = Date.now();
      run.child.kill("SIGTERM");
      expect(await run.exited).toBe(1);
      // Before the signal reached the dry-runs, this took the 30 s request timeout.
      expect(Date.now() - t0).toBeLessThan(10_000);
      const [entry] = JSON.parse(
        (
          await runBerth(
            ["ledger", "list", "--json", "--app", "big", "--limit", "1", "--config", config],
            env(),
          )
        ).stdout,
      );
      expect([entry.reason, entry.message]).toEqual(["Interrupted", "stopped while planning"]);
      const values = JSON.parse(
        kubectl(cluster, "get", "configmaps", "-n", ns, "-l", "berth.dev/app=big", "-o", "json"),
      ).items.map((c: { data: { i: string } }) => c.data.i);
      expect(values).toHaveLength(COUNT);
      expect(values.filter((v: string) => v.startsWith("changed"))).toEqual([]);
    } finally {
      await slow.proxy.close();
    }
  }, 180_000);
});
