/**
 * Previews against the real control plane and Git server: pull-request heads (refs/pull/N/head) are rendered,
 * planned by server-side dry-run and judged by the sync rules and prune guards — with zero writes to the
 * cluster (audit log) — and reported by GET /api/v1/previews and `berth plan --ref`. Merging the previewed
 * head then meets the hold the preview predicted.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "../../agent/cli/cli.ts";
import { type Wired, wirePreviews } from "../../agent/cli/wire.ts";
import { silentLogger } from "../../agent/engine/log.ts";
import { SyncLoop } from "../../agent/engine/loop.ts";
import type { RefPreview } from "../../agent/engine/ports.ts";
import type { PreviewLane } from "../../agent/engine/previews.ts";
import { testApi } from "../support/api.ts";
import { syncApp } from "../support/berth.ts";
import { auditEvents, quietSince, writesIn } from "../support/cluster.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { git as runGit } from "../support/git.ts";
import {
  createBoundVolume,
  databaseFiles,
  dropClaimFiles,
  NO_PVC_DELETE_RULES,
  settingsYaml as settings,
  volumeNameFor,
} from "../support/previews.ts";

const t = useClusterTest({ prefix: "previews" });
const ns = t.ns;
const pv = volumeNameFor(t);
let w: Wired;
let lane: PreviewLane;
let configPath: string;
let prSha = "";

beforeAll(async () => {
  // Storage that exists before the app, pre-bound to its claim.
  createBoundVolume(t.cluster, mkdtempSync(join(tmpdir(), "berth-pv-")), ns, pv);
  t.commit(databaseFiles(ns, pv), "a database with its claim");
  // Each pull request branches off main.
  const fromMain = () => runGit(join(t.git.dir, "work", "infra"), "checkout", "--quiet", "main");
  // PR 3 is older than the two newest: maxRefs 2 leaves it out.
  fromMain();
  const old = t.git.commit("infra", { "app/settings.yaml": settings("old") }, { branch: "old" });
  t.git.moveRef("infra", "refs/pull/3/head", old);
  // PR 4 does not render: a YAML syntax error.
  fromMain();
  const broken = t.git.commit("infra", { "app/broken.yaml": "kind: [unclosed\n" }, { branch: "broken" });
  t.git.moveRef("infra", "refs/pull/4/head", broken);
  // PR 5 drops the claim (and moves the database to an emptyDir): a hold rule and the prune guard stop that.
  fromMain();
  prSha = t.git.commit("infra", dropClaimFiles(), {
    branch: "drop-claim",
    message: "drop the database claim",
  });
  t.git.moveRef("infra", "refs/pull/5/head", prSha);
  const rulesFile = join(mkdtempSync(join(tmpdir(), "berth-rules-")), "rules.yaml");
  writeFileSync(rulesFile, NO_PVC_DELETE_RULES);
  configPath = t.writeConfig([{ name: "db", path: "app", namespace: ns, timeout: "60s" }], {
    source: "ref: main, interval: 5s",
    before: `rules: ["${rulesFile}"]\n`,
    extra: `previews: {refs: ["refs/pull/*/head"], apps: [db], maxRefs: 2}\n`,
  });
  w = await t.wire(configPath);
  lane = wirePreviews(w, silentLogger) as PreviewLane;
  t.onTeardown(() => lane.stop());
}, 600_000);

/**
 * berth's requests since `since` about the test namespace or the volume (the controllers' own writes, such as
 * Events, are theirs): all of them, those that wrote, and the dry-runs.
 */
async function requestsSince(since: Date) {
  await quietSince(1500); // the audit log is written in batches
  const events = [
    ...auditEvents(t.cluster, since, "berth", ns),
    ...auditEvents(t.cluster, since, "berth").filter((e) => e.requestURI.includes(pv)),
  ];
  return {
    all: events,
    writes: writesIn(events),
    dryRuns: events.filter((e) => /[?&]dryRun=All/.test(e.requestURI)),
  };
}

const preview = (ref: string) => lane.get(ref) as RefPreview;

describe("previews of pull-request heads", () => {
  test("main syncs: the database and its bound claim", async () => {
    const r = await syncApp(w, "db");
    expect(r.message).toBe("4 created, 0 configured, 0 unchanged, 0 deleted");
    expect(r.outcome).toBe("Succeeded");
  }, 120_000);

  test("a poll previews the newest heads with dry-runs only: zero writes reach the cluster", async () => {
    const since = await quietSince();
    await lane.poll();
    const { writes, dryRuns } = await requestsSince(since);
    expect(writes).toEqual([]);
    // The plan did ask the server: the test would see a write among these requests.
    expect(dryRuns.length).toBeGreaterThan(0);
    expect(
      lane
        .list()
        .map((p) => p.ref)
        .sort(),
    ).toEqual(["refs/pull/4/head", "refs/pull/5/head"]);

    const held = preview("refs/pull/5/head");
    expect(held).toMatchObject({ ref: "refs/pull/5/head", sha: prSha, pr: 5 });
    expect(held.commit?.message).toContain("drop the database claim");
    const app = held.apps[0];
    expect(app?.outcome).toBe("held");
    expect(app?.summary).toBe("2 changed, 1 deleted; held by rule no-pvc-delete, the prune guard");
    expect(app?.counts).toEqual({ created: 0, changed: 2, deleted: 1, unchanged: 1, skipped: 0 });
    expect(app?.objects.slice(0, 3).map((o) => `${o.action} ${o.subject}`)).toEqual([
      `deleted PersistentVolumeClaim/${ns}/data`,
      `configured ConfigMap/${ns}/settings`,
      `configured StatefulSet/${ns}/db`,
    ]);
    expect(app?.verdicts.map((v) => `${v.rule} ${v.verdict} ${v.subject}`)).toEqual([
      `no-pvc-delete hold PersistentVolumeClaim/${ns}/data`,
      `prune-guard hold PersistentVolumeClaim/${ns}/data`,
    ]);
    expect(app?.guard[0]?.subject).toBe(`PersistentVolumeClaim/${ns}/data`);
    expect(app?.blocked).toContain("held for approval by rule no-pvc-delete");

    const broken = preview("refs/pull/4/head").apps[0];
    expect(broken?.outcome).toBe("error");
    expect(broken?.errors[0]?.subject).toBe("app/broken.yaml:2:1");
    expect(broken?.summary).toStartWith("error: app/broken.yaml:2:1: invalid YAML");
  }, 120_000);

  test("a head already previewed is not previewed again; a new push is", async () => {
    const before = preview("refs/pull/5/head").at;
    const since = await quietSince();
    await lane.poll();
    expect(preview("refs/pull/5/head").at).toBe(before);
    expect((await requestsSince(since)).dryRuns).toEqual([]);

    const fixed = t.git.commit("infra", { "app/broken.yaml": null }, { branch: "broken", message: "fix" });
    t.git.moveRef("infra", "refs/pull/4/head", fixed);
    await lane.poll();
    expect(preview("refs/pull/4/head")).toMatchObject({ sha: fixed });
    expect(preview("refs/pull/4/head").apps[0]).toMatchObject({ outcome: "clean", summary: "no changes" });
    expect(preview("refs/pull/5/head").at).toBe(before);
  }, 120_000);

  test("GET /api/v1/previews and /api/v1/previews/{ref} serve what the lane found", async () => {
    const api = testApi(new SyncLoop(w.deps, w.config.apps, { interval: 60_000 }), w.ledger, {
      apps: w.config.apps,
      previews: lane,
    });
    const all = (await (await api.request("/api/v1/previews")).json()) as {
      enabled: boolean;
      previews: RefPreview[];
    };
    expect(all.enabled).toBe(true);
    expect(all.previews.map((p) => p.ref).sort()).toEqual(["refs/pull/4/head", "refs/pull/5/head"]);
    const one = await api.request("/api/v1/previews/refs/pull/5/head");
    expect(one.status).toBe(200);
    expect(((await one.json()) as RefPreview).apps[0]?.summary).toBe(
      "2 changed, 1 deleted; held by rule no-pvc-delete, the prune guard",
    );
    const encoded = await api.request(`/api/v1/previews/${encodeURIComponent("refs/pull/5/head")}`);
    expect(encoded.status).toBe(200);
    const missing = await api.request("/api/v1/previews/refs/pull/3/head");
    expect(missing.status).toBe(404);
  });

  test("berth plan --ref plans the head like berth plan, without a write", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const since = await quietSince();
    const code = await cli(
      [
        "plan",
        "--config",
        configPath,
        "--kubeconfig",
        t.cluster.kubeconfigPath,
        "--ref",
        "refs/pull/5/head",
        "--json",
      ],
      { out: (s) => out.push(s), err: (s) => err.push(s), tty: false },
    );
    expect(err.join("")).toBe("");
    expect(code).toBe(1); // blocked, as `berth plan` says of a held plan
    const [plan] = JSON.parse(out.join("")) as Array<{
      revision: string;
      summary: Record<string, number>;
      blocked?: string;
      changes: Array<{ subject: string; action: string }>;
    }>;
    expect(plan?.revision).toBe(`refs/pull/5/head@sha1:${prSha}`);
    expect(plan?.summary).toMatchObject({ configured: 2, deleted: 1 });
    expect(plan?.blocked).toContain("held for approval by rule no-pvc-delete");
    const human: string[] = [];
    expect(
      await cli(
        ["plan", "--config", configPath, "--kubeconfig", t.cluster.kubeconfigPath, "--ref", "drop-claim"],
        { out: (s) => human.push(s), err: () => {}, tty: false },
      ),
    ).toBe(1);
    expect(human.join("")).toContain(`PersistentVolumeClaim/${ns}/data`);
    expect((await requestsSince(since)).writes).toEqual([]);
  }, 120_000);

  test("merging the previewed head meets the hold the preview predicted; the claim stays", async () => {
    t.git.moveRef("infra", "main", prSha);
    const r = await syncApp(w, "db");
    expect(r.reason).toBe("PlanRejected");
    expect(r.message).toContain("held for approval by rule no-pvc-delete");
    const entry = w.ledger.get(r.entry);
    const predicted = preview("refs/pull/5/head").apps[0]?.verdicts.map((v) => `${v.rule} ${v.verdict}`);
    expect(entry?.verdicts?.map((v) => `${v.rule} ${v.verdict}`)).toEqual(predicted ?? []);
    expect(t.kubectl("get", "pvc", "data", "-n", ns, "-o", "name")).toContain("data");
  }, 120_000);
});
