/**
 * A full disk under the ledger (a real, small tmpfs; needs root to mount): the error names the ledger, the
 * loop starts no sync (nothing applied unrecorded), /readyz answers 503 naming the problem; after space
 * returns the next sync records normally and the chain verifies.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../agent/engine/log.ts";
import { SyncLoop } from "../../agent/engine/loop.ts";
import type { EngineDeps } from "../../agent/engine/ports.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import type { Snapshot } from "../../agent/object/snapshot.ts";
import { testApi } from "../support/api.ts";
import { appSpec } from "../support/app-spec.ts";
import { skipWithout } from "../support/required.ts";

const isRoot = process.getuid?.() === 0;
let mnt = "";
let mounted = false;

beforeAll(() => {
  if (!isRoot) return;
  mnt = mkdtempSync(join(tmpdir(), "berth-diskfull-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=12m", "tmpfs", mnt]);
  mounted = true;
});
afterAll(() => {
  // Lazy: a handle a failed test left open must not keep the mount.
  if (mounted) execFileSync("umount", ["-l", mnt]);
  if (mnt) rmSync(mnt, { recursive: true, force: true });
});

/** Fills the file system with one file until it is full; returns the file (delete it to free the space). */
function fill(dir: string): string {
  const path = join(dir, "filler");
  const fd = openSync(path, "w");
  const chunk = new Uint8Array(64 * 1024).fill(1);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as { code?: string }).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
  return path;
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const cm = (name: string, value: string): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "default" },
  data: { value },
});

describe.skipIf(skipWithout(isRoot, "root (to mount a small tmpfs)"))("ledger on a full disk", () => {
  test("named as the ledger's, readiness 503, nothing applied, and recovery when space returns", async () => {
    const path = join(mnt, "ledger.db");
    const ledger = await Ledger.open(path);
    let value = "1";
    const applied: string[] = [];
    const live = new Map<string, KubeObject>();
    const snapshot = (sha: string): Snapshot => ({
      revision: `main@sha1:${sha}`,
      commit: { sha, author: "T <t@x>", message: "m", time: "2026-11-01T00:00:00Z" },
      readDir: async () => [],
      readBlob: async () => new Uint8Array(),
      stat: async () => undefined,
    });
    let sha = "a".repeat(40);
    const deps: EngineDeps = {
      source: { resolve: async () => sha, snapshot: async (s) => snapshot(s) },
      render: async () => ({
        objects: [{ object: cm("web", value), source: "web/cm.yaml#0" }],
        skipped: [],
        errors: [],
        digest: `d${value}`,
      }),
      cluster: {
        discover: async () => {},
        resource: () => ({ namespaced: true }),
        get: async (ref) => live.get(ref.name),
        apply: async (obj, options) => {
          if (!options.dryRun) {
            applied.push(String((obj.data as { value?: string } | undefined)?.value));
            live.set(obj.metadata.name, obj);
          }
          return obj;
        },
        delete: async (ref) => live.delete(ref.name),
      },
      ledger,
      health: { assess: () => ({ status: "Current", reason: "Current", message: "ok" }) },
      log: silentLogger,
    };
    const spec = appSpec("web");
    const loop = new SyncLoop(deps, [spec], { interval: 60_000, backoffBase: 20 });
    const api = testApi(loop, ledger, {
      apps: [{ name: "web", path: "web", dependsOn: [] }],
      anonymousRead: false,
    });
    const running = loop.start();
    try {
      expect(await loop.triggerAndWait("web")).toMatchObject({ started: true });
      await until("the first sync", () => loop.status()[0]?.status === "Synced");
      expect(applied).toEqual(["1"]);
      expect((await api.request("/readyz")).status).toBe(200);

      // The disk fills up; a new commit arrives.
      const filler = fill(mnt);
      // A write that needs space fails naming the ledger, not "database or disk is full" from nowhere.
      const big = Array.from({ length: 200 }, (_, i) => cm(`big-${i}`, "x".repeat(20_000)));
      await expect(ledger.putManifests(big)).rejects.toThrow(`ledger: disk full at ${path}`);
      value = "2";
      sha = "b".repeat(40);
      const outcome = await loop.triggerAndWait("web");
      expect(outcome).toMatchObject({ started: false, reason: "LedgerUnavailable" });
      expect((outcome as { message: string }).message).toContain(`ledger: disk full at ${path}`);
      expect(applied).toEqual(["1"]); // nothing applied that could not be recorded
      const ready = await api.request("/readyz");
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({
        checks: { ledger: false },
        problem: expect.stringContaining(`ledger: disk full at ${path}`),
      });

      // Space returns: the next sync applies and records normally.
      rmSync(filler);
      const next = await loop.triggerAndWait("web");
      expect(next).toMatchObject({ started: true });
      await until(
        "the sync after space returned",
        () => applied.length === 2 && loop.status()[0]?.status === "Synced",
      );
      expect(applied).toEqual(["1", "2"]);
      const last = ledger.list({ app: "web", limit: 1 })[0];
      expect(last).toMatchObject({ outcome: "Succeeded", revision: `main@sha1:${"b".repeat(40)}` });
      expect((await api.request("/readyz")).status).toBe(200);
      expect(ledger.verify().ok).toBe(true);
    } finally {
      await loop.stop();
      await running;
      ledger.close();
    }
  });
});
