/**
 * Prune safety and ownership against the real control plane and Git server: removing a Namespace from Git
 * holds the sync (PlanRejected naming the namespace and how many objects live in it) until it is annotated
 * `berth.dev/prune: confirm` and the revision approved; removing 60% of an app holds it; removing one
 * ConfigMap prunes it at once, and `berth plan` and the ledger say why; the same object rendered by a second
 * app is a plan error there naming the first, and its owner does not flip.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { dirname, join } from "node:path";
import type { Wired } from "../../agent/cli/wire.ts";
import { runCli, syncApp, wireFor, writeConfig } from "../support/berth.ts";
import { freshNamespace, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";

let cluster: TestCluster;
let git: GitFixture;
let w: Wired;
let configPath: string;
let base: string; // the namespace of the apps' ConfigMaps
const id = Math.random().toString(16).slice(2, 8);
const team = `team-data-${id}`;

const cm = (name: string, namespace?: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}${namespace ? `, namespace: ${namespace}` : ""}}\ndata: {a: "1"}\n`;
const bulk = (n: number) =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`bulk/cm-${i}.yaml`, cm(`bulk-${i}`)]));

beforeAll(async () => {
  cluster = await useCluster();
  base = await freshNamespace(cluster, "prune-guard");
  git = await GitFixture.start();
  const url = git.createRepo("infra");
  git.commit(
    "infra",
    {
      "data/namespace.yaml": `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${team}}\n`,
      "data/sa.yaml": `apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: loader, namespace: ${team}}\n`,
      "data/a.yaml": cm("data-a"),
      "data/b.yaml": cm("data-b"),
      "data/c.yaml": cm("data-c"),
      "data/d.yaml": cm("data-d"),
      ...bulk(10),
      "one/shared.yaml": cm("shared"),
      "one/keep.yaml": cm("one-keep"),
      "two/shared.yaml": cm("shared"),
      "two/own.yaml": cm("two-own"),
    },
    { message: "base" },
  );
  configPath = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", ref: main}\napps:\n  - {name: data, path: data, namespace: ${base}, timeout: 30s}\n  - {name: bulk, path: bulk, namespace: ${base}, timeout: 30s}\n  - {name: one, path: one, namespace: ${base}, timeout: 30s}\n  - {name: two, path: two, namespace: ${base}, timeout: 30s}\nledger: {path: $DIR/ledger.db}\n`,
  );
  w = await wireFor(configPath, cluster.kubeconfigPath);
}, 600_000);

afterAll(async () => {
  w?.close();
  await git?.close();
  for (const n of [team, base]) {
    try {
      kubectl(cluster, "delete", "namespace", n, "--wait=false");
    } catch {}
  }
});

const run = (...args: string[]) =>
  runCli([...args, "--config", configPath, "--kubeconfig", cluster.kubeconfigPath]);

const exists = (kind: string, name: string, namespace?: string): boolean => {
  try {
    const out = kubectl(cluster, "get", kind, name, ...(namespace ? ["-n", namespace] : []), "-o", "name");
    return out.trim() !== "";
  } catch {
    return false;
  }
};

/** What lives in a namespace by the cluster's own account (events aside), counted with kubectl. */
function countIn(namespace: string): number {
  const kinds = kubectl(cluster, "api-resources", "--verbs=list", "--namespaced", "-o", "name")
    .split("\n")
    .filter((k) => k && !k.startsWith("events"));
  return kubectl(cluster, "get", kinds.join(","), "-n", namespace, "-o", "name").split("\n").filter(Boolean)
    .length;
}

describe("prune guards against the real control plane", () => {
  test("the first syncs apply every app", async () => {
    for (const app of ["data", "bulk", "one"])
      expect(await syncApp(w, app)).toMatchObject({ outcome: "Succeeded" });
    // Objects someone else put into the namespace: deleting it would take them along.
    kubectl(cluster, "create", "configmap", "hand-made", "-n", team, "--from-literal=k=v");
    kubectl(cluster, "create", "secret", "generic", "hand-secret", "-n", team, "--from-literal=k=v");
  });

  test("removing a Namespace from Git is held, naming it and how many objects it holds", async () => {
    git.commit(
      "infra",
      { "data/namespace.yaml": null, "data/sa.yaml": null },
      { message: "drop the namespace" },
    );
    const held = await syncApp(w, "data");
    expect(held).toMatchObject({ outcome: "Failed", reason: "PlanRejected" });
    const n = countIn(team);
    expect(n).toBeGreaterThanOrEqual(3); // loader, hand-made, hand-secret (and what controllers add)
    expect(held.message).toContain(`held by the prune guard: Namespace/${team} holds ${n} objects (`);
    expect(held.message).toContain("Secret");
    expect(held.message).toContain(`annotate it berth.dev/prune=confirm`);
    // Nothing of the plan was written: the namespace, its contents and the ServiceAccount are all there.
    expect(exists("namespace", team)).toBe(true);
    expect(exists("serviceaccount", "loader", team)).toBe(true);
    expect(exists("configmap", "hand-made", team)).toBe(true);
    expect(w.ledger.get(held.entry)?.verdicts).toEqual([
      expect.objectContaining({ rule: "prune-guard", verdict: "hold", subject: `Namespace/${team}` }),
    ]);
  });

  test("an approval alone does not prune it; with the confirm annotation and the approval it is pruned", async () => {
    const revision = w.ledger.list({ app: "data", limit: 1 })[0]?.revision ?? "";
    const approved = await run("approve", "--app", "data", "--by", "alice");
    expect(approved.code).toBe(0);
    const still = await syncApp(w, "data");
    expect(still).toMatchObject({ reason: "PlanRejected" });
    expect(still.message).toContain(`Namespace/${team} holds`);
    expect(exists("namespace", team)).toBe(true);

    kubectl(cluster, "annotate", "namespace", team, "berth.dev/prune=confirm");
    const pruned = await syncApp(w, "data");
    expect(pruned).toMatchObject({ outcome: "Succeeded", revision });
    expect(pruned.message).toContain("2 deleted");
    const ns = kubectl(
      cluster,
      "get",
      "namespace",
      team,
      "--ignore-not-found",
      "-o",
      "jsonpath={.metadata.deletionTimestamp}",
    );
    // Deleted: gone already, or terminating while its contents go.
    expect(ns === "" ? !exists("namespace", team) : ns.length > 0).toBe(true);
    expect(w.ledger.get(pruned.entry)?.verdicts).toEqual([
      expect.objectContaining({ rule: "prune-guard", subject: `Namespace/${team}`, approvedBy: "alice" }),
    ]);
  }, 60_000);

  test("removing 60% of an app's objects is held; nothing is deleted", async () => {
    const drop = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`bulk/cm-${i + 4}.yaml`, null]));
    git.commit("infra", drop, { message: "drop six" });
    const held = await syncApp(w, "bulk");
    expect(held).toMatchObject({ outcome: "Failed", reason: "PlanRejected" });
    expect(held.message).toContain(
      "held by the prune guard: the plan deletes 6 of the app's 10 objects (60%), more than prune.maxFraction 50%",
    );
    for (let i = 0; i < 10; i++) expect(exists("configmap", `bulk-${i}`, base)).toBe(true);
  });

  test("removing one ConfigMap prunes it at once; berth plan and the ledger say why", async () => {
    const sha = git.commit("infra", { ...bulk(9), "bulk/cm-9.yaml": null }, { message: "drop one" });
    const planned = await run("plan", "--app", "bulk");
    expect(planned.code).toBe(0);
    const why = `left Git in commit ${sha.slice(0, 12)}: file bulk/cm-9.yaml removed`;
    expect(planned.out).toContain(`- ConfigMap/${base}/bulk-9  deleted  (${why})`);
    const r = await syncApp(w, "bulk");
    expect(r).toMatchObject({ outcome: "Succeeded" });
    expect(r.message).toContain("1 deleted");
    expect(exists("configmap", "bulk-9", base)).toBe(false);
    expect(exists("configmap", "bulk-8", base)).toBe(true);
    const rec = w.ledger.get(r.entry)?.objects.find((o) => o.ref.name === "bulk-9");
    expect(rec).toMatchObject({ action: "deleted", message: why });
  });

  test("the same object in a second app: its plan fails naming the first; the owner does not flip", async () => {
    const label = () =>
      kubectl(
        cluster,
        "get",
        "configmap",
        "shared",
        "-n",
        base,
        "-o",
        "jsonpath={.metadata.labels.berth\\.dev/app}",
      );
    expect(label()).toBe("one");
    const second = await syncApp(w, "two");
    expect(second).toMatchObject({ outcome: "Failed", reason: "PlanRejected" });
    expect(second.message).toContain(`ConfigMap/${base}/shared (two/shared.yaml#0): owned by app one`);
    expect(exists("configmap", "two-own", base)).toBe(false); // nothing of the app was applied
    expect(label()).toBe("one");
    const planned = await run("plan", "--app", "two");
    expect(planned.code).toBe(1);
    expect(planned.out).toContain(`✗ ConfigMap/${base}/shared (two/shared.yaml#0): owned by app one`);
    expect(await syncApp(w, "one")).toMatchObject({ outcome: "Succeeded" });
    expect(label()).toBe("one");

    // Once app one releases it (it leaves one's Git and is pruned), app two may create it.
    git.commit("infra", { "one/shared.yaml": null }, { message: "release" });
    expect(await syncApp(w, "one")).toMatchObject({ outcome: "Succeeded" });
    expect(await syncApp(w, "two")).toMatchObject({ outcome: "Succeeded" });
    expect(label()).toBe("two");
  }, 60_000);

  test("a renamed app: its objects carry the old name; relabelled, the new app takes them over, not deleting them", async () => {
    git.commit("infra", { "renamed/cm.yaml": cm("moved") }, { message: "an app to rename" });
    const url = git.url("infra");
    const config = (app: string, ledger: string) =>
      `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", ref: main}\napps:\n  - {name: ${app}, path: renamed, namespace: ${base}, timeout: 30s}\nledger: {path: ${ledger}}\n`;
    const before = writeConfig(config("old-name", "$DIR/ledger.db"));
    const ledger = join(dirname(before), "ledger.db");
    const uid = () =>
      kubectl(cluster, "get", "configmap", "moved", "-n", base, "-o", "jsonpath={.metadata.uid}");
    const owner = () =>
      kubectl(
        cluster,
        "get",
        "configmap",
        "moved",
        "-n",
        base,
        "-o",
        "jsonpath={.metadata.labels.berth\\.dev/app}",
      );
    const old = await wireFor(before, cluster.kubeconfigPath);
    try {
      expect(await syncApp(old, "old-name")).toMatchObject({ outcome: "Succeeded" });
    } finally {
      old.close();
    }
    const created = uid();
    expect(owner()).toBe("old-name");

    // The same app under a new name, same ledger: refused, naming the way to hand the object over.
    const renamed = await wireFor(writeConfig(config("new-name", ledger)), cluster.kubeconfigPath);
    try {
      const refused = await syncApp(renamed, "new-name");
      expect(refused).toMatchObject({ outcome: "Failed", reason: "PlanRejected" });
      expect(refused.message).toContain(
        `ConfigMap/${base}/moved (renamed/cm.yaml#0): owned by app old-name (its berth.dev/app label)`,
      );
      expect(refused.message).toContain(
        "if app old-name was renamed to new-name or its objects move to it, relabel the object instead (berth.dev/app=new-name)",
      );
      expect([uid(), owner()]).toEqual([created, "old-name"]);

      // What the message says, for every object of the old app at once.
      kubectl(
        cluster,
        "label",
        "configmaps",
        "-n",
        base,
        "-l",
        "berth.dev/app=old-name",
        "berth.dev/app=new-name",
        "--overwrite",
      );
      expect(await syncApp(renamed, "new-name")).toMatchObject({ outcome: "Succeeded" });
      expect([uid(), owner()]).toEqual([created, "new-name"]); // the same object: handed over, never deleted
      expect(renamed.ledger.inventory("new-name").map((i) => i.ref.name)).toEqual(["moved"]);
    } finally {
      renamed.close();
    }
  }, 60_000);
});
