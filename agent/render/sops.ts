/**
 * SOPS decryption of YAML/JSON files with age keys, in-process (the only importer of `age-encryption`):
 * the data key from the file's age stanzas, every `ENC[AES256_GCM,…]` value with its key path as additional
 * data, then the MAC (SHA-512 over the values in document order) checked, so a tampered file is refused.
 * Files whose data key is only under PGP/KMS/Vault go to the `sops` binary when present.
 */
import { createHash } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parse } from "yaml";
import { BerthError, messageOf } from "../object/errors.ts";
import { findTool, privateTempDir, runTool, type ToolSettings } from "./tools.ts";

/** The keys render may decrypt with. Never logged. */
export interface SopsKeys {
  /** `AGE-SECRET-KEY-1…` identities. */
  ageIdentities: string[];
  /** For PGP/KMS-only files: where the `sops` binary is. */
  tools?: ToolSettings;
}

type Tree = Record<string, unknown>;

interface SopsMetadata {
  mac?: unknown;
  lastmodified?: unknown;
  age?: Array<{ recipient?: unknown; enc?: unknown }>;
  unencrypted_suffix?: string;
  encrypted_suffix?: string;
  unencrypted_regex?: string;
  encrypted_regex?: string;
  mac_only_encrypted?: boolean;
  [key: string]: unknown;
}

/** Cheap test on a file's text before parsing it: SOPS files carry a `sops` mapping with a `mac`. */
export function mayBeSops(text: string): boolean {
  return text.includes("sops") && text.includes("mac") && text.includes("ENC[");
}

/** The SOPS metadata of a parsed document, or undefined if it is not SOPS-encrypted. */
export function sopsMetadataOf(data: unknown): SopsMetadata | undefined {
  if (data === null || typeof data !== "object" || Array.isArray(data)) return undefined;
  const meta = (data as Tree).sops;
  if (meta === null || typeof meta !== "object" || Array.isArray(meta)) return undefined;
  return typeof (meta as SopsMetadata).mac === "string" ? (meta as SopsMetadata) : undefined;
}

/**
 * A file's bytes, decrypted if it is a SOPS YAML/JSON file (then rendered as JSON, which is also YAML);
 * other files come back unchanged. Errors name the file, never a value.
 */
export async function decryptSopsFile(path: string, bytes: Uint8Array, keys: SopsKeys): Promise<Uint8Array> {
  if (!/\.(ya?ml|json)$/i.test(path)) return bytes;
  const text = new TextDecoder().decode(bytes);
  if (!mayBeSops(text)) return bytes;
  let data: unknown;
  try {
    data = /\.json$/i.test(path) ? JSON.parse(text) : parse(text, { maxAliasCount: 100 });
  } catch {
    return bytes; // several documents, or not parseable: the manifest parser reports it
  }
  const meta = sopsMetadataOf(data);
  if (!meta) return bytes;
  const plain = await decryptSopsTree(data as Tree, meta, keys, path);
  return new TextEncoder().encode(`${JSON.stringify(plain, null, 2)}\n`);
}

/** Decrypts a parsed SOPS document (the `sops` key removed); `subject` names it in errors. */
export async function decryptSopsTree(
  data: Tree,
  meta: SopsMetadata,
  keys: SopsKeys,
  subject: string,
): Promise<Tree> {
  const dataKey = await ageDataKey(meta, keys.ageIdentities, subject);
  if (!dataKey) return decryptWithBinary(data, meta, keys, subject);
  const key = await crypto.subtle.importKey("raw", new Uint8Array(dataKey), "AES-GCM", false, ["decrypt"]);
  const rules = encryptionRules(meta, subject);
  const hash = createHash("sha512");
  const onlyEncrypted = meta.mac_only_encrypted === true;

  const leaf = async (value: unknown, path: string[]): Promise<unknown> => {
    const encrypted = rules(path);
    let out = value;
    if (encrypted) {
      if (typeof value !== "string") {
        throw new BerthError(`value at ${path.join(".")} should be encrypted but is not`, {
          subject,
          reason: "BuildFailed",
        });
      }
      out = value === "" ? "" : await decryptValue(value, key, `${path.join(":")}:`, subject, path);
    }
    if (encrypted || !onlyEncrypted) hash.update(bytesForMac(out));
    return out;
  };
  const walk = async (value: unknown, path: string[]): Promise<unknown> => {
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      // sops gives list items their parent's path: no index.
      for (const item of value) out.push(await walk(item, path));
      return out;
    }
    if (value !== null && typeof value === "object") {
      const out: Tree = {};
      for (const [k, v] of Object.entries(value as Tree)) out[k] = await walk(v, [...path, k]);
      return out;
    }
    return leaf(value, path);
  };
  const plain: Tree = {};
  for (const [k, v] of Object.entries(data)) {
    if (k === "sops") continue;
    plain[k] = await walk(v, [k]);
  }
  const computed = hash.digest("hex").toUpperCase();
  const lastModified = String(meta.lastmodified ?? "");
  let stored: unknown;
  try {
    stored = await decryptValue(String(meta.mac), key, lastModified, subject, ["sops", "mac"]);
  } catch {
    throw new BerthError(
      "SOPS MAC cannot be verified: the file or its metadata was changed after encryption",
      {
        subject,
        reason: "BuildFailed",
      },
    );
  }
  if (stored !== computed) {
    throw new BerthError("SOPS MAC mismatch: the file was changed after it was encrypted", {
      subject,
      reason: "BuildFailed",
    });
  }
  return plain;
}

/** The data key from the age stanzas this agent has an identity for; undefined if none matches. */
async function ageDataKey(
  meta: SopsMetadata,
  identities: readonly string[],
  subject: string,
): Promise<Uint8Array | undefined> {
  const stanzas = Array.isArray(meta.age) ? meta.age : [];
  if (stanzas.length === 0 || identities.length === 0) return undefined;
  // Loaded on the first SOPS file: an agent without any keeps ~10 MB less resident (scripts/bench/README.md).
  const { armor, Decrypter } = await import("age-encryption");
  const decrypter = new Decrypter();
  for (const identity of identities) {
    try {
      decrypter.addIdentity(identity);
    } catch {
      // Never echo the key.
      throw new BerthError("an age identity is malformed (expected AGE-SECRET-KEY-1…)", {
        subject: "age key",
      });
    }
  }
  for (const stanza of stanzas) {
    if (typeof stanza.enc !== "string") continue;
    try {
      const key = await decrypter.decrypt(armor.decode(stanza.enc));
      if (key.length === 32) return key;
    } catch {
      // Not one of ours; try the next recipient.
    }
  }
  const others = ["pgp", "kms", "gcp_kms", "azure_kv", "hc_vault"].some(
    (k) => Array.isArray(meta[k]) && (meta[k] as unknown[]).length > 0,
  );
  if (!others) {
    const recipients = stanzas.map((s) => String(s.recipient ?? "?")).join(", ");
    throw new BerthError(
      `none of the configured age keys can decrypt this file (recipients: ${recipients})`,
      {
        subject,
        reason: "BuildFailed",
      },
    );
  }
  return undefined;
}

/** PGP/KMS/Vault files: `sops --decrypt` on a private copy, when the binary is installed. */
async function decryptWithBinary(
  data: Tree,
  meta: SopsMetadata,
  keys: SopsKeys,
  subject: string,
): Promise<Tree> {
  const binary = findTool("sops", keys.tools ?? {});
  const kinds = ["age", "pgp", "kms", "gcp_kms", "azure_kv", "hc_vault"].filter(
    (k) => Array.isArray(meta[k]) && (meta[k] as unknown[]).length > 0,
  );
  if (!binary) {
    throw new BerthError(
      `encrypted for ${kinds.join(", ") || "no key"}, and no configured age key matches; install sops (github.com/getsops/sops/v3) for PGP/KMS keys`,
      { subject, reason: "BuildFailed" },
    );
  }
  const tmp = await privateTempDir("sops");
  try {
    const file = join(tmp.dir, "in.json");
    await writeFile(file, JSON.stringify(data), { mode: 0o600 });
    // The key services' own settings pass through (GnuPG home, cloud credentials); nothing else does.
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && /^(GNUPGHOME|GPG_|AWS_|GOOGLE_|AZURE_|VAULT_|SOPS_)/.test(k)) env[k] = v;
    }
    env.HOME = process.env.HOME ?? tmp.dir;
    const out = await runTool(binary, ["--decrypt", "--input-type", "json", "--output-type", "json", file], {
      cwd: tmp.dir,
      env,
      label: `sops --decrypt ${subject}`,
      ...(keys.tools ? { settings: keys.tools } : {}),
    });
    return JSON.parse(out.stdout) as Tree;
  } finally {
    await tmp.dispose();
  }
}

/** Which key paths hold encrypted values, by the file's suffix and regex settings (as sops decides). */
function encryptionRules(meta: SopsMetadata, subject: string): (path: string[]) => boolean {
  const regex = (source: string | undefined, field: string): RegExp | undefined => {
    if (source === undefined || source === "") return undefined;
    try {
      return new RegExp(source);
    } catch (err) {
      throw new BerthError(`sops.${field} is not a valid regular expression: ${messageOf(err)}`, {
        subject,
        reason: "BuildFailed",
      });
    }
  };
  const unencryptedRegex = regex(meta.unencrypted_regex, "unencrypted_regex");
  const encryptedRegex = regex(meta.encrypted_regex, "encrypted_regex");
  const unSuffix = meta.unencrypted_suffix;
  const enSuffix = meta.encrypted_suffix;
  return (path) => {
    let encrypted = true;
    if (unSuffix) if (path.some((p) => p.endsWith(unSuffix))) encrypted = false;
    if (enSuffix) encrypted = path.some((p) => p.endsWith(enSuffix));
    if (unencryptedRegex) if (path.some((p) => unencryptedRegex.test(p))) encrypted = false;
    if (encryptedRegex) encrypted = path.some((p) => encryptedRegex.test(p));
    return encrypted;
  };
}

const ENC =
  /^ENC\[AES256_GCM,data:([A-Za-z0-9+/=]*),iv:([A-Za-z0-9+/=]+),tag:([A-Za-z0-9+/=]+),type:(str|int|float|bool|bytes|comment)\]$/;

/** One `ENC[…]` value, decrypted and typed; the path (not the value) names it in errors. */
async function decryptValue(
  value: string,
  key: CryptoKey,
  aad: string,
  subject: string,
  path: string[],
): Promise<unknown> {
  const m = ENC.exec(value);
  if (!m)
    throw new BerthError(`value at ${path.join(".")} is not a SOPS ENC[AES256_GCM,…] value`, {
      subject,
      reason: "BuildFailed",
    });
  const [, data, iv, tag, type] = m as unknown as [string, string, string, string, string];
  const sealed = Buffer.concat([Buffer.from(data, "base64"), Buffer.from(tag, "base64")]);
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: Buffer.from(iv, "base64"),
        additionalData: Buffer.from(aad, "utf8"),
        tagLength: 128,
      },
      key,
      sealed,
    );
  } catch {
    throw new BerthError(
      `value at ${path.join(".")} does not decrypt (wrong key, or the value or its key path was changed)`,
      {
        subject,
        reason: "BuildFailed",
      },
    );
  }
  const text = Buffer.from(plain).toString("utf8");
  switch (type) {
    case "int":
      return Number.parseInt(text, 10);
    case "float":
      return Number.parseFloat(text);
    case "bool":
      return text.toLowerCase() === "true";
    default:
      return text;
  }
}

/** What sops hashes for a value: Go's formatting of strings, numbers and booleans ("True"/"False"). */
function bytesForMac(value: unknown): Uint8Array {
  if (typeof value === "boolean") return Buffer.from(value ? "True" : "False");
  if (value === null || value === undefined) return new Uint8Array();
  return Buffer.from(String(value), "utf8");
}

/** A new age X25519 identity and its recipient (for `berth` key set-up and tests). */
export async function newAgeIdentity(): Promise<{ identity: string; recipient: string }> {
  const { generateX25519Identity, identityToRecipient } = await import("age-encryption");
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}
