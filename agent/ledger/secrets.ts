/**
 * Keeps Secret data out of the ledger in plaintext: with a key, a Secret manifest is encrypted whole
 * (AES-256-GCM, WebCrypto) and addressed by a keyed HMAC; without one, its values are replaced by hashes.
 */
import { canonicalJson, sha256Hex } from "../object/canonical.ts";
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

/** A copy of a Secret whose data, stringData and last-applied annotation values read `sha256:<hex of value>`. */
export function redactSecret(obj: KubeObject): KubeObject {
  const copy = structuredClone(obj);
  for (const field of ["data", "stringData"]) {
    const values = copy[field];
    if (values === null || typeof values !== "object") continue;
    const redacted: Record<string, string> = {};
    for (const [k, v] of Object.entries(values)) redacted[k] = hashValue(v);
    copy[field] = redacted;
  }
  const annotations = copy.metadata.annotations;
  const lastApplied = annotations?.[LAST_APPLIED];
  if (annotations && lastApplied !== undefined) annotations[LAST_APPLIED] = hashValue(lastApplied);
  return copy;
}

function hashValue(value: unknown): string {
  return `sha256:${sha256Hex(typeof value === "string" ? value : canonicalJson(value))}`;
}

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}
