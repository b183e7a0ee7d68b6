/**
 * The prune stage (agent/apply/prune.ts) on its own, over the one fake cluster of the unit tests: reverse apply
 * order, only planned deletions, the stop on the first failed deletion, what a stop leaves unsent, and
 * deletions without an answer.
 */
import { describe, expect, test } from "bun:test";
import { type PruneOutcome, pruneStaged } from "../../agent/apply/prune.ts";
import { KubeApiError } from "../../agent/kube/client.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import { changeOf, FakeCluster, key, objectOf } from "../support/fake-cluster.ts";

const cm = (name: string) => objectOf("v1", "ConfigMap", name, "shop");
const namespace = (name: string) => objectOf("v1", "Namespace", name);
const roleBinding = (name: string) => objectOf("rbac.authorization.k8s.io/v1", "RoleBinding", name, "shop");
const webhook = (name: string) =>
  objectOf("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", name);
const crd = (name: string) => objectOf("apiextensions.k8s.io/v1", "CustomResourceDefinition", name);

/** A fake cluster holding `objects`, and their planned deletions. */
function holding(objects: KubeObject[]) {
  const cluster = new FakeCluster();
  for (const o of objects) cluster.live.set(key(changeOf(o).ref), o);
  return { cluster, deletions: objects.map((o) => changeOf(o, "deleted")) };
}
const statuses = (outcomes: readonly PruneOutcome[]) => outcomes.map((o) => `${o.status} ${o.subject}`);

describe("pruneStaged", () => {
  test("deletes in reverse apply order: webhooks, workloads, classes, then definitions", async () => {
    const { cluster, deletions } = holding([
      namespace("old"),
      crd("widgets.example.com"),
      cm("a"),
      roleBinding("readers"),
      webhook("inject"),
    ]);
    const result = await pruneStaged(deletions, cluster, { concurrency: 1 });
    expect(result).toEqual({ outcomes: expect.any(Array), failed: false, interrupted: false });
    expect(cluster.acked).toEqual([
      "delete MutatingWebhookConfiguration//inject",
      "delete ConfigMap/shop/a",
      "delete RoleBinding/shop/readers",
      "delete Namespace//old",
      "delete CustomResourceDefinition//widgets.example.com",
    ]);
    expect(cluster.live.size).toBe(0);
  });

  test("only planned deletions are sent: kept, unchanged and opted-out objects are never deleted", async () => {
    const cluster = new FakeCluster();
    for (const name of ["gone", "kept", "same", "opted-out"])
      cluster.live.set(`ConfigMap/shop/${name}`, cm(name));
    const result = await pruneStaged(
      [
        changeOf(cm("gone"), "deleted"),
        changeOf(cm("kept"), "configured"),
        changeOf(cm("same"), "unchanged"),
        changeOf(cm("opted-out"), "skipped"),
      ],
      cluster,
    );
    expect(statuses(result.outcomes)).toEqual(["applied ConfigMap/shop/gone"]);
    expect(cluster.acked).toEqual(["delete ConfigMap/shop/gone"]);
    expect([...cluster.live.keys()]).toEqual([
      "ConfigMap/shop/kept",
      "ConfigMap/shop/same",
      "ConfigMap/shop/opted-out",
    ]);
  });

  test("an object already gone counts as deleted", async () => {
    const cluster = new FakeCluster();
    const result = await pruneStaged([changeOf(cm("vanished"), "deleted")], cluster);
    expect(result).toMatchObject({ failed: false, interrupted: false });
    expect(statuses(result.outcomes)).toEqual(["applied ConfigMap/shop/vanished"]);
  });

  test("a failed deletion stops the prune: deletions in flight finish, later stages are not attempted", async () => {
    const { cluster, deletions } = holding([namespace("old"), cm("b"), cm("a"), cm("c"), roleBinding("r")]);
    const sent: string[] = [];
    cluster.fault = (o) => {
      sent.push(o.name);
      return o.name === "b"
        ? new KubeApiError('configmaps "b" is forbidden', 403, "Forbidden", undefined)
        : undefined;
    };
    // Two at once: b and a are in flight together; a still lands, c is never started once b failed.
    const result = await pruneStaged(deletions, cluster, { concurrency: 2 });
    expect(result).toMatchObject({ failed: true, interrupted: false });
    expect(sent).toEqual(["b", "a"]);
    expect(statuses(result.outcomes)).toEqual([
      "failed ConfigMap/shop/b",
      "applied ConfigMap/shop/a",
      "not-attempted ConfigMap/shop/c",
      "not-attempted RoleBinding/shop/r",
      "not-attempted Namespace//old",
    ]);
    expect(result.outcomes[0]).toMatchObject({ error: 'configmaps "b" is forbidden' });
    expect(result.outcomes[0]?.uncertain).toBeUndefined();
    expect([...cluster.live.keys()].sort()).toEqual([
      "ConfigMap/shop/b",
      "ConfigMap/shop/c",
      "Namespace//old",
      "RoleBinding/shop/r",
    ]);
  });

  test("a stop mid-prune sends nothing more; it is interrupted only if something was left unsent", async () => {
    const stopAfter = async (n: number) => {
      const { cluster, deletions } = holding([namespace("old"), cm("a"), cm("b")]);
      const stop = new AbortController();
      const del = cluster.delete.bind(cluster);
      cluster.delete = async (ref, opts) => {
        const gone = await del(ref, opts);
        if (cluster.acked.length === n) stop.abort();
        return gone;
      };
      const result = await pruneStaged(deletions, cluster, { concurrency: 1, signal: stop.signal });
      return { result, acked: cluster.acked };
    };
    const early = await stopAfter(1);
    expect(early.result).toMatchObject({ failed: false, interrupted: true });
    expect(early.acked).toEqual(["delete ConfigMap/shop/a"]);
    expect(statuses(early.result.outcomes)).toEqual([
      "applied ConfigMap/shop/a",
      "not-attempted ConfigMap/shop/b",
      "not-attempted Namespace//old",
    ]);
    // Stopped after the last deletion: nothing was left, so the prune is complete.
    const late = await stopAfter(3);
    expect(late.result).toMatchObject({ failed: false, interrupted: false });
    expect(late.result.outcomes.every((o) => o.status === "applied")).toBe(true);
  });

  test("a deletion without an answer is failed and uncertain, and nothing after it is sent", async () => {
    const { cluster, deletions } = holding([namespace("old"), cm("slow")]);
    cluster.delete = (_ref, opts) =>
      new Promise<boolean>((_resolve, reject) =>
        opts?.signal?.addEventListener("abort", () => reject(new Error("The operation timed out."))),
      );
    const result = await pruneStaged(deletions, cluster, { writeTimeoutMs: 50 });
    expect(result).toMatchObject({ failed: true, interrupted: false });
    expect(result.outcomes).toEqual([
      {
        subject: "ConfigMap/shop/slow",
        ref: changeOf(cm("slow")).ref,
        status: "failed",
        error: "no answer from the API server within 50 ms (the write may still have landed)",
        uncertain: true,
      },
      { subject: "Namespace//old", ref: changeOf(namespace("old")).ref, status: "not-attempted" },
    ]);
  });

  test("an already stopped prune sends nothing", async () => {
    const { cluster, deletions } = holding([cm("a"), cm("b")]);
    const stop = new AbortController();
    stop.abort();
    const result = await pruneStaged(deletions, cluster, { signal: stop.signal });
    expect(result).toMatchObject({ failed: false, interrupted: true });
    expect(result.outcomes.map((o) => o.status)).toEqual(["not-attempted", "not-attempted"]);
    expect(cluster.acked).toEqual([]);
  });
});
