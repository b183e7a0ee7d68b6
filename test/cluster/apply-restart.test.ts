/**
 * The ledger records only what the API server acknowledged: on a control plane of this file's own, the API
 * server is restarted (`cluster.sh restart-apiserver`) while berth applies 600 ConfigMaps. The entry lists as
 * applied exactly the writes the server's audit log shows as answered, every other object as failed or not
 * attempted, and the next sync completes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { wire } from "../../agent/cli/wire.ts";
import { silentLogger } from "../../agent/engine/log.ts";
import type { EngineEvent } from "../../agent/engine/ports.ts";
import { reconcile } from "../../agent/engine/reconcile.ts";
import { writeConfig } from "../support/berth.ts";
import {
  auditEvents,
  kubectl,
  type PrivateCluster,
  privateCluster,
  quietSince,
  writesIn,
} from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";

const COUNT = 600;
/** The restart is asked for after this many acknowledged writes (the server goes away a little later). */
const RESTART_AFTER = 20;

let cluster: PrivateCluster;
let git: GitFixture;

beforeAll(async () => {
  cluster = privateCluster();
  git = await GitFixture.start();
}, 600_000);

afterAll(async () => {
  await git?.close();
  cluster?.down();
}, 60_000);

const configMaps = (ns: string) =>
  Array.from(
    { length: COUNT },
    (_, i) =>
      `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-${String(i).padStart(3, "0")}, namespace: ${ns}}\ndata: {i: "${i}"}\n`,
  ).join("---\n");

describe("an API server restart mid-apply", () => {
  test("the entry lists exactly the acknowledged writes as applied; the next sync completes", async () => {
    kubectl(cluster, "create", "namespace", "big");
    const url = git.createRepo("big");
    git.commit("big", { "app/all.yaml": configMaps("big") });
    const config = writeConfig(
      `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}"}\napps:\n  - {name: big, path: app, namespace: big, timeout: 60s}\nledger: {path: $DIR/ledger.db}\n`,
    );
    let acknowledged = 0;
    let restarting: Promise<void> | undefined;
    const onEvent = (e: EngineEvent) => {
      if (e.type !== "applied" || !e.ok) return;
      if (++acknowledged === RESTART_AFTER) restarting = cluster.scriptAsync("restart-apiserver");
    };
    const w = await wire({ config, kubeconfig: cluster.kubeconfigPath }, silentLogger, onEvent);
    const app = w.config.apps.find((a) => a.name === "big");
    if (!app) throw new Error("no app big");
    try {
      const since = await quietSince();
      const result = await reconcile(w.deps, { app, trigger: "test" });
      await restarting;
      expect(restarting).toBeDefined();
      expect(result.reason).toBe("ApplyFailed");

      const entry = w.ledger.get(result.entry);
      if (!entry) throw new Error("no entry");
      expect(entry.objects).toHaveLength(COUNT);
      const applied = entry.objects.filter((o) => o.status === "applied").map((o) => o.ref.name);
      const failed = entry.objects.filter((o) => o.status === "failed");
      const notAttempted = entry.objects.filter((o) => o.status === "not-attempted");
      expect(applied.length + failed.length + notAttempted.length).toBe(COUNT);
      expect(applied.length).toBeGreaterThanOrEqual(RESTART_AFTER);
      expect(applied.length).toBeLessThan(COUNT);
      for (const f of failed) expect(f.message ?? "").not.toBe("");

      // The audit log of the server (both processes) says which writes it answered with success.
      const answered = writesIn(auditEvents(cluster, since, "berth"))
        .filter((e) => (e.responseStatus?.code ?? 0) >= 200 && (e.responseStatus?.code ?? 0) < 300)
        .map((e) => /\/configmaps\/([^/?]+)/.exec(e.requestURI)?.[1] ?? e.requestURI);
      expect(applied.sort()).toEqual(answered.sort());
      expect(entry.message).toStartWith(
        `partially applied: ${applied.length} of ${COUNT} (${[
          ...(failed.length ? [`${failed.length} failed`] : []),
          ...(notAttempted.length ? [`${notAttempted.length} not attempted`] : []),
        ].join(", ")})`,
      );

      // What berth owns: everything acknowledged, nothing it never sent.
      const owned = new Set(w.ledger.inventory("big").map((i) => i.ref.name));
      for (const name of applied) expect(owned.has(name)).toBe(true);
      for (const o of notAttempted) expect(owned.has(o.ref.name)).toBe(false);
      expect(w.ledger.verify().ok).toBe(true);

      // The server is back: the next sync completes and the cluster holds every object.
      const next = await reconcile(w.deps, { app, trigger: "test" });
      expect(next.reason).toBe("Succeeded");
      const live = kubectl(
        cluster,
        "get",
        "configmaps",
        "-n",
        "big",
        "-l",
        "berth.dev/app=big",
        "-o",
        "name",
      );
      expect(live.trim().split("\n")).toHaveLength(COUNT);
      expect(w.ledger.inventory("big")).toHaveLength(COUNT);
      console.log(
        `restart mid-apply: ${applied.length} applied, ${failed.length} failed, ${notAttempted.length} not attempted; audit: ${answered.length} answered writes`,
      );
    } finally {
      w.close();
    }
  }, 180_000);
});
