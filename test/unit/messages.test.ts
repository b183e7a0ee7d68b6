/** Bounded messages: the helper, and a plan failure over 600 objects recorded through reconcile() with a fake cluster. */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../../agent/engine/log.ts";
import type { ClusterPort, EngineDeps } from "../../agent/engine/ports.ts";
import { reconcile } from "../../agent/engine/reconcile.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { byteLength, capMessage, joinMessages, MESSAGE_LIMIT } from "../../agent/object/message.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import type { Snapshot } from "../../agent/object/snapshot.ts";
import { appSpec } from "../support/app-spec.ts";

const refused = (i: number) =>
  `cannot reach the API server at https://127.0.0.1:6443: request to https://127.0.0.1:6443/api/v1/namespaces/ns/configmaps/cm-${i}?fieldManager=berth failed, reason: connect: connection refused`;

describe("capMessage", () => {
  test("short messages pass unchanged; long ones are cut on a character boundary with the cut counted", () => {
    expect(capMessage("short")).toBe("short");
    const long = "é".repeat(5000); // 10,000 bytes
    const capped = capMessage(long);
    expect(byteLength(capped)).toBeLessThanOrEqual(MESSAGE_LIMIT);
    expect(capped).toMatch(/^é+… \(\d+ more bytes\)$/);
    const kept = capped.indexOf("…");
    expect(Number(/\((\d+) more/.exec(capped)?.[1])).toBe(10_000 - kept * 2);
    // Astral characters (two UTF-16 units) are never split.
    expect(capMessage("😀".repeat(2000), 100)).toMatch(/^(😀)+… \(\d+ more bytes\)$/);
  });
});

describe("joinMessages", () => {
  test("everything that fits is joined as before", () => {
    const parts = [
      { subject: "ConfigMap/ns/a", message: "bad" },
      { subject: "ConfigMap/ns/b", message: "worse" },
    ];
    expect(joinMessages(parts)).toBe("ConfigMap/ns/a: bad; ConfigMap/ns/b: worse");
    expect(joinMessages(parts, { prefix: "failed: " })).toBe(
      "failed: ConfigMap/ns/a: bad; ConfigMap/ns/b: worse",
    );
    expect(joinMessages([])).toBe("");
  });

  test("600 errors: at most 4 KB, the rest counted with their common cause", () => {
    const parts = Array.from({ length: 600 }, (_, i) => ({
      subject: `ConfigMap/ns/cm-${i}`,
      message: refused(i),
    }));
    const message = joinMessages(parts);
    expect(byteLength(message)).toBeLessThanOrEqual(MESSAGE_LIMIT);
    const shown = message.split("; ").filter((p) => p.startsWith("ConfigMap/")).length;
    expect(shown).toBeGreaterThan(5);
    expect(message).toContain(`; … and ${600 - shown} more objects: connection refused`);
    expect(message.endsWith("connection refused")).toBe(true);
  });

  test("mixed causes are ranked; one huge part is cut so others still show", () => {
    const parts = [
      { subject: "Deployment/ns/huge", message: "x".repeat(50_000) },
      ...Array.from({ length: 300 }, (_, i) => ({ subject: `Pod/ns/p${i}`, message: `dial: i/o timeout` })),
      ...Array.from({ length: 100 }, (_, i) => ({
        subject: `Pod/ns/q${i}`,
        message: `connect: connection refused`,
      })),
      ...Array.from({ length: 10 }, (_, i) => ({ subject: `Pod/ns/r${i}`, message: `nope ${i}` })),
    ];
    const message = joinMessages(parts, { noun: "files" });
    expect(byteLength(message)).toBeLessThanOrEqual(MESSAGE_LIMIT);
    expect(message).toContain("Pod/ns/p0: dial: i/o timeout");
    expect(message).toMatch(
      /… and \d+ more files: \d+ × i\/o timeout, 100 × connection refused, 1 × nope \d, …$/,
    );
  });
});

describe("reconcile() with a plan failure over 600 objects", () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the stored, logged and emitted message is at most 4 KB with the count; each object keeps its error", async () => {
    dir = mkdtempSync(join(tmpdir(), "berth-messages-"));
    const ledger = await Ledger.open(join(dir, "ledger.db"));
    const desired = Array.from({ length: 600 }, (_, i) => ({
      object: {
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: { name: `cm-${i}`, namespace: "ns" },
        data: { i: String(i) },
      } as KubeObject,
      source: `cm-${i}.yaml`,
    }));
    // An API server that went away mid-plan: every read fails.
    const cluster: ClusterPort = {
      discover: async () => {},
      resource: () => ({ namespaced: true }),
      get: async (ref) => {
        throw new Error(refused(Number(ref.name.slice(3))));
      },
      apply: async (obj) => {
        throw new Error(refused(Number(obj.metadata.name.slice(3))));
      },
      delete: async () => false,
    };
    const logged: Array<{ level: string; fields: Record<string, unknown> | undefined }> = [];
    const log: Logger = {
      log: (level, _message, fields) => void logged.push({ level, fields }),
      child: () => log,
    };
    const emitted: string[] = [];
    const deps: EngineDeps = {
      source: {
        resolve: async () => "a".repeat(40),
        snapshot: async () => {
          throw new Error("not reached");
        },
      },
      render: async () => ({ objects: desired, skipped: [], errors: [], digest: "sha256:x" }),
      cluster,
      ledger,
      health: { assess: () => ({ status: "Current", reason: "Current", message: "" }) },
      log,
      emit: (e) => {
        if (e.type === "finished") emitted.push(e.message);
      },
    };
    const snapshot = {
      revision: `main@sha1:${"a".repeat(40)}`,
      commit: { sha: "a".repeat(40), author: "", message: "", time: "" },
    } as unknown as Snapshot;
    const result = await reconcile(deps, {
      app: appSpec("big"),
      trigger: "test",
      snapshot,
    });
    expect(result.reason).toBe("PlanRejected");
    const entry = ledger.get(result.entry);
    const stored = entry?.message ?? "";
    expect(byteLength(stored)).toBeLessThanOrEqual(MESSAGE_LIMIT);
    expect(stored).toMatch(/; … and \d+ more objects: connection refused$/);
    const shown = Number(/and (\d+) more/.exec(stored)?.[1]);
    expect(stored.split("; ").length - 1 + shown).toBe(600);
    expect(result.message).toBe(stored);
    expect(emitted).toEqual([stored]);
    const errorLog = logged.find((l) => l.level === "error");
    expect(errorLog?.fields?.message).toBe(stored);
    // The full detail stays per object.
    expect(entry?.objects).toHaveLength(600);
    expect(entry?.objects.find((o) => o.ref.name === "cm-599")).toMatchObject({
      action: "skipped",
      message: refused(599),
    });
    expect(ledger.verify().ok).toBe(true);
    ledger.close();
  });
});
