/**
 * Previews without a cluster: which refs are followed (newest first, at most maxRefs), the config's checks,
 * the dry-run-only cluster wrapper, and the lane's bookkeeping (a head once, fetch failures retried, a
 * failing reporter retried without planning again, a standby idle). The real thing: test/cluster/previews.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  commentMarker,
  commentOutlet,
  outboxPreviewReporter,
  previewState,
} from "../../agent/cli/preview-reporter.ts";
import { parseConfig } from "../../agent/config/config.ts";
import { silentLogger } from "../../agent/engine/log.ts";
import { SyncLoop } from "../../agent/engine/loop.ts";
import type { AppSpec, PreviewCluster, RefPreview } from "../../agent/engine/ports.ts";
import { dryRunOnly } from "../../agent/engine/preview.ts";
import { PreviewLane } from "../../agent/engine/previews.ts";
import { statusOutlet } from "../../agent/forge/commit-status.ts";
import { createForgeClient, type ForgeClient } from "../../agent/forge/forge.ts";
import { Notifier, type OutletPayload } from "../../agent/notify/notifier.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import type { Snapshot } from "../../agent/object/snapshot.ts";
import { matchRefs, pullRequestOf } from "../../agent/source/refs.ts";
import { testApi } from "../support/api.ts";
import { appSpec } from "../support/app-spec.ts";
import { configErrorOf } from "../support/config.ts";

const sha = (n: number) => String(n).padStart(40, "0");

describe("matchRefs()", () => {
  const refs = [
    { ref: "refs/heads/main", sha: sha(1) },
    { ref: "refs/pull/9/head", sha: sha(2) },
    { ref: "refs/pull/10/head", sha: sha(3) },
    { ref: "refs/pull/10/merge", sha: sha(4) },
    { ref: "refs/pull/2/head", sha: sha(5) },
    { ref: "refs/heads/preview/b", sha: sha(6) },
    { ref: "refs/heads/preview/a/deep", sha: sha(7) },
    { ref: "refs/heads/previewx", sha: sha(8) },
  ];
  test("pull-request heads, highest number first, at most maxRefs", () => {
    expect(matchRefs(refs, { refs: ["refs/pull/*/head"] }, 2).map((r) => r.ref)).toEqual([
      "refs/pull/10/head",
      "refs/pull/9/head",
    ]);
  });
  test("branch patterns match under refs/heads/, `*` across slashes; other names by name", () => {
    expect(matchRefs(refs, { branches: ["preview/*"] }, 20).map((r) => r.ref)).toEqual([
      "refs/heads/preview/a/deep",
      "refs/heads/preview/b",
    ]);
    expect(matchRefs(refs, { branches: ["refs/heads/main"], refs: ["refs/pull/2/*"] }, 20)).toEqual([
      { ref: "refs/pull/2/head", sha: sha(5) },
      { ref: "refs/heads/main", sha: sha(1) },
    ]);
  });
  test("pullRequestOf reads GitHub/Gitea and GitLab names", () => {
    expect(pullRequestOf("refs/pull/7/head")).toBe(7);
    expect(pullRequestOf("refs/merge-requests/12/head")).toBe(12);
    expect(pullRequestOf("refs/heads/preview/7")).toBeUndefined();
  });
});

const BASE = `apiVersion: berth.dev/v1alpha1
kind: Agent
source: {url: "https://git.example/infra.git"}
apps:
  - {name: web, path: web}
`;

const configError = (text: string): string => configErrorOf(text, "/tmp/berth.yaml");

describe("previews: in berth.yaml", () => {
  test("defaults: maxRefs 20, the source interval, one ref at a time, no comment", () => {
    const c = parseConfig(`${BASE}previews: {refs: ["refs/pull/*/head"], apps: [web]}\n`, "/tmp/berth.yaml");
    expect(c.previews).toEqual({
      refs: ["refs/pull/*/head"],
      branches: [],
      apps: ["web"],
      maxRefs: 20,
      interval: 60_000,
      concurrency: 1,
      comment: false,
    });
  });
  test("errors name the field", () => {
    expect(configError(`${BASE}previews: {refs: ["refs/pull/*/head"], apps: [db]}\n`)).toContain(
      'previews.apps[0]: no app is named "db"',
    );
    expect(configError(`${BASE}previews: {apps: [web]}\n`)).toContain("previews.refs: set refs");
    expect(configError(`${BASE}previews: {refs: ["pull/*"], apps: [web]}\n`)).toContain("previews.refs[0]");
    expect(configError(`${BASE}previews: {branches: ["a"], apps: [web], maxRefs: 0}\n`)).toContain(
      "previews.maxRefs",
    );
    expect(configError(`${BASE}previews: {branches: ["a"], apps: [web], colour: red}\n`)).toContain("colour");
    expect(configError(`${BASE}previews: {branches: ["a"], apps: [web], comment: true}\n`)).toContain(
      "previews.comment: comments go to the forge of `status:`",
    );
  });
});

describe("dryRunOnly()", () => {
  test("every apply goes out as a dry-run, whatever the caller asked", async () => {
    const seen: Array<{ dryRun?: boolean; force?: boolean }> = [];
    const inner: PreviewCluster = {
      discover: async () => {},
      resource: () => ({ namespaced: true }),
      get: async () => undefined,
      apply: async (obj, options) => {
        seen.push(options);
        return obj;
      },
    };
    const ro = dryRunOnly(inner);
    const obj = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" } } as KubeObject;
    await ro.apply(obj, { dryRun: false, force: true });
    await ro.apply(obj, {});
    expect(seen).toEqual([{ dryRun: true, force: true }, { dryRun: true }]);
    expect("delete" in ro).toBe(false);
  });
});

/** A snapshot with one file; enough for a render port that does not read it. */
function snapshotAt(ref: string, head: string): Snapshot {
  return {
    revision: `${ref}@sha1:${head}`,
    commit: { sha: head, author: "a", message: `commit ${head.slice(-2)}`, time: "" },
    stat: async () => undefined,
  } as unknown as Snapshot;
}

function laneWith(options: {
  heads: () => Array<{ ref: string; sha: string }>;
  failFetch?: Set<string>;
  reporters?: Array<{ name: string; report(p: RefPreview): Promise<void> }>;
  active?: () => boolean;
}) {
  const renders: string[] = [];
  const app: AppSpec = appSpec("web");
  const lane = new PreviewLane({
    source: {
      refs: async () => options.heads(),
      snapshot: async (ref, head) => {
        if (options.failFetch?.has(head)) throw new Error(`git: cannot fetch ${head}`);
        return snapshotAt(ref, head);
      },
    },
    match: (refs) => matchRefs(refs, { refs: ["refs/pull/*/head"] }, 2),
    pullRequestOf,
    deps: {
      // A render error: the preview ends before planning, which is all the lane's bookkeeping needs.
      render: async (snapshot) => {
        renders.push(snapshot.revision);
        return { objects: [], skipped: [], errors: [{ path: "web/x.yaml", message: "bad" }], digest: "" };
      },
      clusterFor: () => {
        throw new Error("not reached");
      },
      inventory: () => [],
    },
    apps: [app],
    interval: 60_000,
    reporters: options.reporters ?? [],
    ...(options.active ? { active: options.active } : {}),
    log: silentLogger,
  });
  return { lane, renders };
}

describe("PreviewLane", () => {
  test("a head is previewed once; a new head, and only it, again; refs leaving the window are forgotten", async () => {
    let heads = [
      { ref: "refs/pull/1/head", sha: sha(1) },
      { ref: "refs/pull/2/head", sha: sha(2) },
    ];
    const { lane, renders } = laneWith({ heads: () => heads });
    await lane.poll();
    await lane.poll();
    expect(renders.length).toBe(2);
    const one = lane.get("refs/pull/1/head");
    expect(one?.pr).toBe(1);
    expect(one?.apps[0]).toMatchObject({
      outcome: "error",
      summary: "error: web/x.yaml: bad",
      errors: [{ subject: "web/x.yaml", message: "bad" }],
    });
    heads = [
      { ref: "refs/pull/1/head", sha: sha(11) },
      { ref: "refs/pull/2/head", sha: sha(2) },
    ];
    await lane.poll();
    expect(renders).toEqual([
      `refs/pull/2/head@sha1:${sha(2)}`,
      `refs/pull/1/head@sha1:${sha(1)}`,
      `refs/pull/1/head@sha1:${sha(11)}`,
    ]);
    // PR 3 opens: with maxRefs 2, PR 1 leaves the window and is forgotten.
    heads = [...heads, { ref: "refs/pull/3/head", sha: sha(3) }];
    await lane.poll();
    expect(lane.list().map((p) => p.ref)).toEqual(["refs/pull/3/head", "refs/pull/2/head"]);
  });

  test("a head that cannot be fetched is shown with its error and tried again next poll", async () => {
    const failFetch = new Set([sha(1)]);
    const { lane, renders } = laneWith({
      heads: () => [{ ref: "refs/pull/1/head", sha: sha(1) }],
      failFetch,
    });
    await lane.poll();
    expect(lane.get("refs/pull/1/head")?.error).toBe(`git: cannot fetch ${sha(1)}`);
    failFetch.clear();
    await lane.poll();
    expect(lane.get("refs/pull/1/head")?.error).toBeUndefined();
    expect(renders.length).toBe(1);
  });

  test("a failing reporter is retried next poll without planning again; one that took it is not asked twice", async () => {
    const got: string[] = [];
    let down = true;
    const reporters = [
      { name: "steady", report: async (p: RefPreview) => void got.push(`steady ${p.sha}`) },
      {
        name: "flaky",
        report: async (p: RefPreview) => {
          if (down) throw new Error("forge down");
          got.push(`flaky ${p.sha}`);
        },
      },
    ];
    const { lane, renders } = laneWith({
      heads: () => [{ ref: "refs/pull/1/head", sha: sha(1) }],
      reporters,
    });
    await lane.poll();
    expect(got).toEqual([`steady ${sha(1)}`]);
    down = false;
    await lane.poll();
    await lane.poll();
    expect(got).toEqual([`steady ${sha(1)}`, `flaky ${sha(1)}`]);
    expect(renders.length).toBe(1);
  });

  test("an HA standby previews nothing", async () => {
    const { lane, renders } = laneWith({
      heads: () => [{ ref: "refs/pull/1/head", sha: sha(1) }],
      active: () => false,
    });
    await lane.poll();
    expect(renders).toEqual([]);
    expect(lane.list()).toEqual([]);
  });

  test("listing the refs failing is said, not thrown", async () => {
    const { lane } = laneWith({
      heads: () => {
        throw new Error("git: connection refused");
      },
    });
    await lane.poll();
    expect(lane.error).toBe("git: connection refused");
  });
});

describe("GET /api/v1/previews without previews configured", () => {
  test("says they are off; one ref is 404 naming the setting", async () => {
    const fakeLedger = { list: () => [], get: () => undefined } as never;
    const api = testApi(new SyncLoop({ ledger: {} } as never, [], { interval: 60_000 }), fakeLedger);
    expect(await (await api.request("/api/v1/previews")).json()).toEqual({ enabled: false, previews: [] });
    const r = await api.request("/api/v1/previews/refs/pull/1/head");
    expect(r.status).toBe(404);
    expect(((await r.json()) as { error: { message: string } }).error.message).toContain("previews:");
  });
});

describe("outboxPreviewReporter()", () => {
  const held: RefPreview = {
    ref: "refs/pull/5/head",
    sha: "a".repeat(40),
    revision: `refs/pull/5/head@sha1:${"a".repeat(40)}`,
    pr: 5,
    at: "2026-01-01T00:00:00Z",
    apps: [
      {
        app: "db",
        outcome: "held",
        summary: "1 changed, 1 deleted; held by rule no-pvc-delete",
        counts: { created: 0, changed: 1, deleted: 1, unchanged: 2, skipped: 0 },
        objects: [
          { subject: "PersistentVolumeClaim/db/data", action: "deleted" },
          { subject: "ConfigMap/db/settings", action: "configured" },
          { subject: "Namespace/db", action: "unchanged" },
        ],
        verdicts: [
          {
            rule: "no-pvc-delete",
            verdict: "hold",
            subject: "PersistentVolumeClaim/db/data",
            message: "deleting a claim deletes its data",
            at: "rules.yaml:4",
          },
        ],
        guard: [],
        errors: [],
      },
      {
        app: "web",
        outcome: "clean",
        summary: "no changes",
        counts: { created: 0, changed: 0, deleted: 0, unchanged: 1, skipped: 0 },
        objects: [],
        verdicts: [],
        guard: [],
        errors: [],
      },
    ],
  };

  /** A notifier whose outbox is a fresh file, delivering to `forge`'s status and comment outlets. */
  async function outbox(forge: ForgeClient) {
    const dir = mkdtempSync(join(tmpdir(), "berth-preview-outbox-"));
    const outlets = [statusOutlet(forge), commentOutlet(forge)];
    const notifier = await Notifier.open(join(dir, "ledger.db"), [], {
      externalURL: "https://berth.test",
      log: () => {},
      pollMs: 20,
      outlets,
    });
    const reporter = outboxPreviewReporter((o, payload) => notifier.post(o, payload), {
      statusOutlet: outlets[0]?.name ?? "",
      commentOutlet: outlets[1]?.name ?? "",
      link: "https://berth.test/",
    });
    return {
      notifier,
      reporter,
      close: async () => {
        await notifier.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  async function until(check: () => boolean, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (!check()) {
      if (Date.now() > end) throw new Error("timed out");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  test("through the outbox: a status per app on the head (failure when held) and one comment by marker, as Gitea's API takes them", async () => {
    const requests: Array<{ method: string; url: string; body?: unknown }> = [];
    const forge = createForgeClient({
      provider: "gitea",
      url: "http://gitea.test/org/infra",
      token: "t0ken",
      transport: async (req) => {
        requests.push({
          method: req.method,
          url: req.url,
          ...(req.body ? { body: JSON.parse(req.body) } : {}),
        });
        return req.method === "GET" ? [] : { id: 9 };
      },
    });
    const o = await outbox(forge);
    try {
      await o.reporter.report(held);
      await until(() => requests.length >= 4);
      const statuses = requests.filter((r) => r.url.includes("/statuses/"));
      expect(statuses).toEqual([
        {
          method: "POST",
          url: `http://gitea.test/api/v1/repos/org/infra/statuses/${"a".repeat(40)}`,
          body: {
            state: "failure",
            context: "berth/preview/db",
            description: "1 changed, 1 deleted; held by rule no-pvc-delete",
            target_url: "https://berth.test/",
          },
        },
        {
          method: "POST",
          url: `http://gitea.test/api/v1/repos/org/infra/statuses/${"a".repeat(40)}`,
          body: {
            state: "success",
            context: "berth/preview/web",
            description: "no changes",
            target_url: "https://berth.test/",
          },
        },
      ]);
      const comments = requests.filter((r) => r.url.includes("/comments"));
      expect(comments[0]).toMatchObject({
        method: "GET",
        url: expect.stringContaining("/issues/5/comments"),
      });
      const body = (comments[1]?.body as { body: string } | undefined)?.body ?? "";
      expect(comments[1]?.url).toBe("http://gitea.test/api/v1/repos/org/infra/issues/5/comments");
      expect(body).toContain("<!-- berth:preview:db,web -->");
      expect(body).toContain("| db | ✋ held | 1 changed, 1 deleted; held by rule no-pvc-delete |");
      expect(body).toContain("- deleted `PersistentVolumeClaim/db/data`");
      expect(body).toContain("**hold** `PersistentVolumeClaim/db/data` — deleting a claim deletes its data");
      expect(body).not.toContain("Namespace/db");
    } finally {
      await o.close();
    }
  });

  test("a forge that hangs or fails never stalls the lane: report() only queues; delivery retries", async () => {
    let mode: "hang" | "fail" | "ok" = "hang";
    const delivered: string[] = [];
    const forge = createForgeClient({
      provider: "gitea",
      url: "http://gitea.test/org/infra",
      token: "t0ken",
      transport: async (req) => {
        // A forge that answers nothing within its timeout (the HTTP transport's; this one stands in for it).
        if (mode === "hang") {
          await new Promise((r) => setTimeout(r, 300));
          throw new Error("timed out after 300 ms");
        }
        if (mode === "fail") throw new Error("connection refused");
        if (req.method === "POST") delivered.push(req.url);
        return req.method === "GET" ? [] : { id: 9 };
      },
    });
    const o = await outbox(forge);
    try {
      const started = Date.now();
      await o.reporter.report(held);
      expect(Date.now() - started).toBeLessThan(100);
      expect(o.notifier.pending()).toBe(3);
      mode = "fail";
      await until(() => o.notifier.failing().length > 0);
      expect(delivered).toEqual([]);
      mode = "ok";
      await until(() => o.notifier.pending() === 0, 15_000);
      expect(delivered.filter((u) => u.includes("/statuses/"))).toHaveLength(2);
      expect(delivered.filter((u) => u.includes("/comments"))).toHaveLength(1);
    } finally {
      await o.close();
    }
  }, 30_000);

  test("a branch preview comments on the pull requests it heads; agents with other apps keep their own comment", async () => {
    const calls: string[] = [];
    const fake = {
      provider: "github" as const,
      repository: "o/r",
      setStatus: async (s: { context: string; state: string }) => void calls.push(`${s.context} ${s.state}`),
      comment: async (c: { pr: number; marker: string }) => {
        calls.push(`comment #${c.pr} ${c.marker}`);
        return { id: 1, created: true };
      },
      pullsForHead: async () => [{ number: 8, title: "", headSha: "", headRef: "", baseRef: "", url: "" }],
    };
    const branch = { ...held, ref: "refs/heads/preview/x", apps: held.apps.slice(0, 1) };
    delete branch.pr;
    const posted: Array<[string, OutletPayload]> = [];
    await outboxPreviewReporter((o, p) => posted.push([o, p]), { statusOutlet: "status:github" }).report(
      branch,
    );
    expect(posted.map(([o, p]) => `${o} ${p.app}`)).toEqual(["status:github db"]);
    posted.length = 0;
    await outboxPreviewReporter((o, p) => posted.push([o, p]), {
      statusOutlet: "status:github",
      commentOutlet: "comment:github",
    }).report(branch);
    expect(posted.map(([o]) => o)).toEqual(["status:github", "comment:github"]);
    const outlet = commentOutlet(fake);
    for (const [name, payload] of posted) if (name === outlet.name) await outlet.send(payload, "d1");
    expect(calls).toEqual(["comment #8 preview:db"]);
    expect(commentMarker(["web", "db"])).toBe("preview:db,web");
    expect(commentMarker(["api"])).not.toBe(commentMarker(["db"]));
    expect(previewState("error")).toBe("failure");
    expect(previewState("deferred")).toBe("success");
  });
});
