/**
 * Replay of compact entries through the real engine (reconcile, replay) and a real ledger, against an
 * in-memory cluster: after no-op resyncs folded away and one-object changes, `replay --to` the first entry
 * (and every other one) restores exactly the objects that entry applied.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { silentLogger } from "../../agent/engine/log.ts";
import type { AppSpec, EngineDeps } from "../../agent/engine/ports.ts";
import { reconcile } from "../../agent/engine/reconcile.ts";
import { replay, resolveEntry } from "../../agent/engine/replay.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import type { Snapshot } from "../../agent/object/snapshot.ts";
import { appSpec } from "../support/app-spec.ts";
import { tempDir } from "../support/ledger-fixtures.ts";

const SIZE = 30;
let cleanup: () => void;
let ledger: Ledger;
const values = Array.from({ length: SIZE }, () => "v0");
const live = new Map<string, KubeObject>();
let writes = 0;
let deps: EngineDeps;
const spec: AppSpec = appSpec("web", { namespace: "default" });
const snapshot = (sha: string): Snapshot => ({
  revision: `main@sha1:${sha.padStart(40, "0")}`,
  commit: { sha: sha.padStart(40, "0"), author: "T <t@x>", message: "m", time: "2026-11-01T00:00:00Z" },
  readDir: async () => [],
  readBlob: async () => new Uint8Array(),
  stat: async () => undefined,
});
const desired = (): KubeObject[] =>
  values.map((v, i) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: `cm-${String(i).padStart(3, "0")}`, namespace: "default" },
    data: { v },
  }));
const liveValues = () =>
  [...live.values()]
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
    .map((o) => (o.data as { v: string }).v);

beforeAll(async () => {
  let dir: string;
  ({ dir, cleanup } = tempDir());
  ledger = await Ledger.open(join(dir, "l.db"));
  deps = {
    source: { resolve: async () => "1", snapshot: async (s) => snapshot(s) },
    render: async () => ({
      objects: desired().map((object) => ({ object, source: "web/cms.yaml" })),
      skipped: [],
      errors: [],
      digest: `d-${values.join(",")}`,
    }),
    cluster: {
      discover: async () => {},
      resource: () => ({ namespaced: true }),
      get: async (ref) => structuredClone(live.get(ref.name)),
      apply: async (obj, options) => {
        // Like the API server: an existing object comes back with its resourceVersion, bumped on a real write.
        const existing = live.get(obj.metadata.name);
        const out = structuredClone(obj);
        const version = Number(existing?.metadata.resourceVersion ?? 0);
        if (existing) out.metadata.resourceVersion = String(version);
        if (!options.dryRun) {
          writes++;
          out.metadata.resourceVersion = String(version + 1);
          live.set(obj.metadata.name, structuredClone(out));
        }
        return out;
      },
      delete: async (ref) => live.delete(ref.name),
    },
    ledger,
    health: { assess: () => ({ status: "Current", reason: "Current", message: "ok" }) },
    log: silentLogger,
  };
});
afterAll(() => {
  ledger.close();
  cleanup();
});

describe("replay of compact entries", () => {
  test("every entry of a run with folded no-ops replays to exactly its objects", async () => {
    const states = new Map<number, string[]>();
    let rev = 1;
    const sync = async () => {
      const r = await reconcile(deps, { app: spec, trigger: "loop", snapshot: snapshot(String(rev)) });
      expect(r.outcome).toBe("Succeeded");
      states.set(r.entry, liveValues());
      return r.entry;
    };
    const first = await sync();
    expect(liveValues()).toEqual(values);
    for (let round = 1; round <= 4; round++) {
      // Three no-op resyncs fold into the entry before them, writing nothing.
      const before = writes;
      const last = ledger.list({ app: "web", limit: 1 })[0]?.id;
      for (let i = 0; i < 3; i++) expect(await sync()).toBe(last ?? -1);
      expect(writes).toBe(before);
      values[(round * 7) % SIZE] = `v${round}`;
      rev++;
      await sync();
    }
    const list = ledger.list({ app: "web" });
    expect(list).toHaveLength(5);
    expect(list.every((e) => e.verified?.count === 3 || e.id === list[0]?.id)).toBe(true);
    expect(ledger.verify().ok).toBe(true);
    // Oldest first: the first entry restores the first state exactly (four objects go back), then the rest.
    for (const id of [
      first,
      ...list
        .map((e) => e.id)
        .reverse()
        .slice(1),
    ]) {
      const entry = resolveEntry(ledger, "web", String(id));
      const r = await replay({ ...deps, ledger }, { app: spec, entry, trigger: "replay" });
      expect(r.outcome).toBe("Succeeded");
      expect(liveValues()).toEqual(states.get(id) ?? []);
    }
    expect(ledger.verify().ok).toBe(true);
  });
});
