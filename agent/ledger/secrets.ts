/**
 * Keeps Secret data out of the ledger in plaintext: with a key, a Secret manifest is encrypted whole
 * (AES-256-GCM, WebCrypto) and addressed by a keyed HMAC; without one, its values are replaced by HMACs under
 * a digest key kept in a file beside the ledger (not in it).
 */
import { existsSync, linkSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { canonicalJson, sha256Hex } from "../object/canonical.ts";
import { BerthError, messageOf } from "../object/errors.ts";
import type { KubeObject } from "../object/object.ts";

/** Bytes of the secret key the ledger takes: exactly an AES-256 key. */
export const SECRET_KEY_BYTES = 32;
/** Annotation kubectl fills with the whole previous manifest, Secret data included. */
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/** Keys derived from the user's secret key, one per purpose so the AES key never doubles as the HMAC key. */
export interface SecretKeys {
  /** First 16 hex digits of sha256(secret key): names the key without revealing it. */
  id: string;
  aes: CryptoKey;
  hmac: CryptoKey;
}

/** Ciphertext of one manifest. */
export interface Sealed {
  iv: Uint8Array;
  ciphertext: Uint8Array;
}

const utf8 = new TextEncoder();
// Taken from the function type: the DOM lib (where these types live) is not in this project's tsconfig.
type DeriveParams = Parameters<typeof globalThis.crypto.subtle.deriveKey>;

/** Whether an object is a core Secret, whose data must never be stored in plaintext. */
export function isSecret(obj: KubeObject): boolean {
  return obj.apiVersion === "v1" && obj.kind === "Secret";
}

/** The key id of a secret key. */
export function keyIdOf(secretKey: Uint8Array): string {
  return sha256Hex(secretKey).slice(0, 16);
}

/** Derives the AES and HMAC keys (HKDF-SHA-256) from a 32-byte secret key. */
export async function deriveKeys(secretKey: Uint8Array): Promise<SecretKeys> {
  if (secretKey.length !== SECRET_KEY_BYTES) {
    throw new Error(`the secret key must be ${SECRET_KEY_BYTES} bytes, got ${secretKey.length}`);
  }
  const subtle = globalThis.crypto.subtle;
  const base = await subtle.importKey("raw", secretKey, "HKDF", false, ["deriveKey"]);
  const derive = (info: string, algorithm: DeriveParams[2], usages: DeriveParams[4]) =>
    subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: utf8.encode(info) },
      base,
      algorithm,
      false,
      usages,
    );
  return {
    id: keyIdOf(secretKey),
    aes: await derive("berth ledger manifest encryption", { name: "AES-GCM", length: 256 }, [
      "encrypt",
      "decrypt",
    ]),
    hmac: await derive("berth ledger manifest digest", { name: "HMAC", hash: "SHA-256", length: 256 }, [
      "sign",
    ]),
  };
}

/** `hmac-sha256:<hex>` of an object's canonical JSON: a digest a dictionary attack cannot invert without the key. */
export async function keyedDigestOf(keys: SecretKeys, obj: KubeObject): Promise<string> {
  const mac = await globalThis.crypto.subtle.sign("HMAC", keys.hmac, utf8.encode(canonicalJson(obj)));
  return `hmac-sha256:${hex(new Uint8Array(mac))}`;
}

/** Encrypts an object's canonical JSON; the digest is bound as associated data so rows cannot be swapped. */
export async function seal(keys: SecretKeys, obj: KubeObject, digest: string): Promise<Sealed> {
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
  const ciphertext = await globalThis.crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: utf8.encode(digest) },
    keys.aes,
    utf8.encode(canonicalJson(obj)),
  );
  return { iv, ciphertext: new Uint8Array(ciphertext) };
}

/** Decrypts what `seal` wrote; rejects on a wrong key or altered bytes (GCM authenticates both). */
export async function unseal(keys: SecretKeys, sealed: Sealed, digest: string): Promise<KubeObject> {
  const plain = await globalThis.crypto.subtle.decrypt(
    { name: "AES-GCM", iv: sealed.iv, additionalData: utf8.encode(digest) },
    keys.aes,
    sealed.ciphertext,
  );
  return JSON.parse(new TextDecoder().decode(plain)) as KubeObject;
}

/** Prefix of a redacted Secret value: the HMAC-SHA-256 of the value under the ledger's digest key. */
export const REDACTED_PREFIX = "hmac-sha256:";
/** Prefix of values redacted by earlier versions (an unsalted SHA-256); such rows stay as they are. */
export const LEGACY_REDACTED_PREFIX = "sha256:";

/**
 * A copy of a Secret whose data, stringData and last-applied annotation values read `hmac-sha256:<hex>`, keyed
 * by the digest key: equal values still give equal digests (so a change is recorded), but without the key a
 * ledger or its backup gives no way to test a guessed value.
 */
export async function redactSecret(obj: KubeObject, digestKey: CryptoKey): Promise<KubeObject> {
  const copy = structuredClone(obj);
  for (const field of ["data", "stringData"]) {
    const values = copy[field];
    if (values === null || typeof values !== "object") continue;
    const redacted: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) redacted[k] = await macValue(digestKey, v);
    copy[field] = redacted;
  }
  const annotations = copy.metadata.annotations;
  const lastApplied = annotations?.[LAST_APPLIED];
  if (annotations && lastApplied !== undefined)
    annotations[LAST_APPLIED] = await macValue(digestKey, lastApplied);
  return copy;
}

async function macValue(key: CryptoKey, value: unknown): Promise<string> {
  const text = typeof value === "string" ? value : canonicalJson(value);
  const mac = await globalThis.crypto.subtle.sign("HMAC", key, utf8.encode(text));
  return `${REDACTED_PREFIX}${hex(new Uint8Array(mac))}`;
}

/**
 * The `berth.dev/applied-digest` of a Secret: `hmac-sha256:<hex>` of its canonical JSON under the digest key (a
 * label first, so it is never the same MAC as a redacted value's). A plain digest on the object would let anyone
 * who reads Secrets' metadata test guesses of the values; this one is only berth's to compute, and lets the plan
 * know an untouched Secret from the watch view, without a dry-run and a GET on every resync.
 */
export async function appliedSecretDigest(key: CryptoKey, obj: KubeObject): Promise<string> {
  const mac = await globalThis.crypto.subtle.sign(
    "HMAC",
    key,
    utf8.encode(`berth.dev/applied-digest\n${canonicalJson(obj)}`),
  );
  return `${REDACTED_PREFIX}${hex(new Uint8Array(mac))}`;
}

/** Where the digest key of a ledger file lives: beside it, never inside it (so not in `ledger export`). */
export function digestKeyPathOf(ledgerPath: string): string {
  return `${ledgerPath}.digest-key`;
}

/**
 * The key that redacted Secret values are digested with when the ledger has no secret key: 32 random bytes
 * (64 hex digits) in a 0600 file beside the ledger, made on first use. Losing it only means later digests of
 * the same values differ once; nothing can be restored from a redacted Secret anyway.
 */
export class DigestKeyFile {
  private key: Promise<CryptoKey> | undefined;
  constructor(readonly path: string | undefined) {}

  /** The key, read from the file or created there (atomically: concurrent openers agree on one key). */
  get(): Promise<CryptoKey> {
    this.key ??= this.load().catch((err) => {
      this.key = undefined;
      throw err;
    });
    return this.key;
  }

  private async load(): Promise<CryptoKey> {
    const raw = this.path === undefined ? randomKey() : readOrCreateKey(this.path);
    return globalThis.crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  }
}

function randomKey(): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(SECRET_KEY_BYTES));
}

function readOrCreateKey(path: string): Uint8Array {
  if (!existsSync(path)) {
    // Written whole to a private temporary file, then linked into place: a reader never sees half a key, and
    // of two agents starting at once the first link wins and the other reads it.
    const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
    try {
      writeFileSync(tmp, `${Buffer.from(randomKey()).toString("hex")}\n`, { mode: 0o600, flag: "wx" });
      try {
        linkSync(tmp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
    } catch (cause) {
      throw new BerthError(`cannot create the Secret digest key: ${messageOf(cause)}`, {
        subject: path,
        cause,
      });
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch (cause) {
    throw new BerthError(`cannot read the Secret digest key: ${messageOf(cause)}`, { subject: path, cause });
  }
  if (!/^[0-9a-f]{64}$/.test(text))
    throw new BerthError("the Secret digest key must be 64 hex digits (delete the file to make a new one)", {
      subject: path,
    });
  return Uint8Array.from(Buffer.from(text, "hex"));
}

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}
