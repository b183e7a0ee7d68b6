import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createHash, createHmac } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { digestKeyPathOf, keyIdOf } from "../../agent/ledger/secrets.ts";
import { canonicalJson, digestOf, sha256Hex } from "../../agent/object/canonical.ts";
import { BerthError } from "../../agent/object/errors.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import { configMap, keyOf, rawDatabaseBytes, tempDir, withRawDb } from "../support/ledger-fixtures.ts";

// Distinctive values, so finding their bytes in the file can only mean a leak.
const PASSWORD = "correct-horse-battery-staple-7f3a";
const TOKEN = "tok-b7e1c0d9-plaintext-token";
const TOKEN_B64 = Buffer.from(TOKEN).toString("base64");
const VISIBLE = "visible-configmap-marker-91c2";

function secret(): KubeObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: "creds",
      namespace: "prod",
      annotations: {
        "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({
          stringData: { password: PASSWORD },
        }),
      },
    },
    type: "Opaque",
    data: { token: TOKEN_B64 },
    stringData: { password: PASSWORD },
  };
}

/** Forms of the secret values that must never be in the file. */
const LEAKS = [PASSWORD, TOKEN, TOKEN_B64, Buffer.from(PASSWORD).toString("base64")];

let dir: string;
let cleanup: () => void;
let path: string;

beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  path = join(dir, "ledger.db");
});
afterEach(() => cleanup());

/** Asserts no secret value is in the db, -wal or -shm bytes, and that the scan does see ordinary content. */
function expectNoPlaintext(): void {
  const raw = rawDatabaseBytes(path);
  expect(raw.includes(VISIBLE)).toBe(true);
  for (const leak of LEAKS) expect({ leak, found: raw.includes(leak) }).toEqual({ leak, found: false });
}

describe("plain manifests", () => {
  test("are stored once, content-addressed by digestOf, and read back", async () => {
    const ledger = await Ledger.open(path);
    try {
      const cm = configMap("cfg", VISIBLE);
      const first = await ledger.putManifests([cm]);
      expect([...first]).toEqual([["default_cfg__ConfigMap", digestOf(cm)]]);
      // Same content with another key order: same digest, no second row.
      const reordered: KubeObject = {
        data: { value: VISIBLE },
        metadata: { namespace: "default", name: "cfg" },
        kind: "ConfigMap",
        apiVersion: "v1",
      };
      expect((await ledger.putManifests([reordered])).get("default_cfg__ConfigMap")).toBe(digestOf(cm));
      expect(await withRawDb(path, (db) => db.get("SELECT count(*) AS n FROM blobs"))).toEqual({ n: 1 });
      expect(await ledger.getManifest(digestOf(cm))).toEqual(cm);
      expect(ledger.blobInfo(digestOf(cm))).toEqual({ encoding: "plain" });
      expect(await ledger.getManifest("sha256:0000")).toBeUndefined();
      expect(ledger.blobInfo("sha256:0000")).toBeUndefined();
    } finally {
      ledger.close();
    }
  });
});

/** HMAC-SHA-256 of a value under the digest key beside the ledger, as the ledger writes it. */
function macUnder(keyFile: string, value: string): string {
  const key = Buffer.from(readFileSync(keyFile, "utf8").trim(), "hex");
  return `hmac-sha256:${createHmac("sha256", key).update(value).digest("hex")}`;
}

/** What a guesser would look for: the unsalted SHA-256 of each value, as hex and as base64. */
const GUESSABLE = [PASSWORD, TOKEN, TOKEN_B64].flatMap((v) => [
  sha256Hex(v),
  createHash("sha256").update(v).digest("base64"),
]);

function expectNothingGuessable(file: string): void {
  const raw = rawDatabaseBytes(file);
  expect(raw.includes(VISIBLE)).toBe(true);
  for (const leak of [...LEAKS, ...GUESSABLE])
    expect({ leak, found: raw.includes(leak) }).toEqual({ leak, found: false });
}

describe("Secrets without a key", () => {
  test("are stored redacted by HMAC under a 0600 key file beside the ledger; nothing guessable reaches the file", async () => {
    const ledger = await Ledger.open(path);
    const keyFile = digestKeyPathOf(path);
    try {
      expect(existsSync(keyFile)).toBe(false); // made on first use, not by opening
      const digests = await ledger.putManifests([secret(), configMap("cfg", VISIBLE)]);
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      const digest = digests.get("prod_creds__Secret") ?? "";
      const stored = await ledger.getManifest(digest);
      expect(stored?.data).toEqual({ token: macUnder(keyFile, TOKEN_B64) });
      expect(stored?.stringData).toEqual({ password: macUnder(keyFile, PASSWORD) });
      expect(stored?.metadata.annotations?.["kubectl.kubernetes.io/last-applied-configuration"]).toMatch(
        /^hmac-sha256:[0-9a-f]{64}$/,
      );
      expect(stored?.metadata.name).toBe("creds");
      expect(stored?.type).toBe("Opaque");
      // The digest is over the redacted form, not over the data.
      expect(digest).toBe(digestOf(stored));
      expect(digest).not.toBe(digestOf(secret()));
      expect(ledger.blobInfo(digest)).toEqual({ encoding: "redacted" });
      expectNothingGuessable(path);
      // The export is the database alone: no key travels with it, and it holds nothing guessable either.
      const exported = join(dir, "export.db");
      await ledger.backup(exported);
      expectNothingGuessable(exported);
      expect(existsSync(digestKeyPathOf(exported))).toBe(false);
      expect(ledger.verify().ok).toBe(true);
    } finally {
      ledger.close();
    }
    // Also after the WAL is checkpointed into the main file.
    await withRawDb(path, (db) => db.get("PRAGMA wal_checkpoint(TRUNCATE)"));
    expectNothingGuessable(path);
  });

  test("an unchanged value keeps its digest across restarts; a changed value changes it", async () => {
    const first = await Ledger.open(path);
    const before = (await first.putManifests([secret()])).get("prod_creds__Secret");
    first.close();
    const again = await Ledger.open(path);
    try {
      expect((await again.putManifests([secret()])).get("prod_creds__Secret")).toBe(before);
      const changed = secret();
      changed.stringData = { password: `${PASSWORD}-rotated` };
      const after = (await again.putManifests([changed])).get("prod_creds__Secret");
      expect(after).toMatch(/^sha256:/);
      expect(after).not.toBe(before);
    } finally {
      again.close();
    }
    // Another ledger (another key) digests the same value differently: the digest says nothing by itself.
    const other = await Ledger.open(join(dir, "other.db"));
    try {
      expect((await other.putManifests([secret()])).get("prod_creds__Secret")).not.toBe(before);
    } finally {
      other.close();
    }
  });

  test("a damaged key file is an error naming it; nothing is stored", async () => {
    writeFileSync(digestKeyPathOf(path), "not a key\n", { mode: 0o600 });
    const ledger = await Ledger.open(path);
    try {
      await expect(ledger.putManifests([secret()])).rejects.toThrow(
        `${digestKeyPathOf(path)}: the Secret digest key must be 64 hex digits`,
      );
      expect(await withRawDb(path, (db) => db.get("SELECT count(*) AS n FROM blobs"))).toEqual({ n: 0 });
    } finally {
      ledger.close();
    }
  });

  test("a ledger with Secrets redacted the old way (unsalted sha256:) still verifies and reads", async () => {
    const old: KubeObject = { ...secret(), data: { token: `sha256:${sha256Hex(TOKEN_B64)}` } };
    delete old.stringData;
    delete old.metadata.annotations;
    const content = new TextEncoder().encode(canonicalJson(old));
    const ledger = await Ledger.open(path);
    try {
      await withRawDb(path, (db) =>
        db.run(
          "INSERT INTO blobs (digest, encoding, content, content_hash, key_id, iv, created_at) VALUES (?, 'redacted', ?, ?, NULL, NULL, ?)",
          [digestOf(old), content, sha256Hex(content), new Date().toISOString()],
        ),
      );
      expect(ledger.verify()).toMatchObject({ ok: true, blobs: 1 });
      expect(await ledger.getManifest(digestOf(old))).toEqual(old);
      // New writes use the keyed form beside it.
      await ledger.putManifests([secret()]);
      expect(ledger.verify()).toMatchObject({ ok: true, blobs: 2 });
    } finally {
      ledger.close();
    }
  });
});

describe("Secrets with a key", () => {
  test("are encrypted whole and decrypt back; digest is a keyed HMAC; no plaintext in the file", async () => {
    const key = keyOf(1);
    const ledger = await Ledger.open(path, { secretKey: key });
    let digest = "";
    try {
      const digests = await ledger.putManifests([secret(), configMap("cfg", VISIBLE)]);
      digest = digests.get("prod_creds__Secret") ?? "";
      expect(digest).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
      expect(ledger.blobInfo(digest)).toEqual({ encoding: "aes-256-gcm", keyId: keyIdOf(key) });
      expect(keyIdOf(key)).toBe(sha256Hex(key).slice(0, 16));
      expect(await ledger.getManifest(digest)).toEqual(secret());
      // Idempotent: same object, same key, same digest, one row.
      expect((await ledger.putManifests([secret()])).get("prod_creds__Secret")).toBe(digest);
      expect(await withRawDb(path, (db) => db.get("SELECT count(*) AS n FROM blobs"))).toEqual({ n: 2 });
      expectNoPlaintext();
    } finally {
      ledger.close();
    }
    // Another key gives another digest: the digest depends on the key, not only on the data.
    const other = await Ledger.open(path, { secretKey: keyOf(2) });
    try {
      expect((await other.putManifests([secret()])).get("prod_creds__Secret")).not.toBe(digest);
    } finally {
      other.close();
    }
  });

  test("reading with a wrong key, without a key, or after tampering fails with a clear error", async () => {
    const ledger = await Ledger.open(path, { secretKey: keyOf(1) });
    const digest = (await ledger.putManifests([secret()])).get("prod_creds__Secret") ?? "";
    ledger.close();

    const wrong = await Ledger.open(path, { secretKey: keyOf(2) });
    try {
      const err = await wrong.getManifest(digest).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BerthError);
      expect((err as Error).message).toBe(
        `ledger ${path}: manifest ${digest} is encrypted with key ${keyIdOf(keyOf(1))}, but the ledger was opened with key ${keyIdOf(keyOf(2))}`,
      );
    } finally {
      wrong.close();
    }

    const none = await Ledger.open(path);
    try {
      await expect(none.getManifest(digest)).rejects.toThrow("opened without a secret key");
    } finally {
      none.close();
    }

    // Flip one ciphertext byte: GCM authentication must refuse it.
    await withRawDb(path, (db) => {
      const row = db.get<{ content: Uint8Array }>("SELECT content FROM blobs WHERE digest = ?", [digest]);
      const bytes = new Uint8Array(row?.content ?? []);
      bytes[0] = (bytes[0] ?? 0) ^ 1;
      db.run("UPDATE blobs SET content = ? WHERE digest = ?", [bytes, digest]);
    });
    const right = await Ledger.open(path, { secretKey: keyOf(1) });
    try {
      await expect(right.getManifest(digest)).rejects.toThrow(
        "cannot be decrypted: wrong key or altered ciphertext",
      );
    } finally {
      right.close();
    }
  });

  test("a key of the wrong length is refused at open", async () => {
    await expect(Ledger.open(path, { secretKey: new Uint8Array(16) })).rejects.toThrow(
      `ledger ${path}: the secret key must be 32 bytes, got 16`,
    );
  });
});
