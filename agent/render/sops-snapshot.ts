/** A Snapshot whose SOPS-encrypted YAML/JSON files read back decrypted; everything else passes through. */
import type { ReadBlobOptions, Snapshot, TreeEntry } from "../object/snapshot.ts";
import { decryptSopsFile, type SopsKeys } from "./sops.ts";

/** Decrypts SOPS files of `inner` on read (once per path), so plain and tool renders both see plaintext. */
export class SopsSnapshot implements Snapshot {
  private readonly decrypted = new Map<string, Promise<Uint8Array>>();

  constructor(
    private readonly inner: Snapshot,
    private readonly keys: SopsKeys,
  ) {}

  get revision(): string {
    return this.inner.revision;
  }

  get commit(): Snapshot["commit"] {
    return this.inner.commit;
  }

  /** Entries of the inner snapshot. */
  readDir(path: string): Promise<TreeEntry[]> {
    return this.inner.readDir(path);
  }

  /** The entry of the inner snapshot. */
  stat(path: string): Promise<TreeEntry | undefined> {
    return this.inner.stat(path);
  }

  /** The blob, decrypted if it is a SOPS file (symlinks read back as their target, untouched). */
  async readBlob(path: string, options?: ReadBlobOptions): Promise<Uint8Array> {
    const entry = await this.inner.stat(path);
    if (entry?.type !== "blob") return this.inner.readBlob(path, options);
    let bytes = this.decrypted.get(path);
    if (!bytes) {
      // The encrypted file is held to the limit (decrypting does not make it larger); a refusal is not kept.
      bytes = this.inner.readBlob(path, options).then((raw) => decryptSopsFile(path, raw, this.keys));
      this.decrypted.set(path, bytes);
      bytes.catch(() => this.decrypted.delete(path));
    }
    return bytes;
  }
}
