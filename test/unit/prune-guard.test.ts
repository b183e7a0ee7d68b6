/**
 * The prune guards as pure logic: which deletions hold a sync and why, what a cascading deletion takes with
 * it (over a stand-in for the cluster's list/get), why an object is deleted, the holds going through the
 * sync judge's approval path, `prune` as a boolean or a mapping in berth.yaml, and ownership conflicts
 * planned against a stand-in cluster.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../agent/config/config.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { type KubeObject, type ObjectRef, objectId } from "../../agent/object/object.ts";
import { type Plan, type PlanCluster, plan } from "../../agent/plan/plan.ts";
import {
  type CascadeCluster,
  deletionReason,
  describeCascade,
  guardPrunes,
  type ServedKind,
} from "../../agent/plan/prune-guard.ts";
import { parseRuleFile } from "../../agent/policy/rule-file.ts";
import { judgePlan } from "../../agent/policy/sync-judge.ts";

const REV = `main@sha1:${"c0ffee".padEnd(40, "0")}`;
const ns = (name: string, annotations?: Record<string, string>): KubeObject => ({
  apiVersion: "v1",
  kind: "Namespace",
  metadata: { name, ...(annotations ? { annotations } : {}) },
});
const refOfNs = (name: string): ObjectRef => ({
  group: "",
  version: "v1",
  kind: "Namespace",
  namespace: "",
  name,
});
const cmRef = (name: string): ObjectRef => ({
  group: "",
  version: "v1",
  kind: "ConfigMap",
  namespace: "team",
  name,
});

describe("guardPrunes", () => {
  test("a Namespace without consent holds, not approvable, naming what it takes and how to consent", () => {
    const holds = guardPrunes({
      app: "data",
      revision: REV,
      deletions: [
        { ref: refOfNs("team-data"), live: ns("team-data"), cascade: "Namespace/team-data holds 14 objects" },
      ],
      inventorySize: 10,
    });
    expect(holds).toEqual([
      {
        subject: "Namespace/team-data",
        id: "_team-data__Namespace",
        approvable: false,
        message: expect.stringContaining("Namespace/team-data holds 14 objects; to prune it, annotate it"),
      },
    ]);
    expect(holds[0]?.message).toContain("berth.dev/prune=confirm");
    expect(holds[0]?.message).toContain("prune: { cascade: allow } on app data");
  });

  test("the confirm annotation makes the hold approvable; cascade: allow lifts it", () => {
    const deletion = {
      ref: refOfNs("team-data"),
      live: ns("team-data", { "berth.dev/prune": "confirm" }),
      cascade: "Namespace/team-data holds 2 objects",
    };
    const held = guardPrunes({ app: "a", revision: REV, deletions: [deletion], inventorySize: 10 });
    expect(held).toHaveLength(1);
    expect(held[0]?.approvable).toBe(true);
    expect(
      guardPrunes({
        app: "a",
        revision: REV,
        settings: { cascade: "allow" },
        deletions: [deletion],
        inventorySize: 10,
      }),
    ).toEqual([]);
  });

  test("every cascading kind is guarded; a ConfigMap is not", () => {
    const kinds: ObjectRef[] = [
      refOfNs("x"),
      {
        group: "apiextensions.k8s.io",
        version: "v1",
        kind: "CustomResourceDefinition",
        namespace: "",
        name: "b.e.io",
      },
      { group: "", version: "v1", kind: "PersistentVolume", namespace: "", name: "pv" },
      { group: "", version: "v1", kind: "PersistentVolumeClaim", namespace: "team", name: "data" },
    ];
    const holds = guardPrunes({
      app: "a",
      revision: REV,
      deletions: kinds.map((ref) => ({ ref })),
      inventorySize: 100,
    });
    expect(holds.map((h) => h.subject)).toEqual([
      "Namespace/x",
      "CustomResourceDefinition/b.e.io",
      "PersistentVolume/pv",
      "PersistentVolumeClaim/team/data",
    ]);
    expect(
      guardPrunes({ app: "a", revision: REV, deletions: [{ ref: cmRef("one") }], inventorySize: 2 }),
    ).toEqual([]);
  });

  test("more than maxFraction of the inventory holds (approvable); exactly the fraction does not", () => {
    const deletions = (n: number) => Array.from({ length: n }, (_, i) => ({ ref: cmRef(`cm-${i}`) }));
    expect(guardPrunes({ app: "a", revision: REV, deletions: deletions(5), inventorySize: 10 })).toEqual([]);
    const held = guardPrunes({ app: "a", revision: REV, deletions: deletions(6), inventorySize: 10 });
    expect(held).toEqual([
      {
        subject: "app a",
        approvable: true,
        message: "the plan deletes 6 of the app's 10 objects (60%), more than prune.maxFraction 50%",
      },
    ]);
    expect(
      guardPrunes({
        app: "a",
        revision: REV,
        settings: { maxFraction: 0.8 },
        deletions: deletions(6),
        inventorySize: 10,
      }),
    ).toEqual([]);
    expect(
      guardPrunes({
        app: "a",
        revision: REV,
        settings: { maxFraction: 0.1 },
        deletions: deletions(2),
        inventorySize: 10,
      }),
    ).toHaveLength(1);
  });
});

/** A cluster that serves a few kinds and lists from fixed data. */
function fakeCascadeCluster(objects: Record<string, KubeObject[]>, pv?: KubeObject): CascadeCluster {
  const served: ServedKind[] = [
    { group: "", version: "v1", kind: "ConfigMap", namespaced: true, verbs: ["list", "get"] },
    { group: "", version: "v1", kind: "Secret", namespaced: true, verbs: ["list", "get"] },
    { group: "", version: "v1", kind: "Event", namespaced: true, verbs: ["list"] },
    { group: "", version: "v1", kind: "Namespace", namespaced: false, verbs: ["list"] },
    { group: "example.com", version: "v1", kind: "Backup", namespaced: true, verbs: ["list"] },
  ];
  return {
    resource: (g, v, k) => served.find((s) => s.group === g && s.version === v && s.kind === k),
    get: async (ref) => (ref.kind === "PersistentVolume" ? pv : undefined),
    servedKinds: () => served,
    listKind: async (kind, namespace) =>
      (objects[kind.kind] ?? []).filter((o) => !namespace || o.metadata.namespace === namespace),
  };
}
const obj = (kind: string, namespace: string, name: string): KubeObject => ({
  apiVersion: "v1",
  kind,
  metadata: { name, namespace },
});

describe("describeCascade", () => {
  test("a Namespace counts what lives in it, by kind, without Events", async () => {
    const cluster = fakeCascadeCluster({
      ConfigMap: [
        obj("ConfigMap", "team-data", "a"),
        obj("ConfigMap", "team-data", "b"),
        obj("ConfigMap", "x", "c"),
      ],
      Secret: [obj("Secret", "team-data", "s")],
      Event: [obj("Event", "team-data", "e1"), obj("Event", "team-data", "e2")],
    });
    expect(await describeCascade(refOfNs("team-data"), ns("team-data"), cluster)).toBe(
      "Namespace/team-data holds 3 objects (2 ConfigMap, 1 Secret)",
    );
    expect(await describeCascade(refOfNs("empty"), ns("empty"), cluster)).toBe(
      "Namespace/empty holds 0 objects",
    );
  });

  test("a kind that cannot be listed is named, and the count says 'at least'", async () => {
    const cluster = fakeCascadeCluster({ ConfigMap: [obj("ConfigMap", "team-data", "a")] });
    const failing: CascadeCluster = {
      ...cluster,
      listKind: async (kind, namespace) => {
        if (kind.kind === "Secret") throw new Error("503 service unavailable");
        return cluster.listKind(kind, namespace);
      },
    };
    expect(await describeCascade(refOfNs("team-data"), ns("team-data"), failing)).toBe(
      "Namespace/team-data holds at least 1 object (1 ConfigMap); could not list Secret",
    );
  });

  test("a CRD counts its custom resources across namespaces", async () => {
    const cluster = fakeCascadeCluster({
      Backup: [obj("Backup", "a", "b1"), obj("Backup", "b", "b2"), obj("Backup", "b", "b3")],
    });
    const crd: KubeObject = {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
      metadata: { name: "backups.example.com" },
      spec: { group: "example.com", names: { kind: "Backup" }, versions: [{ name: "v1", served: true }] },
    };
    const ref: ObjectRef = {
      group: "apiextensions.k8s.io",
      version: "v1",
      kind: "CustomResourceDefinition",
      namespace: "",
      name: "backups.example.com",
    };
    expect(await describeCascade(ref, crd, cluster)).toBe(
      "CustomResourceDefinition/backups.example.com defines 3 Backup objects, deleted with it",
    );
  });

  test("a PVC names its bound PersistentVolume and its reclaim policy; a PV its claim", async () => {
    const pv: KubeObject = {
      apiVersion: "v1",
      kind: "PersistentVolume",
      metadata: { name: "pv-7" },
      spec: { persistentVolumeReclaimPolicy: "Delete", claimRef: { namespace: "team", name: "data" } },
    };
    const cluster = fakeCascadeCluster({}, pv);
    const pvcRef: ObjectRef = {
      group: "",
      version: "v1",
      kind: "PersistentVolumeClaim",
      namespace: "team",
      name: "data",
    };
    const pvc: KubeObject = { ...obj("PersistentVolumeClaim", "team", "data"), spec: { volumeName: "pv-7" } };
    expect(await describeCascade(pvcRef, pvc, cluster)).toBe(
      "PersistentVolumeClaim/team/data is bound to PersistentVolume/pv-7 (reclaimPolicy Delete: its data is deleted)",
    );
    expect(await describeCascade(pvcRef, obj("PersistentVolumeClaim", "team", "data"), cluster)).toBe(
      "PersistentVolumeClaim/team/data is not bound to a volume",
    );
    const pvRef: ObjectRef = {
      group: "",
      version: "v1",
      kind: "PersistentVolume",
      namespace: "",
      name: "pv-7",
    };
    expect(await describeCascade(pvRef, pv, cluster)).toBe(
      "PersistentVolume/pv-7 holds its volume's data (reclaimPolicy Delete), bound to PersistentVolumeClaim/team/data",
    );
    expect(await describeCascade(cmRef("x"), undefined, cluster)).toBeUndefined();
  });
});

describe("deletionReason", () => {
  const exists = (paths: string[]) => async (p: string) => paths.includes(p);
  test("file removed, document no longer renders, a tool's output, no source known", async () => {
    expect(await deletionReason(REV, "app/cm.yaml#0", exists([]))).toBe(
      "left Git in commit c0ffee000000: file app/cm.yaml removed",
    );
    expect(await deletionReason(REV, "app/cm.yaml#1", exists(["app/cm.yaml"]))).toBe(
      "left Git in commit c0ffee000000: document app/cm.yaml#1 no longer renders it (the file is still there)",
    );
    expect(await deletionReason(REV, "kustomize build apps/web#3", exists([]))).toBe(
      "left Git in commit c0ffee000000: kustomize build apps/web#3 no longer renders it",
    );
    expect(await deletionReason(REV, undefined, exists([]))).toBe("left Git in commit c0ffee000000");
  });
});

describe("the holds go through the sync judge's approval path", () => {
  const heldPlan = (approvable: boolean): Plan => ({
    app: "data",
    revision: REV,
    changes: [],
    errors: [],
    summary: { created: 0, configured: 0, unchanged: 0, deleted: 1, skipped: 0 },
    holds: [{ subject: "Namespace/team-data", message: "Namespace/team-data holds 3 objects", approvable }],
  });
  const approval = { by: "alice", expiresAt: "2099-01-01T00:00:00Z", overrideWindow: false };

  test("without an approval the sync is held, naming the object and how to approve", () => {
    const j = judgePlan([], { app: { name: "data" }, plan: heldPlan(true), now: new Date() });
    expect(j.blocked?.verdict).toBe("hold");
    expect(j.blocked?.message).toContain("held by the prune guard: Namespace/team-data holds 3 objects");
    expect(j.blocked?.message).toContain(`berth approve --app data --revision ${REV}`);
    expect(j.verdicts).toEqual([
      expect.objectContaining({ rule: "prune-guard", verdict: "hold", subject: "Namespace/team-data" }),
    ]);
  });

  test("an approval lifts an approvable hold and is recorded; it does not lift one without the annotation", () => {
    const lifted = judgePlan([], { app: { name: "data" }, plan: heldPlan(true), now: new Date(), approval });
    expect(lifted.blocked).toBeUndefined();
    expect(lifted.verdicts[0]?.approvedBy).toBe("alice");
    const still = judgePlan([], { app: { name: "data" }, plan: heldPlan(false), now: new Date(), approval });
    expect(still.blocked?.verdict).toBe("hold");
    expect(still.verdicts[0]?.approvedBy).toBeUndefined();
  });
});

describe("a sync rule that protects the object lifts its cascade hold", () => {
  test("protect turns the deletion into a skip, and the hold goes with it", () => {
    const rules = parseRuleFile(
      `apiVersion: berth.dev/v1alpha1
kind: Rules
sync:
  - name: keep-namespaces
    when: change.action == 'deleted' && change.object.kind == 'Namespace'
    verdict: protect
    message: namespaces stay
`,
      "rules.yaml",
    ).sync;
    const ref = refOfNs("team-data");
    const p: Plan = {
      app: "data",
      revision: REV,
      errors: [],
      summary: { created: 0, configured: 0, unchanged: 0, deleted: 1, skipped: 0 },
      changes: [
        {
          id: "_team-data__Namespace",
          ref,
          subject: "Namespace/team-data",
          action: "deleted",
          stage: "definitions",
          diff: [],
          owned: true,
          live: ns("team-data"),
        },
      ],
      holds: guardPrunes({
        app: "data",
        revision: REV,
        deletions: [{ ref, live: ns("team-data") }],
        inventorySize: 9,
      }),
    };
    expect(p.holds).toHaveLength(1);
    const j = judgePlan(rules, { app: { name: "data" }, plan: p, now: new Date() });
    expect(j.blocked).toBeUndefined();
    expect(j.plan.changes[0]?.action).toBe("skipped");
  });
});

describe("prune in berth.yaml", () => {
  const config = (prune: string) =>
    parseConfig(
      `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: { url: http://git/x.git }\napps:\n  - { name: a, path: a, prune: ${prune} }\n`,
      "/etc/berth/berth.yaml",
    ).apps[0];

  test("a boolean works as before; a mapping sets the guards (defaults filled)", () => {
    expect(config("false")).toMatchObject({ prune: false });
    expect(config("true")?.pruneSafety).toBeUndefined();
    expect(config("{ cascade: allow }")).toMatchObject({
      prune: true,
      pruneSafety: { cascade: "allow", maxFraction: 0.5 },
    });
    expect(config("{ enabled: false, maxFraction: 0.9 }")).toMatchObject({
      prune: false,
      pruneSafety: { cascade: "hold", maxFraction: 0.9 },
    });
  });

  test("bad values are refused naming the field", () => {
    expect(() => config("{ cascade: always }")).toThrow("apps[0].prune");
    expect(() => config("{ maxFraction: 2 }")).toThrow("apps[0].prune");
    expect(() => config("{ cascde: allow }")).toThrow("apps[0].prune");
    expect(() => config("maybe")).toThrow("apps[0].prune");
  });

  test("a value of neither form gets one message, a bad field of the mapping only its own", () => {
    const message = (prune: string) => {
      try {
        config(prune);
        return "";
      } catch (err) {
        return (err as Error).message;
      }
    };
    expect(message("maybe")).toBe(
      '/etc/berth/berth.yaml: apps[0].prune: expected boolean or a mapping, got "maybe" (line 5)',
    );
    expect(message("{ maxFraction: 2 }")).toBe(
      "/etc/berth/berth.yaml: apps[0].prune.maxFraction: expected a number at most 1, got 2 (line 5)",
    );
  });
});

describe("ownership conflicts in the plan", () => {
  const cm = (name: string, labels?: Record<string, string>): KubeObject => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name, namespace: "team", ...(labels ? { labels } : {}) },
    data: { a: "1" },
  });
  /** Serves ConfigMaps; dry-run returns the manifest with a resourceVersion when the object exists. */
  const cluster = (live: Record<string, KubeObject>): PlanCluster => ({
    resource: (_g, _v, k) => (k === "ConfigMap" ? { namespaced: true } : undefined),
    get: async (ref) => live[ref.name],
    apply: async (o) =>
      live[o.metadata.name] ? { ...o, metadata: { ...o.metadata, resourceVersion: "7" } } : o,
  });
  const app = { name: "b", prune: true, allowEmpty: false, force: false };
  const berthLabels = (owner: string) => ({
    "app.kubernetes.io/managed-by": "berth",
    "berth.dev/app": owner,
  });

  test("an object labelled for another app is a plan error naming that app", async () => {
    const p = await plan(
      { app, revision: REV, desired: [{ object: cm("shared"), source: "b/cm.yaml#0" }], inventory: [] },
      cluster({ shared: cm("shared", berthLabels("a")) }),
    );
    expect(p.errors).toEqual([
      {
        subject: "ConfigMap/team/shared",
        source: "b/cm.yaml#0",
        message: expect.stringContaining("owned by app a (its berth.dev/app label)"),
      },
    ]);
    // A rename leaves the objects labelled with the old name: the way to hand them over is named.
    expect(p.errors[0]?.message).toContain(
      "if app a was renamed to b or its objects move to it, relabel the object instead (berth.dev/app=b), and app b takes it over without deleting it",
    );
  });

  test("another app's inventory counts when the object is absent; this app's own label wins", async () => {
    // App b wants `shared`, which app a's inventory holds; only the live object differs.
    const wantShared = (live: Parameters<typeof cluster>[0]) =>
      plan(
        {
          app,
          revision: REV,
          desired: [{ object: cm("shared"), source: "b/cm.yaml#0" }],
          inventory: [],
          ownerOf: () => "a",
        },
        cluster(live),
      );
    const absent = await wantShared({});
    expect(absent.errors[0]?.message).toContain("owned by app a (the ledger: it is in app a's inventory)");
    expect(absent.errors[0]?.message).not.toContain("relabel");
    const mine = await wantShared({ shared: cm("shared", berthLabels("b")) });
    expect(mine.errors).toEqual([]);
  });

  test("a deletion carries its reason and the guard's hold", async () => {
    const live = { gone: cm("gone", berthLabels("b")), kept: cm("kept", berthLabels("b")) };
    const p = await plan(
      {
        app,
        revision: REV,
        desired: [{ object: cm("kept"), source: "b/kept.yaml#0" }],
        inventory: [
          { ref: cmRef("gone"), source: "b/gone.yaml#0" },
          { ref: cmRef("kept"), source: "b/kept.yaml#0" },
        ],
        fileExists: async () => false,
      },
      cluster(live),
    );
    const gone = p.changes.find((c) => c.ref.name === "gone");
    expect(gone).toMatchObject({
      action: "deleted",
      note: "left Git in commit c0ffee000000: file b/gone.yaml removed",
    });
    expect(p.holds).toBeUndefined(); // one of two: exactly half, not more
  });

  test("an empty render with allowEmpty prunes all without the mass-prune hold; without it, it is refused", async () => {
    const live = { x: cm("x", berthLabels("b")), y: cm("y", berthLabels("b")) };
    const input = {
      revision: REV,
      desired: [],
      inventory: [{ ref: cmRef("x") }, { ref: cmRef("y") }],
    };
    const allowed = await plan({ ...input, app: { ...app, allowEmpty: true } }, cluster(live));
    expect(allowed.errors).toEqual([]);
    expect(allowed.summary.deleted).toBe(2);
    expect(allowed.holds).toBeUndefined();
    const refused = await plan({ ...input, app }, cluster(live));
    expect(refused.errors[0]?.message).toContain("the rendered app is empty");
    const other = await plan(
      { ...input, desired: [{ object: cm("z"), source: "b/z.yaml#0" }], app },
      cluster(live),
    );
    expect(other.holds?.map((h) => h.subject)).toEqual(["app b"]);
  });
});

describe("the ledger keeps each inventory object's source and says which other app holds an object", () => {
  test("source round-trips; inventoryOwners names other apps only", async () => {
    const ledger = await Ledger.open(join(mkdtempSync(join(tmpdir(), "berth-prune-guard-")), "ledger.db"));
    try {
      const finish = (app: string, items: Array<{ ref: ObjectRef; digest: string; source?: string }>) =>
        ledger.finish(ledger.begin({ app, revision: REV, trigger: "test" }), {
          outcome: "Succeeded",
          reason: "Succeeded",
          message: "ok",
          objects: [],
          timings: {},
          inventory: items,
        });
      finish("a", [{ ref: cmRef("shared"), digest: "sha256:1", source: "a/cm.yaml#0" }]);
      finish("b", [{ ref: cmRef("own"), digest: "sha256:2" }]);
      expect(ledger.inventory("a")).toEqual([
        { ref: cmRef("shared"), digest: "sha256:1", source: "a/cm.yaml#0" },
      ]);
      expect(ledger.inventory("b")).toEqual([{ ref: cmRef("own"), digest: "sha256:2" }]);
      expect(ledger.inventoryOwners("b")).toEqual(new Map([[objectId(cmRef("shared")), "a"]]));
      expect(ledger.inventoryOwners("a")).toEqual(new Map([[objectId(cmRef("own")), "b"]]));
    } finally {
      ledger.close();
    }
  });
});
