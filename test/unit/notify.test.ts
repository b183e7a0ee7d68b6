/**
 * Notifications without a cluster: config errors naming the field, and the outbox against a real local
 * receiver on a real SQLite file — de-duplication and reminders (on an injected clock), recoveries, `when`,
 * the rate limit, retries and delivery after a restart.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../agent/config/config.ts";
import { compileWhen, type ReceiverConfig } from "../../agent/config/notify.ts";
import { ConfigError } from "../../agent/config/problems.ts";
import { openDriver } from "../../agent/ledger/driver.ts";
import type { LedgerEntry } from "../../agent/ledger/entry.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { SCHEMA_VERSION } from "../../agent/ledger/schema.ts";
import {
  approvedEvent,
  driftEvent,
  entryEvent,
  type NotifyEvent,
  reasonOfEntry,
} from "../../agent/notify/event.ts";
import { alertmanager, discord, slack, teams } from "../../agent/notify/formats.ts";
import { DeliveryError } from "../../agent/notify/http.ts";
import { Notifier, type OutletPayload, type Receiver } from "../../agent/notify/notifier.ts";
import { undoApprovalSeq } from "../support/ledger-fixtures.ts";
import {
  checkDiscord,
  checkSlack,
  checkTeams,
  startReceiver,
  type Receiver as TestReceiver,
} from "../support/receiver.ts";

const HEAD = `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "https://git.example/infra.git"}\napps: [{name: web, path: web}]\n`;

function problemsOf(yaml: string): string[] {
  try {
    parseConfig(HEAD + yaml, "/etc/berth/berth.yaml");
  } catch (err) {
    if (err instanceof ConfigError) return err.problems.map((p) => `${p.field}: ${p.message}`);
    throw err;
  }
  return [];
}

describe("notify config", () => {
  test("a good receiver list loads, with defaults", () => {
    const c = parseConfig(
      `${HEAD}api: {externalURL: "https://berth.example/"}\nnotify:\n  - {name: ops, type: slack, urlFile: slack.url, when: 'event.severity == "error"'}\n  - {name: am, type: alertmanager, url: "http://am:9093", repeatInterval: 1h}\n`,
      "/etc/berth/berth.yaml",
    );
    expect(c.api.externalURL).toBe("https://berth.example");
    expect(c.notify?.[0]).toMatchObject({ name: "ops", urlFile: "/etc/berth/slack.url", rateLimit: 30 });
    expect(c.notify?.[1]?.repeatInterval).toBe(3_600_000);
  });

  test("an unknown type, invalid CEL, a plaintext secret URL and a missing signing secret name their fields", () => {
    expect(problemsOf("notify: [{name: x, type: pager, url: 'http://a'}]\n").join("\n")).toContain(
      "notify[0].type",
    );
    const cel = problemsOf("notify: [{name: x, type: slack, urlEnv: U, when: 'event.app =='}]\n");
    expect(cel).toHaveLength(1);
    expect(cel[0]).toStartWith("notify[0].when: invalid CEL");
    expect(problemsOf("notify: [{name: x, type: slack, urlEnv: U, when: 'nope.app == 1'}]\n")[0]).toStartWith(
      "notify[0].when:",
    );
    expect(
      problemsOf("notify: [{name: x, type: discord, url: 'https://discord.com/api/webhooks/1/t'}]\n")[0],
    ).toContain("notify[0].url: a discord webhook URL is a secret");
    expect(problemsOf("notify: [{name: x, type: webhook, url: 'https://h'}]\n")[0]).toStartWith(
      "notify[0].secretFile:",
    );
    expect(
      problemsOf("notify: [{name: x, type: webhook, url: 'https://h', secret: s3cr3t}]\n")[0],
    ).toStartWith("notify[0].secret: plaintext secrets are not allowed");
    expect(
      problemsOf("notify: [{name: x, type: slack, urlEnv: U}, {name: x, type: slack, urlEnv: V}]\n")[0],
    ).toStartWith("notify[1].name:");
  });
});

let dir: string;
let rx: TestReceiver;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "berth-notify-"));
  rx = await startReceiver({ webhookSecret: "hook-secret" });
});
afterAll(async () => {
  await rx.close();
  rmSync(dir, { recursive: true, force: true });
});

let entryId = 0;
function entry(
  outcome: "Succeeded" | "Failed",
  revision = "main@sha1:aaaa",
  extra: Partial<LedgerEntry> = {},
): LedgerEntry {
  const at = new Date().toISOString();
  return {
    id: ++entryId,
    app: "web",
    revision,
    trigger: "loop",
    outcome,
    ...(outcome === "Failed"
      ? {
          reason: "ApplyFailed" as const,
          message: "Service/web/api: spec.ports[0].port: Invalid value: 70000",
        }
      : { reason: "Succeeded" as const, message: "synced" }),
    commit: { sha: "aaaa1111bbbb2222", author: "dev", message: "Open port 70000\n\nbody", time: at },
    startedAt: at,
    finishedAt: at,
    timings: {},
    objects: [
      {
        ref: { group: "", version: "v1", kind: "Service", namespace: "web", name: "api" },
        action: "configured",
      },
    ],
    ...extra,
  };
}

function receiver(
  config: Partial<ReceiverConfig> & Pick<ReceiverConfig, "name" | "type"> & { secret?: string },
  path: string,
): Receiver {
  const { secret, ...rest } = config;
  const c: ReceiverConfig = {
    repeatInterval: 3_600_000,
    rateLimit: 30,
    timeout: 2000,
    sourceUnreachableAfter: 600_000,
    ...rest,
  };
  return {
    config: c,
    url: `${rx.url}${path}`,
    ...(secret ? { secret } : {}),
    ...(c.when ? { when: compileWhen(c.when) } : {}),
  };
}

async function until<T>(what: string, f: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const slackTexts = (path: string) =>
  rx.received.filter((r) => r.path === path).map((r) => String((r.body as { text: string }).text));

describe("outbox", () => {
  test("the same failure notifies once, a reminder after repeatInterval, then the recovery", async () => {
    let clock = Date.parse("2026-01-01T00:00:00Z");
    const n = await Notifier.open(
      join(dir, "dedup.db"),
      [
        receiver({ name: "s", type: "slack", repeatInterval: 3_600_000 }, "/slack/dedup"),
        // `when` picks only warnings: it never hears of this failure, so not of its recovery either.
        receiver({ name: "quiet", type: "slack", when: 'event.severity == "warning"' }, "/slack/quiet"),
      ],
      { externalURL: "https://berth.example", log: () => {}, pollMs: 50, now: () => clock },
    );
    try {
      for (let i = 0; i < 10; i++) {
        n.onEntry(entry("Failed"));
        clock += 60_000; // one interval
      }
      await until("the first message", () => slackTexts("/slack/dedup").length === 1);
      await new Promise((r) => setTimeout(r, 300));
      expect(slackTexts("/slack/dedup")).toEqual(["web: sync failed (main@sha1:aaaa)"]);
      clock += 3_600_000;
      n.onEntry(entry("Failed"));
      n.onEntry(entry("Failed"));
      await until("the reminder", () => slackTexts("/slack/dedup").length === 2);
      expect(slackTexts("/slack/dedup")[1]).toContain("reminder");
      n.onEntry(entry("Succeeded"));
      n.onEntry(entry("Succeeded"));
      await until("the recovery", () => slackTexts("/slack/dedup").length === 3);
      await new Promise((r) => setTimeout(r, 300));
      expect(slackTexts("/slack/dedup")[2]).toBe("web: sync recovered (main@sha1:aaaa)");
      expect(slackTexts("/slack/dedup")).toHaveLength(3);
      expect(slackTexts("/slack/quiet")).toHaveLength(0);
      for (const r of rx.received) expect(r.problems).toEqual([]);
      const block = JSON.stringify(
        (rx.received.find((r) => r.path === "/slack/dedup")?.body as J | undefined)?.blocks,
      );
      expect(block).toContain("Open port 70000");
      expect(block).toContain("https://berth.example/#app=web");
    } finally {
      await n.close();
    }
  });

  test("a receiver that is down gets the notification after a restart, once", async () => {
    const path = join(dir, "restart.db");
    const logs: string[] = [];
    const log = (_l: string, m: string) => logs.push(m);
    await rx.stop();
    const counts: string[] = [];
    const a = await Notifier.open(
      path,
      [receiver({ name: "h", type: "webhook", secret: "hook-secret" }, "/hook/r")],
      {
        externalURL: "https://berth.example",
        log,
        count: (_r, result) => counts.push(result),
        pollMs: 50,
      },
    );
    a.onEntry(entry("Failed", "main@sha1:bbbb"));
    await until("a failed attempt", () => counts.includes("failed"));
    expect(a.pending()).toBe(1);
    expect(logs).toContain("notify: delivery failed; will retry");
    await a.close();
    await rx.start();
    const b = await Notifier.open(
      path,
      [receiver({ name: "h", type: "webhook", secret: "hook-secret" }, "/hook/r")],
      {
        externalURL: "https://berth.example",
        log,
        pollMs: 50,
      },
    );
    try {
      // The same failure again after the restart: already notified, so not queued again.
      b.onEntry(entry("Failed", "main@sha1:bbbb"));
      await until("the delivery", () => rx.received.some((r) => r.path === "/hook/r"), 20_000);
      await until("an empty outbox", () => b.pending() === 0);
      await new Promise((r) => setTimeout(r, 300));
      const got = rx.received.filter((r) => r.path === "/hook/r");
      expect(got).toHaveLength(1);
      expect(got[0]?.problems).toEqual([]);
      expect((got[0]?.body as { event: NotifyEvent } | undefined)?.event).toMatchObject({
        reason: "SyncFailed",
        app: "web",
        revision: "main@sha1:bbbb",
        commit: { subject: "Open port 70000" },
      });
    } finally {
      await b.close();
    }
  }, 30_000);

  test("the rate limit holds the rest in the outbox; `when` sees the event's fields", async () => {
    const n = await Notifier.open(
      join(dir, "rate.db"),
      [
        receiver({ name: "d", type: "discord", rateLimit: 2 }, "/discord/rate"),
        receiver(
          {
            name: "t",
            type: "msteams",
            when: 'event.reason == "DriftHealed" && event.objects[0].kind == "ConfigMap"',
          },
          "/teams/rate",
        ),
      ],
      { externalURL: "https://berth.example", log: () => {}, pollMs: 50 },
    );
    try {
      const commit = { sha: "c0ffee", subject: "x", author: "dev" };
      for (let i = 0; i < 5; i++)
        n.onEvent(
          driftEvent(
            {
              app: "web",
              subject: `ConfigMap/web/c${i}`,
              fields: ["/data/x"],
              action: "healed",
              manager: "kubectl",
            },
            "main@sha1:cccc",
            commit,
            "https://berth.example/#app=web",
          ),
        );
      n.onEvent(
        driftEvent(
          { app: "web", subject: "Secret/web/s", fields: ["/data/x"], action: "alerted", manager: "kubectl" },
          "main@sha1:cccc",
          commit,
          "https://berth.example/#app=web",
        ),
      );
      await until("teams", () => rx.received.filter((r) => r.path === "/teams/rate").length === 5);
      await new Promise((r) => setTimeout(r, 500));
      expect(rx.received.filter((r) => r.path === "/discord/rate")).toHaveLength(2);
      expect(rx.received.filter((r) => r.path === "/teams/rate")).toHaveLength(5);
      expect(n.pending()).toBe(4);
      for (const r of rx.received) expect(r.problems).toEqual([]);
    } finally {
      await n.close();
    }
  });
});

type J = Record<string, unknown>;

describe("outlets, failing deliveries, approvals and the Git source", () => {
  test("an outlet that fails is retried, listed as failing, and a newer payload with the same key replaces the queued one", async () => {
    let up = false;
    const got: OutletPayload[] = [];
    const n = await Notifier.open(join(dir, "outlet.db"), [], {
      externalURL: "https://berth.example",
      log: () => {},
      pollMs: 50,
      outlets: [
        {
          name: "status:gitea",
          rateLimit: 600,
          send: async (p) => {
            if (!up) throw new DeliveryError("http://127.0.0.1:1: cannot connect (refused)", true);
            got.push(p);
          },
        },
      ],
    });
    try {
      n.post("status:gitea", {
        app: "web",
        reason: "status pending",
        key: "abc|berth/web",
        state: "pending",
      });
      await until("a failing line", () => n.failing()[0]);
      expect(n.failing()[0]).toMatchObject({ receiver: "status:gitea", pending: 1, attempts: 1 });
      expect(n.failing()[0]?.lastError).toContain("cannot connect");
      n.post("status:gitea", {
        app: "web",
        reason: "status success",
        key: "abc|berth/web",
        state: "success",
      });
      n.post("status:gitea", {
        app: "api",
        reason: "status pending",
        key: "def|berth/api",
        state: "pending",
      });
      expect(n.pending()).toBe(2);
      up = true;
      // Backoff after one failure is about a second.
      await until("both delivered", () => (n.pending() === 0 ? true : undefined), 10_000);
      expect(got.map((p) => `${p.app} ${p.state}`)).toEqual(["web success", "api pending"]);
      expect(n.failing()).toEqual([]);
    } finally {
      await n.close();
    }
  }, 20_000);

  test("the Git source unreachable past a receiver's threshold notifies once, then its recovery", async () => {
    let clock = Date.parse("2026-01-01T00:00:00Z");
    const n = await Notifier.open(
      join(dir, "source.db"),
      [
        receiver(
          { name: "early", type: "webhook", secret: "s", sourceUnreachableAfter: 60_000 },
          "/hook/src1",
        ),
        receiver(
          { name: "late", type: "webhook", secret: "s", sourceUnreachableAfter: 3_600_000 },
          "/hook/src2",
        ),
      ],
      { externalURL: "https://berth.example", log: () => {}, pollMs: 50, now: () => clock },
    );
    const reasons = (p: string) =>
      rx.received.filter((r) => r.path === p).map((r) => (r.body as { event: NotifyEvent }).event.reason);
    try {
      const since = new Date(clock).toISOString();
      const state = {
        name: "default",
        kind: "git" as const,
        url: "https://git.example/infra.git",
        unreachableSince: since,
        error: "connection refused",
      };
      n.onSource(state);
      clock += 30_000;
      n.onSource(state);
      await new Promise((r) => setTimeout(r, 200));
      expect(reasons("/hook/src1")).toEqual([]);
      for (let i = 0; i < 5; i++) {
        clock += 60_000;
        n.onSource(state);
      }
      await until("the outage", () => reasons("/hook/src1").length === 1);
      const body = rx.received.find((r) => r.path === "/hook/src1")?.body as
        | { event?: NotifyEvent }
        | undefined;
      const event = body?.event;
      expect(event).toMatchObject({ reason: "SourceUnreachable", severity: "warning", since });
      expect(event?.summary).toBe("Git source https://git.example/infra.git unreachable for 2m");
      expect(event?.source).toEqual({ name: "default", kind: "git", url: state.url });
      n.onSource({ ...state, unreachableSince: undefined, error: undefined });
      await until("the recovery", () => reasons("/hook/src1").length === 2);
      await new Promise((r) => setTimeout(r, 200));
      expect(reasons("/hook/src1")).toEqual(["SourceUnreachable", "SourceRecovered"]);
      // The other receiver's threshold was never reached: it hears of neither.
      expect(reasons("/hook/src2")).toEqual([]);
    } finally {
      await n.close();
    }
  });

  test("each source's outage is its own, named, and survives a restart of the notifier", async () => {
    let clock = Date.parse("2026-02-01T00:00:00Z");
    const path = join(dir, "sources.db");
    const open = () =>
      Notifier.open(
        path,
        [
          receiver(
            { name: "ops", type: "webhook", secret: "s", sourceUnreachableAfter: 60_000 },
            "/hook/src3",
          ),
        ],
        { externalURL: "https://berth.example", log: () => {}, pollMs: 50, now: () => clock },
      );
    const events = () =>
      rx.received
        .filter((r) => r.path === "/hook/src3")
        .map((r) => (r.body as { event: NotifyEvent }).event)
        .map((e) => `${e.reason} ${e.source?.kind}:${e.source?.name}`);
    const since = new Date(clock).toISOString();
    const git = { name: "default", kind: "git" as const, url: "https://git.example/infra.git" };
    const oci = { name: "charts", kind: "oci" as const, url: "oci://registry.example/charts" };
    const chart = {
      name: "helm repository https://charts.example",
      kind: "chart" as const,
      url: "https://charts.example",
    };
    let n = await open();
    try {
      n.onSource({ ...git, unreachableSince: since, error: "connection refused" });
      n.onSource({ ...oci, unreachableSince: undefined });
      n.onSource({ ...chart, unreachableSince: since, error: "dial tcp: connection refused" });
      clock += 120_000;
      n.onSource({ ...git, unreachableSince: since, error: "connection refused" });
      n.onSource({ ...oci, unreachableSince: new Date(clock).toISOString(), error: "timeout" });
      n.onSource({ ...chart, unreachableSince: since, error: "dial tcp: connection refused" });
      await until("two outages", () => events().length === 2);
      const summaries = rx.received
        .filter((r) => r.path === "/hook/src3")
        .map((r) => (r.body as { event: NotifyEvent }).event.summary);
      expect(summaries).toEqual([
        "Git source https://git.example/infra.git unreachable for 2m",
        "chart source helm repository https://charts.example unreachable for 2m",
      ]);
    } finally {
      await n.close();
    }
    // A restart: the sources report outages that seem to begin now; the recorded start wins, nobody hears twice.
    n = await open();
    try {
      clock += 120_000;
      const now = new Date(clock).toISOString();
      n.onSource({ ...git, unreachableSince: now, error: "connection refused" });
      n.onSource({ ...chart, unreachableSince: now, error: "dial tcp: connection refused" });
      n.onSource({ ...oci, unreachableSince: now, error: "timeout" });
      await new Promise((r) => setTimeout(r, 200));
      // The OCI source's outage began 2 minutes ago, before the restart: it is told now, the others not again.
      n.onSource({ ...git, unreachableSince: now, error: "connection refused" });
      await new Promise((r) => setTimeout(r, 200));
      expect(events()).toEqual([
        "SourceUnreachable git:default",
        "SourceUnreachable chart:helm repository https://charts.example",
        "SourceUnreachable oci:charts",
      ]);
      n.onSource({ ...chart, unreachableSince: undefined });
      n.onSource({ ...chart, unreachableSince: undefined });
      await until("the chart's recovery", () => events().length === 4);
      await new Promise((r) => setTimeout(r, 200));
      expect(events()[3]).toBe("SourceRecovered chart:helm repository https://charts.example");
      const recovered = rx.received.filter((r) => r.path === "/hook/src3").at(-1)?.body as {
        event: NotifyEvent;
      };
      expect(recovered.event.since).toBe(since);
    } finally {
      await n.close();
    }
  });

  test("approvals written to the ledger by any process are told once each, also after a restart", async () => {
    const path = join(dir, "approvals.db");
    const ledger = await Ledger.open(path);
    ledger.approve("old", "main@sha1:0000", "before", new Date(Date.now() + 3_600_000));
    const open = () =>
      Notifier.open(path, [receiver({ name: "ops", type: "webhook", secret: "s" }, "/hook/approvals")], {
        externalURL: "https://berth.example",
        log: () => {},
        pollMs: 50,
      });
    const told = () =>
      rx.received
        .filter((r) => r.path === "/hook/approvals")
        .map((r) => (r.body as { event: NotifyEvent }).event)
        .map((e) => `${e.reason} ${e.app} ${e.revision} ${e.summary}`);
    let n = await open();
    try {
      await new Promise((r) => setTimeout(r, 5));
      // `berth approve` is another process with its own connection: here, the ledger's.
      ledger.approve("db", "main@sha1:abcd", "cli:alice", new Date(Date.now() + 3_600_000));
      n.onApprovals();
      n.onApprovals();
      await until("the approval", () => told().length === 1);
      await new Promise((r) => setTimeout(r, 200));
      expect(told()).toEqual(["Approved db main@sha1:abcd db: approved by cli:alice"]);
    } finally {
      await n.close();
    }
    n = await open();
    try {
      n.onApprovals();
      await new Promise((r) => setTimeout(r, 5));
      ledger.approve("db", "main@sha1:abcd", "cli:bob", new Date(Date.now() + 7_200_000));
      n.onApprovals();
      await until("the renewed approval", () => told().length === 2);
      await new Promise((r) => setTimeout(r, 200));
      expect(told()[1]).toBe("Approved db main@sha1:abcd db: approved by cli:bob");
    } finally {
      await n.close();
      ledger.close();
    }
  });

  /** A notifier on the ledger file with one webhook receiver at `hook`, and the events that reached it. */
  const approvalNotifier = async (path: string, hook: string) => {
    const n = await Notifier.open(path, [receiver({ name: "ops", type: "webhook", secret: "s" }, hook)], {
      externalURL: "https://berth.example",
      log: () => {},
      pollMs: 50,
    });
    const told = () =>
      rx.received.filter((r) => r.path === hook).map((r) => (r.body as { event: NotifyEvent }).event);
    return { n, told };
  };

  test("two approvals in the same millisecond, the second written after the first was read, are both told", async () => {
    const path = join(dir, "approvals-same-ms.db");
    const at = new Date("2026-11-30T12:00:00.000Z");
    const ledger = await Ledger.open(path, { now: () => at });
    const { n, told: events } = await approvalNotifier(path, "/hook/same-ms");
    const told = () =>
      events()
        .map((e) => `${e.app} ${e.summary}`)
        .sort();
    try {
      const expires = new Date(Date.now() + 3_600_000);
      ledger.approve("a", "main@sha1:aaaa", "cli:alice", expires);
      n.onApprovals();
      ledger.approve("b", "main@sha1:bbbb", "cli:bob", expires);
      n.onApprovals();
      await until("both approvals", () => told().length === 2);
      expect(told()).toEqual(["a a: approved by cli:alice", "b b: approved by cli:bob"]);
    } finally {
      await n.close();
      ledger.close();
    }
  });

  test("a ledger from before the approvals' seq keeps its notifier's place", async () => {
    const path = join(dir, "approvals-migrated.db");
    const ledger = await Ledger.open(path);
    const expires = new Date(Date.now() + 3_600_000);
    ledger.approve("told", "main@sha1:1111", "cli:alice", expires);
    ledger.approve("untold", "main@sha1:2222", "cli:bob", expires);
    ledger.close();
    // Back to the schema and cursor of the version before: approvals ordered by approved_at only.
    const db = await openDriver(path);
    const stamps = ["2026-11-30T10:00:00.000Z", "2026-11-30T11:00:00.000Z"];
    db.run("UPDATE approvals SET approved_at = ? WHERE app = 'told'", [stamps[0] as string]);
    db.run("UPDATE approvals SET approved_at = ? WHERE app = 'untold'", [stamps[1] as string]);
    undoApprovalSeq(db);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION - 1}`);
    db.exec("CREATE TABLE notify_cursor (name TEXT PRIMARY KEY, value TEXT NOT NULL)");
    db.run("INSERT INTO notify_cursor (name, value) VALUES ('approvals', ?)", [stamps[0] as string]);
    db.close();
    const migrated = await Ledger.open(path);
    const { n, told: events } = await approvalNotifier(path, "/hook/migrated");
    const told = () => events().map((e) => e.app);
    try {
      n.onApprovals();
      await until("the untold approval", () => told().length === 1);
      migrated.approve("later", "main@sha1:3333", "cli:carol", expires);
      n.onApprovals();
      await until("the later approval", () => told().length === 2);
      await new Promise((r) => setTimeout(r, 200));
      expect(told()).toEqual(["untold", "later"]);
    } finally {
      await n.close();
      migrated.close();
    }
  });

  test("an approval is an info event naming who approved which revision", () => {
    const e = approvedEvent(
      { app: "db", revision: "main@sha1:abcd", by: "api:ops", expiresAt: "2026-01-01T01:00:00Z" },
      "https://berth.example/#app=db",
    );
    expect(e).toMatchObject({ reason: "Approved", severity: "info", app: "db", commit: { sha: "abcd" } });
    expect(e.summary).toBe("db: approved by api:ops");
    expect(checkSlack(slack(e))).toEqual([]);
  });
});

describe("events", () => {
  test("a finished entry's reason: health, hold, deny, plain failure, replay, routine", () => {
    const held = entry("Failed", "r", {
      reason: "PlanRejected",
      verdicts: [{ rule: "no-pvc-delete", at: "rules.yaml:3", verdict: "hold", message: "held" }],
    });
    const denied = entry("Failed", "r", {
      reason: "PlanRejected",
      verdicts: [{ rule: "no-latest", at: "rules.yaml:9", verdict: "deny", message: "denied" }],
    });
    expect(reasonOfEntry(held)).toBe("HeldForApproval");
    expect(reasonOfEntry(denied)).toBe("DeniedByRule");
    expect(reasonOfEntry(entry("Failed", "r", { reason: "HealthCheckFailed" }))).toBe("HealthDegraded");
    expect(reasonOfEntry(entry("Failed", "r", { reason: "FetchFailed" }))).toBe("SyncFailed");
    expect(reasonOfEntry(entry("Failed", "r", { reason: "Interrupted" }))).toBeUndefined();
    expect(reasonOfEntry(entry("Succeeded", "r", { trigger: "replay" }))).toBe("ReplayDone");
    expect(reasonOfEntry(entry("Succeeded"))).toBeUndefined();
  });

  test("an Alertmanager alert keeps its labels from firing to resolved; endsAt renews or resolves it", () => {
    const failing = entryEvent(
      entry("Failed"),
      "SyncFailed",
      "https://b/#app=web",
      "2026-01-01T00:00:00Z",
      false,
    );
    const now = Date.parse("2026-01-01T01:00:00Z");
    const [fire] = alertmanager(failing, 7_200_000, now) as Array<Record<string, unknown>>;
    const [resolve] = alertmanager(
      { ...failing, reason: "SyncRecovered", severity: "info" },
      7_200_000,
      now,
    ) as Array<Record<string, unknown>>;
    expect(fire?.labels).toEqual({ alertname: "BerthAppFailing", app: "web" });
    expect(resolve?.labels).toEqual(fire?.labels);
    expect(fire?.endsAt).toBe("2026-01-01T03:00:00.000Z");
    expect(resolve?.endsAt).toBe("2026-01-01T01:00:00.000Z");
    expect(fire?.startsAt).toBe("2026-01-01T00:00:00Z");
  });
});

describe("formats", () => {
  test("a 20,000-character failure with <, > and & stays within each service's documented limits", () => {
    const e = entryEvent(
      entry("Failed", "main@sha1:dddd", { message: `<!channel> a & b > c ${"x".repeat(20_000)}` }),
      "SyncFailed",
      "https://b/#app=web",
      "2026-01-01T00:00:00Z",
      false,
    );
    expect(checkSlack(slack(e))).toEqual([]);
    expect(checkDiscord(discord(e))).toEqual([]);
    expect(checkTeams(teams(e))).toEqual([]);
    const text = JSON.stringify(slack(e));
    expect(text).toContain("&lt;!channel&gt; a &amp; b &gt; c");
    expect(text).not.toContain("<!channel>");
    expect(text).toContain("x…```");
  });
});
