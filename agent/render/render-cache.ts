/**
 * The last render of each app, reused while nothing it was rendered from has changed, so a resync of an
 * unchanged app is a walk over the watch view instead of a read, parse and digest of every file.
 *
 * The key is everything a render reads: the commit (the whole tree, so a kustomization's `../base` or a
 * values file anywhere in the repository is covered; a commit touching only another app's path still
 * re-renders), the app's render settings (path, namespace, kustomize, helm, vars, varsFrom, exclude) and the bytes of
 * every `varsFrom` file. A render reading what no commit pins is never cached: `varsFrom` ConfigMaps and
 * Secrets (they live in the cluster), charts from Helm repositories or OCI registries (a version range can
 * move) and kustomize remote bases. Failed renders are not cached either (a tool timeout may pass).
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Snapshot } from "../object/snapshot.ts";
import type { AppRenderSpec } from "./app.ts";
import { isRemoteChart } from "./helm-remote.ts";

/** A revision naming a Git commit (`ref@sha1:…` or `sha1:…`); a directory snapshot ("local") is never cached. */
const COMMIT_REVISION = /(?:^|@)sha1:[0-9a-f]{40}$/;

/**
 * The cache key of one app's render at one snapshot, or undefined when the render reads something outside
 * the commit and the app's config (then it is rendered every time).
 */
export function renderKey(snapshot: Pick<Snapshot, "revision">, app: AppRenderSpec): string | undefined {
  if (!COMMIT_REVISION.test(snapshot.revision)) return undefined;
  if (app.helm && isRemoteChart(app.helm)) return undefined;
  if (app.kustomize?.allowRemoteBases) return undefined;
  const hash = createHash("sha256");
  hash.update(snapshot.revision);
  hash.update("\0");
  hash.update(
    JSON.stringify([
      app.name,
      app.path,
      app.namespace,
      app.kustomize,
      app.helm,
      app.vars,
      app.varsFrom,
      app.exclude,
    ]),
  );
  for (const source of app.varsFrom ?? []) {
    if (!("file" in source)) return undefined;
    try {
      hash.update("\0");
      hash.update(readFileSync(source.file));
    } catch {
      return undefined; // the render reports the missing file
    }
  }
  return hash.digest("hex");
}

/**
 * The key under which a render may be reused by another process (the CLI reads it back from the ledger,
 * agent/ledger/README.md): `key` (renderKey) plus what one process takes as fixed and a later one may not —
 * berth's own build (its parser and renderers), the agent's render settings, the age identities (mixed into
 * the hash, never stored) and the identity of each render tool binary (path, size, modification time).
 */
export function durableRenderKey(key: string, context: ReadonlyArray<string | Uint8Array>): string {
  const hash = createHash("sha256");
  hash.update("berth-durable-render-v1\0");
  hash.update(key);
  for (const part of context) {
    hash.update("\0");
    hash.update(part);
  }
  return hash.digest("hex");
}

/** The newest successful render of each app (one entry per app, at most `maxApps` apps). */
export class RenderCache<R> {
  private readonly entries = new Map<string, { key: string; result: R }>();
  hits = 0;
  misses = 0;

  constructor(private readonly maxApps = 1000) {}

  /** The app's cached render if it was made under `key`. */
  get(app: string, key: string): R | undefined {
    const entry = this.entries.get(app);
    if (entry?.key !== key) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(app);
    this.entries.set(app, entry);
    return entry.result;
  }

  /** Keeps `result` as the app's render under `key`, replacing the app's previous one. */
  set(app: string, key: string, result: R): void {
    this.entries.delete(app);
    this.entries.set(app, { key, result });
    // Oldest first: past the bound, the least recently rendered app goes.
    for (const name of this.entries.keys()) {
      if (this.entries.size <= this.maxApps) break;
      this.entries.delete(name);
    }
  }

  /** Forgets an app's render. */
  delete(app: string): void {
    this.entries.delete(app);
  }
}
