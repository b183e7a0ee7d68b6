/**
 * Replay against the real control plane and the real Git server: replay to the first entry prunes what
 * later commits added, --dry-run writes nothing, pin holds an app while commits arrive and unpin catches
 * up, a flipped byte makes `ledger verify` and replay name the entry, export while syncing → import →
 * verify → replay, and without the key every Secret is named and left alone.
 */
import { Database } from "bun:sqlite";
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Wired } from "../../agent/cli/wire.ts";
import { SyncLoop } from "../../agent/engine/loop.ts";
import { replay, resolveEntry } from "../../agent/engine/replay.ts";
import { runCli, syncApp, wireFor, writeConfig } from "../support/berth.ts";
import { auditEvents, eventually, quietSince, writesIn } from "../support/cluster.ts";
import { agentConfig, patchConfigMap, useClusterTest } from "../support/cluster-test.ts";
import {
  configMapYaml as cm,
  deploymentYaml,
  namespaceYaml,
  secretYaml,
  widgetCrdYaml,
  widgetYaml,
} from "../support/manifests.ts";

const t = useClusterTest({ prefix: "replay", crds: (ns) => [`widgets.${ns}.berth.test`] });
const ns = t.ns;
const crdGroup = `${ns}.berth.test`;
let w: Wired;
let configPath: string;
let keyFile: string;
const entries: number[] = [];

const deployment = (name: string, replicas: number) => deploymentYaml(name, replicas, "c");
const files = {
  "web/namespace.yaml": namespaceYaml(ns),
  "web/config.yaml": cm("settings", "one"),
  "web/secret.yaml": secretYaml("creds", { password: "replay-plaintext-1" }),
  "web/api.yaml": deployment("api", 1),
  "web/crd.yaml": widgetCrdYaml(crdGroup),
  "web/widget.yaml": widgetYaml(crdGroup, "gizmo", 1),
};

/** Runs the CLI in-process against the test cluster. */
const run = (...args: string[]) => runCli([...args, "--kubeconfig", t.cluster.kubeconfigPath]);

function configFor(ledgerPath: string, withKey: boolean): string {
  return writeConfig(
    agentConfig(t.url, [{ name: "web", path: "web", namespace: ns, timeout: "60s" }], {
      source: "ref: main, interval: 1s",
      ledger: `"${ledgerPath}"${withKey ? `, secretKeyFile: "${keyFile}"` : ""}`,
    }),
  );
}

const live = (kind: string, name: string, path: string) =>
  t.inNs("get", kind, name, "-o", `jsonpath=${path}`);
const exists = (kind: string, name: string) => {
  try {
    t.inNs("get", kind, name);
    return true;
  } catch {
    return false;
  }
};

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "berth-replay-"));
  keyFile = join(dir, "ledger.key");
  writeFileSync(keyFile, `${"ab12".repeat(16)}\n`);
  configPath = configFor(join(dir, "ledger.db"), true);
  w = await t.wire(configPath);
  // Three commits: the first, one that adds a ConfigMap and a Deployment, one that edits.
  t.commit(files, "first");
  entries.push((await syncApp(w, "web")).entry);
  t.commit(
    { "web/extra.yaml": cm("extra", "added"), "web/worker.yaml": deployment("worker", 1) },
    "add extra and worker",
  );
  entries.push((await syncApp(w, "web")).entry);
  t.commit({ "web/config.yaml": cm("settings", "three") }, "edit settings");
  entries.push((await syncApp(w, "web")).entry);
  for (const id of entries) expect(w.ledger.get(id)?.outcome).toBe("Succeeded");
}, 600_000);

describe("berth replay", () => {
  test("--dry-run shows the plan of replaying the first entry and writes nothing", async () => {
    const before = w.ledger.list({ limit: 1000 }).length;
    const since = await quietSince();
    const r = await run(
      "replay",
      "--config",
      configPath,
      "--app",
      "web",
      "--to",
      String(entries[0]),
      "--dry-run",
    );
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    expect(r.out).toContain(`replay of entry ${entries[0]} (dry run, nothing written)`);
    expect(r.out).toContain(`- ConfigMap/${ns}/extra  deleted`);
    expect(r.out).toContain(`- Deployment/${ns}/worker  deleted`);
    expect(r.out).toContain(`~ ConfigMap/${ns}/settings  configured`);
    await new Promise((res) => setTimeout(res, 300)); // the audit log is written asynchronously
    const events = auditEvents(t.cluster, since, "berth", ns);
    expect(events.some((e) => e.requestURI.includes("dryRun=All"))).toBe(true);
    expect(writesIn(events)).toEqual([]);
    expect(w.ledger.list({ limit: 1000 }).length).toBe(before);
    expect(exists("configmap", "extra")).toBe(true);
  }, 60_000);

  test("a bad --to is a usage error naming it; nothing is recorded", async () => {
    const before = w.ledger.list({ limit: 1000 }).length;
    for (const to of ["999999", "zz-not-a-commit", "deadbeef"]) {
      const r = await run("replay", "--config", configPath, "--app", "web", "--to", to);
      expect(r.code).toBe(2);
      expect(r.err).toContain(`--to ${to}`);
    }
    expect((await run("replay", "--config", configPath, "--app", "nope", "--to", "1")).err).toContain(
      "--app nope: no such app",
    );
    expect((await run("replay", "--config", configPath, "--app", "web")).code).toBe(2);
    expect(w.ledger.list({ limit: 1000 }).length).toBe(before);
  }, 30_000);

  test("replaying the first entry (by commit) prunes what later commits added and is recorded", async () => {
    const first = w.ledger.get(entries[0] as number);
    const sha = first?.commitSha?.slice(0, 10) ?? "";
    const r = await run("replay", "--config", configPath, "--app", "web", "--to", sha);
    expect(r.err).not.toContain("replay-plaintext");
    expect(r.code).toBe(0);
    expect(r.out).toContain(`replay of entry ${entries[0]}: 0 created, 1 configured`);
    expect(exists("configmap", "extra")).toBe(false);
    expect(exists("deployment", "worker")).toBe(false);
    expect(live("configmap", "settings", "{.data.greeting}")).toBe("one");
    expect(live("widgets.".concat(crdGroup), "gizmo", "{.spec.size}")).toBe("1");
    const last = w.ledger.list({ app: "web", limit: 1 })[0];
    expect(last).toMatchObject({ trigger: "replay", outcome: "Succeeded", reason: "Succeeded" });
    expect(last?.revision).toBe(first?.revision as string);
    expect(last?.message).toStartWith(`replay of entry ${entries[0]}:`);
    expect(w.ledger.inventory("web").map((i) => i.ref.name)).not.toContain("worker");
    expect(w.ledger.verify().ok).toBe(true);
  }, 120_000);

  test("last-healthy replays the newest healthy entry: the replay itself, so nothing changes", async () => {
    const since = await quietSince();
    const r = await run("replay", "--config", configPath, "--app", "web", "--to", "last-healthy");
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/0 created, 0 configured, 6 unchanged, 0 deleted/);
    await new Promise((res) => setTimeout(res, 300));
    expect(writesIn(auditEvents(t.cluster, since, "berth", ns))).toEqual([]);
  }, 60_000);

  test("pin holds the app at an entry while new commits arrive; unpin catches up to Git", async () => {
    const pin = await run("pin", "--config", configPath, "--app", "web", "--to", String(entries[0]));
    expect(pin.code).toBe(0);
    expect(pin.err).toContain(`pinned web at entry ${entries[0]}`);
    const commit4 = t.commit({ "web/config.yaml": cm("settings", "four") }, "four");
    const loop = new SyncLoop(w.deps, w.config.apps, { interval: 500, backoffBase: 200 });
    const running = loop.start();
    try {
      const held = await eventually("the loop to see the new commit as pending", 30_000, async () => {
        const s = loop.status()[0];
        return s?.pinned?.pendingRevision === `main@sha1:${commit4}` && s.lastResult ? s : undefined;
      });
      expect(held.pinned?.entry).toBe(entries[0] as number);
      expect(held.lastResult?.outcome).toBe("Succeeded");
      expect(w.ledger.list({ app: "web", limit: 1 })[0]?.trigger).toBe("pin");
      // Drift is put back to the pinned state, not to Git's.
      patchConfigMap(t.cluster, ns, "settings", { greeting: "x" });
      await eventually("the pinned value to come back", 30_000, async () =>
        live("configmap", "settings", "{.data.greeting}") === "one" ? true : undefined,
      );
      const unpin = await run("unpin", "--config", configPath, "--app", "web");
      expect(unpin.out).toContain(`unpinned web (was at entry ${entries[0]}; pending main@sha1:${commit4})`);
      await eventually("the app to catch up to Git", 30_000, async () =>
        live("configmap", "settings", "{.data.greeting}") === "four" ? true : undefined,
      );
      expect(loop.status()[0]?.pinned).toBeUndefined();
      expect(exists("deployment", "worker")).toBe(true);
    } finally {
      await loop.stop();
      await running;
    }
    expect((await run("pin", "--config", configPath, "--app", "web", "--to", "999999")).code).toBe(2);
  }, 120_000);

  test("export while syncing, import on a fresh ledger path, verify, then replay from it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-export-"));
    const file = join(dir, "export.db");
    // A LoadBalancer Service (no cloud controller here gives it an address) keeps the sync in its health wait
    // until the test sets one: the export provably runs while the sync's entry is open.
    t.commit(
      {
        "web/config.yaml": cm("settings", "five"),
        "web/held.yaml": `apiVersion: v1\nkind: Service\nmetadata:\n  name: held\nspec:\n  type: LoadBalancer\n  selector: {app: none}\n  ports: [{port: 80}]\n`,
      },
      "five",
    );
    const syncing = syncApp(w, "web");
    const open = await eventually("the sync's entry to be open, waiting on the Service", 30_000, async () => {
      const running = w.ledger.list({ app: "web", limit: 1 })[0];
      return running?.outcome === "Running" && exists("service", "held") ? running : undefined;
    });
    const exported = await run("ledger", "export", file, "--config", configPath);
    expect(exported.code).toBe(0);
    expect(exported.out).toMatch(/ok — \d+ entries and \d+ blobs verified/);
    t.inNs(
      "patch",
      "service",
      "held",
      "--subresource=status",
      "--type=merge",
      "-p",
      '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}}',
    );
    const synced = await syncing;
    expect(synced.outcome).toBe("Succeeded");
    expect(synced.entry).toBe(open.id);
    // The export holds the attempt as it was mid-sync: begun, not finished.
    const copy = new Database(file, { readonly: true });
    try {
      expect(copy.query("SELECT outcome FROM entries WHERE id = ?").get(open.id)).toEqual({
        outcome: "Running",
      });
    } finally {
      copy.close();
    }

    const fresh = configFor(join(dir, "new", "ledger.db"), true);
    const imported = await run("ledger", "import", file, "--config", fresh);
    expect(imported.err).toBe("");
    expect(imported.code).toBe(0);
    const again = await run("ledger", "import", file, "--config", fresh);
    expect(again.code).toBe(2);
    expect(again.err).toContain("refusing to replace them (use --force)");
    expect((await run("ledger", "import", file, "--config", fresh, "--force")).code).toBe(0);
    expect((await run("ledger", "verify", "--config", fresh)).code).toBe(0);

    const r = await run("replay", "--config", fresh, "--app", "web", "--to", String(entries[0]));
    expect(r.code).toBe(0);
    expect(live("configmap", "settings", "{.data.greeting}")).toBe("one");
    expect(exists("configmap", "extra")).toBe(false);
    expect(Buffer.from(live("secret", "creds", "{.data.password}"), "base64").toString()).toBe(
      "replay-plaintext-1",
    );

    // Without the key, every Secret is named and left alone (neither applied nor pruned); the rest is restored.
    const noKey = configFor(join(dir, "new", "ledger.db"), false);
    patchConfigMap(t.cluster, ns, "settings", { greeting: "x" });
    const partial = await run("replay", "--config", noKey, "--app", "web", "--to", String(entries[0]));
    expect(partial.code).toBe(1);
    expect(partial.out).toContain(`! not restored: Secret/${ns}/creds: encrypted with key`);
    expect(partial.out).toContain("no secret key is configured");
    expect(live("configmap", "settings", "{.data.greeting}")).toBe("one");
    expect(exists("secret", "creds")).toBe(true);
    const entry = await openEntry(noKey);
    expect(entry.objects.find((o) => o.ref.kind === "Secret")).toMatchObject({ action: "skipped" });
    expect(entry.message).toContain(`not restored: Secret/${ns}/creds`);
  }, 180_000);

  test("a flipped byte in an entry or a blob fails verify naming the entry; replay refuses it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-tamper-"));
    for (const target of ["entry", "blob"] as const) {
      const path = join(dir, `${target}.db`);
      expect((await run("ledger", "export", path, "--config", configPath)).code).toBe(0);
      const db = new Database(path);
      const second = entries[1] as number;
      if (target === "entry") {
        const row = db.query("SELECT message FROM entries WHERE id = ?").get(second) as { message: string };
        db.query("UPDATE entries SET message = ? WHERE id = ?").run(`${row.message.slice(0, -1)}X`, second);
      } else {
        // A blob only the second entry recorded: the worker Deployment's manifest.
        const { digest } = db
          .query(
            "SELECT digest FROM entry_objects WHERE entry_id = ? AND object_id LIKE '%_worker_apps_Deployment'",
          )
          .get(second) as { digest: string };
        const { content } = db.query("SELECT content FROM blobs WHERE digest = ?").get(digest) as {
          content: Uint8Array;
        };
        const flipped = new Uint8Array(content);
        flipped[20] = (flipped[20] ?? 0) ^ 0x01;
        db.query("UPDATE blobs SET content = ? WHERE digest = ?").run(flipped, digest);
      }
      db.close();
      const cfg = configFor(path, true);
      const v = await run("ledger", "verify", "--config", cfg);
      expect(v.code).toBe(1);
      expect(v.err).toContain(`verification failed: entry ${second}`);
      const r = await run("replay", "--config", cfg, "--app", "web", "--to", String(second));
      expect(r.code).toBe(1);
      expect(r.out).toContain(`ledger entry ${second}`);
      expect(r.out).toContain("refusing to replay");
      expect(r.out).toContain("BuildFailed");
      // An entry before the tampered one still replays.
      const tw = await wireFor(cfg, t.cluster.kubeconfigPath);
      try {
        const spec = tw.config.apps[0];
        if (!spec) throw new Error("no app");
        const ok = await replay(
          { ...tw.deps, ledger: tw.ledger },
          {
            app: spec,
            entry: resolveEntry(tw.ledger, "web", String(entries[0])),
            trigger: "replay",
          },
        );
        expect(ok.outcome).toBe("Succeeded");
      } finally {
        tw.close();
      }
    }
  }, 180_000);
});

async function openEntry(config: string) {
  const ow = await wireFor(config, t.cluster.kubeconfigPath);
  try {
    const last = ow.ledger.list({ app: "web", limit: 1 })[0];
    const entry = last ? ow.ledger.get(last.id) : undefined;
    if (!entry) throw new Error("no entry");
    return entry;
  } finally {
    ow.close();
  }
}
