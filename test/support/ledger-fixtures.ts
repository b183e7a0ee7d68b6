/** Shared fixtures of the ledger tests: temporary files, sample objects, raw access to the database file. */
import { afterEach, beforeEach } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Driver, openDriver } from "../../agent/ledger/driver.ts";
import type { KubeObject, ObjectRef } from "../../agent/object/object.ts";

/** A fresh temporary directory and a cleanup for it. */
export function tempDir(prefix = "berth-ledger-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Gives each test of the calling file a fresh ledger path in its own temporary directory, removed after the test.
 * Read `.path` inside a test (it changes per test).
 */
export function useLedgerPath(): { readonly path: string } {
  const current = { path: "" };
  let cleanup = () => {};
  beforeEach(() => {
    const t = tempDir();
    cleanup = t.cleanup;
    current.path = join(t.dir, "ledger.db");
  });
  afterEach(() => cleanup());
  return current;
}

/** The bytes of a database file and its -wal and -shm companions, concatenated. */
export function rawDatabaseBytes(path: string): Buffer {
  const parts = [path, `${path}-wal`, `${path}-shm`].filter((p) => existsSync(p)).map((p) => readFileSync(p));
  return Buffer.concat(parts);
}

/** Runs fn on a second, raw connection to a database: how tests tamper with rows. */
export async function withRawDb<T>(path: string, fn: (db: Driver) => T): Promise<T> {
  const db = await openDriver(path);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

/** Undoes the approvals' seq migration (the newest), so a test can turn a ledger into an older schema's. */
export function undoApprovalSeq(db: Driver): void {
  db.exec(
    "DROP INDEX approvals_seq; ALTER TABLE approvals DROP COLUMN seq; DELETE FROM meta WHERE key = 'approval_seq'",
  );
}

/** A reference in the core group. */
export function coreRef(kind: string, name: string, namespace = "default"): ObjectRef {
  return { group: "", version: "v1", kind, namespace, name };
}

/** A ConfigMap with one data entry. */
export function configMap(name: string, value: string, namespace = "default"): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace }, data: { value } };
}

/** A Deployment reference. */
export function deploymentRef(name: string, namespace = "default"): ObjectRef {
  return { group: "apps", version: "v1", kind: "Deployment", namespace, name };
}

/** A 32-byte secret key filled with one byte. */
export function keyOf(byte: number): Uint8Array {
  return new Uint8Array(32).fill(byte);
}
