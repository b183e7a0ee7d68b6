/**
 * The apply stage (agent/apply/apply.ts) on its own, over the one fake cluster of the unit tests: stage order,
 * the stop on the first failed write, what a stop leaves unsent, the wait for CRDs to be Established, and how
 * each write is accounted for (applied, failed, uncertain, not attempted).
 */
import { describe, expect, test } from "bun:test";
import { type ApplyOutcome, applyStaged } from "../../agent/apply/apply.ts";
import { defaultHealthChecker } from "../../agent/health/assess.ts";
import { KubeApiError } from "../../agent/kube/client.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import { changeOf, FakeCluster, objectOf } from "../support/fake-cluster.ts";

const cm = (name: string) => objectOf("v1", "ConfigMap", name, "shop");
const namespace = (name: string) => objectOf("v1", "Namespace", name);
const role = (name: string) => objectOf("rbac.authorization.k8s.io/v1", "Role", name, "shop");
const webhook = (name: string) =>
  objectOf("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", name);
const widget = (name: string) => objectOf("example.com/v1", "Widget", name, "shop");
const crd = (name: string, conditions?: unknown[]): KubeObject => ({
  ...objectOf("apiextensions.k8s.io/v1", "CustomResourceDefinition", name),
  ...(conditions ? { status: { conditions } } : {}),
});
const established = [{ type: "Established", status: "True", reason: "InitialNamesAccepted" }];

const statuses = (outcomes: readonly ApplyOutcome[]) => outcomes.map((o) => `${o.status} ${o.subject}`);
const options = { force: false, health: defaultHealthChecker };

describe("applyStaged", () => {
  test("writes stage by stage (definitions, classes, workloads, webhooks), and only created or configured changes", async () => {
    const cluster = new FakeCluster();
    const changes = [
      changeOf(webhook("check")),
      changeOf(cm("a")),
      changeOf(cm("same"), "unchanged"),
      changeOf(cm("opted-out"), "skipped"),
      changeOf(cm("old"), "deleted"),
      changeOf(role("reader"), "configured"),
      changeOf(namespace("shop")),
    ];
    const result = await applyStaged(changes, cluster, { ...options, concurrency: 1 });
    expect(result).toMatchObject({ failed: false, interrupted: false, problems: [] });
    expect(cluster.acked).toEqual([
      "Namespace//shop",
      "Role/shop/reader",
      "ConfigMap/shop/a",
      "ValidatingWebhookConfiguration//check",
    ]);
    expect(result.outcomes.map((o) => o.subject)).toEqual([
      "Namespace//shop",
      "Role/shop/reader",
      "ConfigMap/shop/a",
      "ValidatingWebhookConfiguration//check",
    ]);
    // The server's answer comes back with each outcome (the health wait compares resourceVersions with it).
    expect(result.outcomes.map((o) => o.result?.metadata.resourceVersion)).toEqual(["1", "2", "3", "4"]);
  });

  test("a failed write stops the apply: nothing more is sent, and later writes and stages are not attempted", async () => {
    const cluster = new FakeCluster();
    const sent: string[] = [];
    cluster.onWrite = (obj) => sent.push(obj.metadata.name);
    cluster.fault = (o) =>
      o.name === "b"
        ? new KubeApiError('configmaps "b" is forbidden: quota exceeded', 403, "Forbidden", undefined)
        : undefined;
    const announced: string[] = [];
    const changes = [namespace("shop"), cm("a"), cm("b"), cm("c"), webhook("check")].map((o) => changeOf(o));
    const result = await applyStaged(changes, cluster, {
      ...options,
      concurrency: 1,
      onApplied: (o) => announced.push(`${o.status} ${o.subject}`),
    });
    expect(result).toMatchObject({ failed: true, interrupted: false });
    expect(sent).toEqual(["shop", "a", "b"]);
    expect(statuses(result.outcomes)).toEqual([
      "applied Namespace//shop",
      "applied ConfigMap/shop/a",
      "failed ConfigMap/shop/b",
      "not-attempted ConfigMap/shop/c",
      "not-attempted ValidatingWebhookConfiguration//check",
    ]);
    expect(result.outcomes[2]?.error).toBe('configmaps "b" is forbidden: quota exceeded');
    // The API server answered the refusal: it did not land.
    expect(result.outcomes[2]?.uncertain).toBeUndefined();
    // Every write sent is announced, failed ones too; writes never sent are not.
    expect(announced).toEqual(statuses(result.outcomes).slice(0, 3));
    expect(cluster.live.has("ConfigMap/shop/b")).toBe(false);
  });

  test("a stop mid-stage sends nothing more: the rest is not attempted, and the apply is interrupted, not failed", async () => {
    const cluster = new FakeCluster();
    const stop = new AbortController();
    cluster.onAck = (n) => {
      if (n === 2) stop.abort();
    };
    const changes = [cm("a"), cm("b"), cm("c"), cm("d"), webhook("check")].map((o) => changeOf(o));
    const result = await applyStaged(changes, cluster, { ...options, concurrency: 1, signal: stop.signal });
    expect(result).toMatchObject({ failed: false, interrupted: true, problems: [] });
    expect(cluster.acked).toEqual(["ConfigMap/shop/a", "ConfigMap/shop/b"]);
    expect(statuses(result.outcomes)).toEqual([
      "applied ConfigMap/shop/a",
      "applied ConfigMap/shop/b",
      "not-attempted ConfigMap/shop/c",
      "not-attempted ConfigMap/shop/d",
      "not-attempted ValidatingWebhookConfiguration//check",
    ]);
  });

  test("a custom resource is applied only once its CRD is Established, after discovery is refreshed", async () => {
    const cluster = new FakeCluster();
    const seen: string[] = [];
    let reads = 0;
    cluster.onWrite = (obj) => seen.push(`apply ${obj.kind}`);
    cluster.get = async (ref) => {
      reads++;
      // Installing for the first two reads, then Established.
      const live = crd(ref.name, reads > 2 ? established : undefined);
      seen.push(`read ${defaultHealthChecker.assess(live).status}`);
      return live;
    };
    cluster.discover = async (force) => {
      seen.push(`discover ${force === true}`);
    };
    const changes = [changeOf(widget("w")), changeOf(crd("widgets.example.com"))];
    const result = await applyStaged(changes, cluster, options);
    expect(result).toMatchObject({ failed: false, interrupted: false, problems: [] });
    expect(seen.join(" → ")).toBe(
      "apply CustomResourceDefinition → read InProgress → read InProgress → read Current → discover true → apply Widget",
    );
  });

  test("a CRD never Established fails the apply after its timeout, naming it and its last status", async () => {
    const cluster = new FakeCluster();
    const result = await applyStaged([changeOf(crd("gizmos.example.com")), changeOf(widget("g"))], cluster, {
      ...options,
      crdTimeoutMs: 150,
    });
    expect(result).toMatchObject({ failed: true, interrupted: false });
    expect(result.problems).toEqual([
      {
        subject: "CustomResourceDefinition//gizmos.example.com",
        ref: changeOf(crd("gizmos.example.com")).ref,
        message: "applied, but not Established after 0s (Progressing: Install in progress)",
      },
    ]);
    expect(statuses(result.outcomes)).toEqual([
      "applied CustomResourceDefinition//gizmos.example.com",
      "not-attempted Widget/shop/g",
    ]);
    expect(cluster.acked).toEqual(["CustomResourceDefinition//gizmos.example.com"]);
  });

  test("a write that got no answer is uncertain (it may have landed); one the API server refused is not", async () => {
    const cluster = new FakeCluster();
    cluster.fault = (o) =>
      o.name === "lost"
        ? new Error("socket hang up")
        : new KubeApiError("Internal error", 500, "InternalError", undefined);
    // Both in flight at once, so both fail.
    const result = await applyStaged([changeOf(cm("lost")), changeOf(cm("refused"))], cluster, options);
    expect(result.failed).toBe(true);
    expect(result.outcomes).toMatchObject([
      { subject: "ConfigMap/shop/lost", status: "failed", error: "socket hang up", uncertain: true },
      { subject: "ConfigMap/shop/refused", status: "failed", error: "Internal error" },
    ]);
    expect(result.outcomes[1]?.uncertain).toBeUndefined();
  });

  test("conflicts and immutable fields are worded with what to do", async () => {
    const cluster = new FakeCluster();
    cluster.fault = (o) =>
      o.name === "taken"
        ? new KubeApiError(
            'Apply failed with 1 conflict: conflict with "kubectl"',
            409,
            "Conflict",
            undefined,
          )
        : new KubeApiError("spec.selector: field is immutable", 422, "Invalid", undefined);
    const result = await applyStaged([changeOf(cm("taken")), changeOf(cm("frozen"))], cluster, options);
    expect(result.outcomes.map((o) => o.error)).toEqual([
      'conflict: Apply failed with 1 conflict: conflict with "kubectl" (set force: true on the app to take these fields over)',
      "immutable field changed: spec.selector: field is immutable (revert the change, or delete the object so it can be recreated)",
    ]);
  });

  test("force: fields of objects berth applied before are taken back; of new objects only when the app forces", async () => {
    const forced = async (force: boolean) => {
      const cluster = new FakeCluster();
      const seen: string[] = [];
      cluster.onWrite = (obj, opts) => seen.push(`${obj.metadata.name} force=${opts.force === true}`);
      const changes = [{ ...changeOf(cm("ours"), "configured"), owned: true }, changeOf(cm("new"))];
      await applyStaged(changes, cluster, { ...options, force, concurrency: 1 });
      return seen;
    };
    expect(await forced(false)).toEqual(["ours force=true", "new force=false"]);
    expect(await forced(true)).toEqual(["ours force=true", "new force=true"]);
  });

  test("a write without an answer before its deadline is failed, and nothing after it is sent", async () => {
    const cluster = new FakeCluster();
    cluster.hold = true;
    const changes = [namespace("a"), ...["b", "c", "d", "e", "f"].map(cm)].map((o) => changeOf(o));
    const result = await applyStaged(changes, cluster, { ...options, writeTimeoutMs: 50 });
    expect(result.failed).toBe(true);
    expect(result.outcomes.map((o) => o.status)).toEqual([
      "failed",
      "not-attempted",
      "not-attempted",
      "not-attempted",
      "not-attempted",
      "not-attempted",
    ]);
    expect(result.outcomes[0]?.error).toBe(
      "no answer from the API server within 50 ms (the write may still have landed)",
    );
    expect(result.outcomes[0]?.uncertain).toBe(true);
    expect(cluster.received).toEqual(["Namespace//a"]);
  });

  test("a CRD the health assessor calls Failed stops the apply at once, naming the CRD and the reason", async () => {
    const cluster = new FakeCluster();
    const rejected = crd("widgets.example.com", [
      { type: "NamesAccepted", status: "False", reason: "MultipleNamesNotAllowed", message: "taken" },
    ]);
    cluster.get = async (ref) => (ref.kind === "CustomResourceDefinition" ? rejected : undefined);
    const started = Date.now();
    const changes = [crd("widgets.example.com"), cm("a"), cm("b")].map((o) => changeOf(o));
    const result = await applyStaged(changes, cluster, { ...options, crdTimeoutMs: 30_000 });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(result.failed).toBe(true);
    expect(result.problems).toEqual([
      {
        subject: "CustomResourceDefinition//widgets.example.com",
        ref: changeOf(rejected).ref,
        message: "applied, but CRD names not accepted: MultipleNamesNotAllowed: taken",
      },
    ]);
    expect(result.outcomes.map((o) => o.status)).toEqual(["applied", "not-attempted", "not-attempted"]);
  });

  test("a stop while waiting for a CRD to be Established ends the wait without its timeout", async () => {
    const cluster = new FakeCluster();
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 150);
    const started = Date.now();
    const changes = [changeOf(crd("gadgets.example.com")), changeOf(cm("a"))];
    const result = await applyStaged(changes, cluster, {
      ...options,
      crdTimeoutMs: 30_000,
      signal: stop.signal,
    });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(result).toMatchObject({ failed: false, interrupted: true, problems: [] });
    expect(result.outcomes.map((o) => o.status)).toEqual(["applied", "not-attempted"]);
  });

  test("a stop that comes after the last write leaves a complete apply", async () => {
    const cluster = new FakeCluster();
    const stop = new AbortController();
    cluster.onAck = (n) => {
      if (n === 3) stop.abort();
    };
    const changes = [cm("a"), cm("b"), cm("c")].map((o) => changeOf(o));
    const applied = await applyStaged(changes, cluster, { ...options, signal: stop.signal });
    expect(applied).toMatchObject({ failed: false, interrupted: false });
    expect(applied.outcomes.map((o) => o.status)).toEqual(["applied", "applied", "applied"]);
  });

  test("an already stopped apply sends nothing", async () => {
    const cluster = new FakeCluster();
    const stop = new AbortController();
    stop.abort();
    const changes = [cm("a"), cm("b"), cm("c")].map((o) => changeOf(o));
    const applied = await applyStaged(changes, cluster, { ...options, signal: stop.signal });
    expect(applied).toMatchObject({ failed: false, interrupted: true });
    expect(applied.outcomes.map((o) => o.status)).toEqual([
      "not-attempted",
      "not-attempted",
      "not-attempted",
    ]);
    expect(cluster.received).toEqual([]);
  });
});
