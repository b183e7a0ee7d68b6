import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { chainHashOf, contentHashOf } from "../../agent/ledger/chain.ts";
import type { EntryRow, ObjectRow } from "../../agent/ledger/entry.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { digestOf } from "../../agent/object/canonical.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import { configMap, deploymentRef, keyOf, tempDir, withRawDb } from "../support/ledger-fixtures.ts";

let dir: string;
let cleanup: () => void;
let path: string;
let ids: number[];
let cmDigest: string;
let secretDigest: string;

/** Builds a ledger of three finished entries with object rows, a plain blob and an encrypted one, then closes it. */
beforeEach(async () => {
  ({ dir, cleanup } = tempDir());
  path = join(dir, "ledger.db");
  const ledger = await Ledger.open(path, { secretKey: keyOf(3) });
  const cm = configMap("cfg", "1");
  const secret: KubeObject = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "s" },
    data: { k: "dg==" },
  };
  const digests = await ledger.putManifests([cm, secret]);
  cmDigest = digestOf(cm);
  secretDigest = digests.get("_s__Secret") ?? "";
  ids = [];
  for (const revision of ["r1", "r2", "r3"]) {
    const id = ledger.begin({ app: "web", revision, trigger: "poll" });
    ledger.finish(id, {
      outcome: "Succeeded",
      reason: "Succeeded",
      message: "ok",
      timings: { apply: 1 },
      objects: [{ ref: deploymentRef("api"), action: "configured", digest: cmDigest }],
    });
    ids.push(id);
  }
  ledger.close();
});
afterEach(() => cleanup());

async function verify(): Promise<ReturnType<Ledger["verify"]>> {
  const ledger = await Ledger.open(path, { secretKey: keyOf(3) });
  try {
    return ledger.verify();
  } finally {
    ledger.close();
  }
}

async function tamper(sql: string, params: (string | number)[] = []): Promise<void> {
  const changed = await withRawDb(path, (db) => db.run(sql, params).changes);
  expect(changed).toBeGreaterThan(0); // the edit really happened
}

describe("verify", () => {
  test("an untouched ledger verifies", async () => {
    expect(await verify()).toEqual({ ok: true, entries: 3, blobs: 2 });
  });

  test("detects an edited entry column and names the entry", async () => {
    await tamper("UPDATE entries SET message = 'all good, honest' WHERE id = ?", [ids[1] ?? 0]);
    expect(await verify()).toMatchObject({ ok: false, firstBad: ids[1] });
  });

  test("detects an edited object row", async () => {
    await tamper("UPDATE entry_objects SET action = 'unchanged' WHERE entry_id = ?", [ids[2] ?? 0]);
    const result = await verify();
    expect(result).toMatchObject({ ok: false, firstBad: ids[2] });
    expect(result.message).toContain("content does not match");
  });

  test("detects a removed entry (the next one's link breaks)", async () => {
    await tamper("DELETE FROM entries WHERE id = ?", [ids[1] ?? 0]);
    expect(await verify()).toMatchObject({ ok: false, firstBad: ids[2] });
  });

  test("detects a rewritten entry whose own hashes were recomputed: the next entry's link breaks", async () => {
    await withRawDb(path, (db) => {
      const row = db.get<EntryRow>("SELECT * FROM entries WHERE id = ?", [ids[0] ?? 0]);
      if (!row) throw new Error("missing entry");
      const edited: EntryRow = { ...row, revision: "evil" };
      const objects = db.all<ObjectRow>("SELECT * FROM entry_objects WHERE entry_id = ? ORDER BY seq", [
        row.id,
      ]);
      const content = contentHashOf(edited, objects);
      db.run("UPDATE entries SET revision = ?, content_hash = ?, hash = ? WHERE id = ?", [
        "evil",
        content,
        chainHashOf(row.prev_hash ?? "", content),
        row.id,
      ]);
    });
    const result = await verify();
    expect(result).toMatchObject({ ok: false, firstBad: ids[1] });
    expect(result.message).toContain("previous-hash link");
  });

  test("detects a Running entry flipped to Succeeded outside finish", async () => {
    const ledger = await Ledger.open(path);
    const id = ledger.begin({ app: "web", revision: "r4", trigger: "poll" });
    ledger.close();
    await tamper("UPDATE entries SET outcome = 'Succeeded' WHERE id = ?", [id]);
    expect(await verify()).toMatchObject({ ok: false, firstBad: id });
  });

  test("detects an edited plain blob", async () => {
    await tamper(
      "UPDATE blobs SET content = CAST(replace(CAST(content AS TEXT), 'cfg', 'cfX') AS BLOB) WHERE digest = ?",
      [cmDigest],
    );
    const result = await verify();
    expect(result).toMatchObject({ ok: false, blob: cmDigest });
    expect(result.message).toContain(`blob ${cmDigest}`);
  });

  test("detects a plain blob edited together with its content hash", async () => {
    await tamper(
      "UPDATE blobs SET content = CAST(replace(CAST(content AS TEXT), 'cfg', 'cfX') AS BLOB) WHERE digest = ?",
      [cmDigest],
    );
    await withRawDb(path, (db) => {
      const row = db.get<{ content: Uint8Array }>("SELECT content FROM blobs WHERE digest = ?", [cmDigest]);
      const hash = new Bun.CryptoHasher("sha256").update(row?.content ?? new Uint8Array()).digest("hex");
      db.run("UPDATE blobs SET content_hash = ? WHERE digest = ?", [hash, cmDigest]);
    });
    expect(await verify()).toMatchObject({
      ok: false,
      blob: cmDigest,
      message: expect.stringContaining("digest"),
    });
  });

  test("detects an edited encrypted blob by its ciphertext hash", async () => {
    await tamper("UPDATE blobs SET content = zeroblob(length(content)) WHERE digest = ?", [secretDigest]);
    expect(await verify()).toMatchObject({ ok: false, blob: secretDigest });
  });
});
