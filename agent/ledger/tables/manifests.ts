/**
 * The blobs table: applied manifests stored content-addressed, Secrets sealed with the ledger key or
 * redacted under the digest key; never a Secret value in plaintext.
 */
import { canonicalJson, digestOf, sha256Hex } from "../../object/canonical.ts";
import { BerthError } from "../../object/errors.ts";
import { type KubeObject, objectId, refOf } from "../../object/object.ts";
import {
  type DigestKeyFile,
  isSecret,
  keyedDigestOf,
  redactSecret,
  type SecretKeys,
  seal,
  unseal,
} from "../secrets.ts";
import type { LedgerAccess } from "./access.ts";

/** How a stored manifest is kept. */
export type BlobEncoding = "plain" | "redacted" | "aes-256-gcm";

interface BlobRow {
  digest: string;
  encoding: BlobEncoding;
  content: Uint8Array;
  key_id: string | null;
  iv: Uint8Array | null;
}

/** A blob ready to insert. */
interface NewBlob {
  digest: string;
  encoding: BlobEncoding;
  content: Uint8Array;
  /** sha256 hex of content, when already known. */
  contentHash?: string;
  keyId: string | null;
  iv: Uint8Array | null;
}

/** Applied manifests by digest. */
export class ManifestsTable {
  constructor(
    private readonly access: LedgerAccess,
    private readonly keys: SecretKeys | undefined,
    /** Without a secret key: the key redacted Secret values are digested with (a file beside the ledger). */
    private readonly digestKey: DigestKeyFile,
  ) {}

  private get db() {
    return this.access.db;
  }

  /** Stores manifests content-addressed (idempotent) and returns object id → digest. Secrets are sealed or redacted. */
  async put(objects: KubeObject[]): Promise<Map<string, string>> {
    const digests = new Map<string, string>();
    const blobs: NewBlob[] = [];
    // Crypto is async, SQLite transactions here are sync: prepare every blob first, then write them at once.
    for (const obj of objects) {
      const blob = await this.blobOf(obj);
      digests.set(objectId(refOf(obj)), blob.digest);
      blobs.push(blob);
    }
    const createdAt = this.access.now().toISOString();
    this.access.write("cannot store manifests", () =>
      this.db.transaction(() => {
        for (const b of blobs) {
          this.db.run(
            "INSERT OR IGNORE INTO blobs (digest, encoding, content, content_hash, key_id, iv, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
              b.digest,
              b.encoding,
              b.content,
              b.contentHash ?? sha256Hex(b.content),
              b.keyId,
              b.iv,
              createdAt,
            ],
          );
        }
      }),
    );
    return digests;
  }

  /** A stored manifest by digest, decrypted when sealed; undefined if unknown. Redacted Secrets come back redacted. */
  async get(digest: string): Promise<KubeObject | undefined> {
    const row = this.access.guard("cannot read a manifest", () =>
      this.db.get<BlobRow>("SELECT digest, encoding, content, key_id, iv FROM blobs WHERE digest = ?", [
        digest,
      ]),
    );
    if (!row) return undefined;
    if (row.encoding !== "aes-256-gcm")
      return JSON.parse(new TextDecoder().decode(row.content)) as KubeObject;
    const what = `manifest ${digest} is encrypted with key ${row.key_id}`;
    if (!this.keys)
      throw new BerthError(`${what}, but the ledger was opened without a secret key`, this.access.err());
    if (this.keys.id !== row.key_id) {
      throw new BerthError(`${what}, but the ledger was opened with key ${this.keys.id}`, this.access.err());
    }
    try {
      return await unseal(this.keys, { iv: row.iv ?? new Uint8Array(0), ciphertext: row.content }, digest);
    } catch (cause) {
      throw new BerthError(
        `${what} and cannot be decrypted: wrong key or altered ciphertext`,
        this.access.err(cause),
      );
    }
  }

  /**
   * Stored manifests exactly as they were stored, in the order asked, or undefined when any one is unknown,
   * redacted, sealed with another (or no) key, not decryptable, or (plain) content whose sha256 is not its digest.
   */
  async exactly(digests: readonly string[]): Promise<KubeObject[] | undefined> {
    const rows = new Map<string, BlobRow>();
    this.access.guard("cannot read manifests", () => {
      for (let i = 0; i < digests.length; i += 500) {
        const part = digests.slice(i, i + 500);
        for (const row of this.db.all<BlobRow>(
          `SELECT digest, encoding, content, key_id, iv FROM blobs WHERE digest IN (${part.map(() => "?").join(",")})`,
          part,
        ))
          rows.set(row.digest, row);
      }
    });
    const decoder = new TextDecoder();
    const out: KubeObject[] = [];
    for (const digest of digests) {
      const row = rows.get(digest);
      if (!row) return undefined;
      if (row.encoding === "plain") {
        // Plain blobs are their canonical JSON, addressed by its sha256: a changed byte changes the digest.
        if (`sha256:${sha256Hex(row.content)}` !== digest) return undefined;
        out.push(JSON.parse(decoder.decode(row.content)) as KubeObject);
        continue;
      }
      if (row.encoding !== "aes-256-gcm" || !this.keys || this.keys.id !== row.key_id) return undefined;
      try {
        // GCM authenticates the ciphertext with the digest as additional data.
        out.push(
          await unseal(this.keys, { iv: row.iv ?? new Uint8Array(0), ciphertext: row.content }, digest),
        );
      } catch {
        return undefined;
      }
    }
    return out;
  }

  /** How a stored manifest is kept (and by which key), without decoding it; undefined if unknown. */
  info(digest: string): { encoding: BlobEncoding; keyId?: string } | undefined {
    const row = this.access.guard("cannot read a manifest", () =>
      this.db.get<{ encoding: BlobEncoding; key_id: string | null }>(
        "SELECT encoding, key_id FROM blobs WHERE digest = ?",
        [digest],
      ),
    );
    if (!row) return undefined;
    return row.key_id === null ? { encoding: row.encoding } : { encoding: row.encoding, keyId: row.key_id };
  }

  /** Ids of the entries whose objects reference a blob, oldest first (to name who a bad blob affects). */
  entriesWith(digest: string): number[] {
    return this.access.guard("cannot read entry objects", () => {
      const ids = new Set(
        this.db
          .all<{ entry_id: number }>("SELECT DISTINCT entry_id FROM entry_objects WHERE digest = ?", [digest])
          .map((r) => r.entry_id),
      );
      // Unchanged objects live in snapshots: buckets naming the digest, roots naming those buckets.
      const like = (s: string) => `%"${s.replace(/[%_]/g, "")}"%`;
      for (const bucket of this.db.all<{ digest: string }>(
        "SELECT digest FROM snapshots WHERE content LIKE ?",
        [like(digest)],
      )) {
        for (const root of this.db.all<{ digest: string }>(
          "SELECT digest FROM snapshots WHERE content LIKE ?",
          [like(bucket.digest)],
        )) {
          for (const e of this.db.all<{ id: number }>("SELECT id FROM entries WHERE inventory_root = ?", [
            root.digest,
          ]))
            ids.add(e.id);
        }
      }
      return [...ids].sort((a, b) => a - b);
    });
  }

  /** The stored form and digest of one manifest. */
  private async blobOf(obj: KubeObject): Promise<NewBlob> {
    const utf8 = new TextEncoder();
    if (!isSecret(obj)) {
      // digestOf(obj) is the sha256 of this canonical JSON: hash it once for both digest and content hash.
      const json = canonicalJson(obj);
      const hex = sha256Hex(json);
      return {
        digest: `sha256:${hex}`,
        encoding: "plain",
        content: utf8.encode(json),
        contentHash: hex,
        keyId: null,
        iv: null,
      };
    }
    if (!this.keys) {
      const redacted = await redactSecret(obj, await this.digestKey.get());
      return {
        digest: digestOf(redacted),
        encoding: "redacted",
        content: utf8.encode(canonicalJson(redacted)),
        keyId: null,
        iv: null,
      };
    }
    const digest = await keyedDigestOf(this.keys, obj);
    const sealed = await seal(this.keys, obj, digest);
    return {
      digest,
      encoding: "aes-256-gcm",
      content: sealed.ciphertext,
      keyId: this.keys.id,
      iv: sealed.iv,
    };
  }
}
