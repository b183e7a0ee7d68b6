/**
 * Render memos (schema 8, agent/ledger/README.md "Render memo"): kept only with a success, read back only when
 * every manifest is exact, named by lastRender() in a fresh instance only while the inventory holds exactly its
 * digests, and added to a ledger of the schema before by migration.
 */
import { describe, expect, test } from "bun:test";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { MIGRATIONS, SCHEMA_VERSION } from "../../agent/ledger/schema.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import type { RenderMemo } from "../../agent/object/records.ts";
import { coreRef, undoApprovalSeq, useLedgerPath, withRawDb } from "../support/ledger-fixtures.ts";

const ledgerFile = useLedgerPath();

const cm = (name: string, v = "1"): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "default" },
  data: { v },
});

/** One finished sync of ConfigMaps a and b: their manifests stored, the inventory written, the memo given. */
async function syncOnce(
  ledger: Ledger,
  outcome: "Succeeded" | "Failed" = "Succeeded",
  key = "key-1",
): Promise<{ id: number; memo: RenderMemo }> {
  const objects = [cm("a"), cm("b")];
  const digests = await ledger.putManifests(objects);
  const items = objects.map((o) => ({
    ref: coreRef("ConfigMap", o.metadata.name),
    digest: digests.get(`default_${o.metadata.name}__ConfigMap`) ?? "",
  }));
  const memo: RenderMemo = {
    key,
    digest: "sha256:render",
    objects: items.map((i, n) => ({ digest: i.digest, source: `app/${n}.yaml` })),
    skipped: [{ path: "app/notes.yaml#0", message: "not a Kubernetes object" }],
    files: 3,
  };
  const id = ledger.begin({ app: "web", revision: "main@sha1:abc", trigger: "cli" });
  const recorded = ledger.finish(id, {
    outcome,
    reason: outcome === "Succeeded" ? "Succeeded" : "ApplyFailed",
    message: "m",
    renderedDigest: memo.digest,
    objects: items.map((i) => ({ ref: i.ref, action: "created" as const, digest: i.digest })),
    timings: {},
    inventory: items,
    renderMemo: memo,
  });
  return { id: recorded, memo };
}

describe("render memos", () => {
  test("a success keeps its memo: read back under its key only, with the manifests in render order", async () => {
    const ledger = await Ledger.open(ledgerFile.path);
    const { id, memo } = await syncOnce(ledger);
    ledger.close();
    const again = await Ledger.open(ledgerFile.path);
    try {
      const found = await again.renderMemo("web", "key-1");
      expect(found?.entry).toBe(id);
      expect(found?.memo).toEqual(memo);
      expect(found?.objects).toEqual([cm("a"), cm("b")]);
      expect(await again.renderMemo("web", "key-2")).toBeUndefined();
      expect(await again.renderMemo("other", "key-1")).toBeUndefined();
    } finally {
      again.close();
    }
  });

  test("a failed entry keeps no memo", async () => {
    const ledger = await Ledger.open(ledgerFile.path);
    try {
      await syncOnce(ledger, "Failed");
      expect(await ledger.renderMemo("web", "key-1")).toBeUndefined();
    } finally {
      ledger.close();
    }
  });

  test("a manifest altered in the file is not read back (and no memo is taken)", async () => {
    const ledger = await Ledger.open(ledgerFile.path);
    const { memo } = await syncOnce(ledger);
    ledger.close();
    await withRawDb(ledgerFile.path, (db) =>
      db.run("UPDATE blobs SET content = ? WHERE digest = ?", [
        new TextEncoder().encode(JSON.stringify(cm("a", "tampered"))),
        memo.objects[0]?.digest ?? "",
      ]),
    );
    const again = await Ledger.open(ledgerFile.path);
    try {
      expect(await again.renderMemo("web", "key-1")).toBeUndefined();
    } finally {
      again.close();
    }
  });

  test("a fresh instance's lastRender is the memo's render while the inventory holds exactly its digests", async () => {
    const ledger = await Ledger.open(ledgerFile.path);
    await syncOnce(ledger);
    ledger.close();
    let fresh = await Ledger.open(ledgerFile.path);
    expect(fresh.lastRender("web")).toBe("sha256:render");
    // A claim adds to the inventory: the digests are no longer the memo's alone.
    const extra = await fresh.putManifests([cm("c")]);
    fresh.claimInventory("web", [
      { ref: coreRef("ConfigMap", "c"), digest: extra.get("default_c__ConfigMap") ?? "" },
    ]);
    expect(fresh.lastRender("web")).toBeUndefined();
    fresh.close();
    // A newer entry that failed: not the last entry's render any more.
    fresh = await Ledger.open(ledgerFile.path);
    await syncOnce(fresh);
    const id = fresh.begin({ app: "web", revision: "main@sha1:abc", trigger: "cli" });
    fresh.finish(id, { outcome: "Failed", reason: "BuildFailed", message: "x", objects: [], timings: {} });
    fresh.close();
    fresh = await Ledger.open(ledgerFile.path);
    try {
      expect(fresh.lastRender("web")).toBeUndefined();
    } finally {
      fresh.close();
    }
  });

  test("lastRender in a fresh instance needs every manifest sealed with the current key (else they are stored again)", async () => {
    const keyA = new Uint8Array(32).fill(1);
    const secret: KubeObject = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "s", namespace: "default" },
      stringData: { p: "x" },
    };
    const ledger = await Ledger.open(ledgerFile.path, { secretKey: keyA });
    const digest = (await ledger.putManifests([secret])).get("default_s__Secret") ?? "";
    const item = { ref: coreRef("Secret", "s"), digest };
    const id = ledger.begin({ app: "web", revision: "main@sha1:abc", trigger: "cli" });
    ledger.finish(id, {
      outcome: "Succeeded",
      reason: "Succeeded",
      message: "m",
      renderedDigest: "sha256:r",
      objects: [{ ref: item.ref, action: "created", digest }],
      timings: {},
      inventory: [item],
      renderMemo: {
        key: "k",
        digest: "sha256:r",
        objects: [{ digest, source: "s.yaml" }],
        skipped: [],
        files: 1,
      },
    });
    ledger.close();
    for (const [key, expected] of [
      [keyA, "sha256:r"],
      [new Uint8Array(32).fill(2), undefined],
      [undefined, undefined],
    ] as const) {
      const fresh = await Ledger.open(ledgerFile.path, key ? { secretKey: key } : {});
      try {
        expect(fresh.lastRender("web")).toBe(expected);
      } finally {
        fresh.close();
      }
    }
  });

  test("a no-op folded into the same entry under the same key does not rewrite the memo", async () => {
    const ledger = await Ledger.open(ledgerFile.path);
    try {
      const objects = [cm("a")];
      const digest = (await ledger.putManifests(objects)).get("default_a__ConfigMap") ?? "";
      const ref = coreRef("ConfigMap", "a");
      const pass = (action: "created" | "unchanged", files: number) => {
        const id = ledger.begin({ app: "web", revision: "main@sha1:abc", trigger: "loop" });
        return ledger.finish(id, {
          outcome: "Succeeded",
          reason: "Succeeded",
          message: "m",
          renderedDigest: "sha256:r",
          objects: [{ ref, action, digest }],
          timings: {},
          inventory: [{ ref, digest }],
          renderMemo: {
            key: "k",
            digest: "sha256:r",
            objects: [{ digest, source: "a.yaml" }],
            skipped: [],
            files,
          },
        });
      };
      const first = pass("created", 1);
      expect(pass("unchanged", 2)).toBe(first);
      expect(pass("unchanged", 3)).toBe(first);
      expect((await ledger.renderMemo("web", "k"))?.memo.files).toBe(1);
    } finally {
      ledger.close();
    }
  });

  test("a ledger of the schema before migrates: its entries verify and it keeps memos from then on", async () => {
    let ledger = await Ledger.open(ledgerFile.path);
    await syncOnce(ledger);
    ledger.close();
    await withRawDb(ledgerFile.path, (db) => {
      db.exec("DROP TABLE render_memos");
      undoApprovalSeq(db);
      db.exec(
        `PRAGMA user_version = ${MIGRATIONS.findIndex((m) => m.includes("CREATE TABLE render_memos"))}`,
      );
    });
    ledger = await Ledger.open(ledgerFile.path);
    try {
      expect(await withRawDb(ledgerFile.path, (db) => db.get("PRAGMA user_version"))).toEqual({
        user_version: SCHEMA_VERSION,
      });
      expect(ledger.verify()).toMatchObject({ ok: true, entries: 1 });
      expect(await ledger.renderMemo("web", "key-1")).toBeUndefined();
      expect(ledger.lastRender("web")).toBeUndefined();
      await syncOnce(ledger, "Succeeded", "key-2");
      expect((await ledger.renderMemo("web", "key-2"))?.objects).toHaveLength(2);
      expect(ledger.verify()).toMatchObject({ ok: true });
    } finally {
      ledger.close();
    }
  });
});
