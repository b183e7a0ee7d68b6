import { describe, expect, test } from "bun:test";
import { createHmac } from "node:crypto";
import {
  deriveKeys,
  isSecret,
  keyedDigestOf,
  keyIdOf,
  redactSecret,
  seal,
  unseal,
} from "../../agent/ledger/secrets.ts";
import { sha256Hex } from "../../agent/object/canonical.ts";
import type { KubeObject } from "../../agent/object/object.ts";

const SECRET: KubeObject = {
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "s", namespace: "ns", labels: { a: "b" } },
  data: { one: "MQ==" },
  stringData: { two: "2", nested: { not: "a string" } as unknown as string },
};

describe("isSecret", () => {
  test("only core v1 Secrets", () => {
    expect(isSecret(SECRET)).toBe(true);
    expect(isSecret({ ...SECRET, apiVersion: "example.com/v1" })).toBe(false);
    expect(isSecret({ ...SECRET, kind: "ConfigMap" })).toBe(false);
  });
});

describe("redactSecret", () => {
  const digestKey = () =>
    globalThis.crypto.subtle.importKey(
      "raw",
      new Uint8Array(32).fill(7),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
  const mac = (value: string) =>
    `hmac-sha256:${createHmac("sha256", new Uint8Array(32).fill(7)).update(value).digest("hex")}`;

  test("replaces every data and stringData value by its HMAC under the digest key and leaves the input untouched", async () => {
    const before = structuredClone(SECRET);
    const out = await redactSecret(SECRET, await digestKey());
    expect(SECRET).toEqual(before);
    expect(out.data).toEqual({ one: mac("MQ==") });
    expect(out.stringData).toEqual({ two: mac("2"), nested: mac('{"not":"a string"}') });
    expect(JSON.stringify(out)).not.toContain(sha256Hex("2"));
    expect(out.metadata).toEqual(SECRET.metadata);
  });

  test("a Secret without data is returned as is", async () => {
    const bare: KubeObject = { apiVersion: "v1", kind: "Secret", metadata: { name: "x" }, type: "Opaque" };
    expect(await redactSecret(bare, await digestKey())).toEqual(bare);
  });
});

describe("keys and sealing", () => {
  test("key id is the first 16 hex digits of sha256(key); only 32-byte keys are accepted", async () => {
    const key = new Uint8Array(32).fill(9);
    expect(keyIdOf(key)).toBe(sha256Hex(key).slice(0, 16));
    expect((await deriveKeys(key)).id).toBe(keyIdOf(key));
    await expect(deriveKeys(new Uint8Array(31))).rejects.toThrow("must be 32 bytes, got 31");
  });

  test("seal/unseal round-trips; the digest is bound, so another digest or key cannot open it", async () => {
    const keys = await deriveKeys(new Uint8Array(32).fill(1));
    const digest = await keyedDigestOf(keys, SECRET);
    expect(digest).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
    expect(await keyedDigestOf(keys, SECRET)).toBe(digest);
    const sealed = await seal(keys, SECRET, digest);
    expect(sealed.iv).toHaveLength(12);
    expect(await unseal(keys, sealed, digest)).toEqual(SECRET);
    await expect(unseal(keys, sealed, "hmac-sha256:other")).rejects.toThrow();
    const otherKeys = await deriveKeys(new Uint8Array(32).fill(2));
    await expect(unseal(otherKeys, sealed, digest)).rejects.toThrow();
    expect(await keyedDigestOf(otherKeys, SECRET)).not.toBe(digest);
    // A fresh IV each time: equal plaintexts do not give equal ciphertexts.
    expect((await seal(keys, SECRET, digest)).ciphertext).not.toEqual(sealed.ciphertext);
  });
});
