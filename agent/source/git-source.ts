/**
 * Pulls commits from one Git repository over smart HTTP into a bare object cache and serves them as
 * `Snapshot`s. A poll costs one request (the ref advertisement); a commit is fetched once, shallowly,
 * and read from the cache ever after.
 */
import { Buffer } from "node:buffer";
import { existsSync, readFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { BerthError, messageOf } from "../object/errors.ts";
import { withRetries } from "../object/retry.ts";
import type { Snapshot } from "../object/snapshot.ts";
import { compactCache } from "./compact.ts";
import { fetchFailed, isRetryable } from "./fetch-errors.ts";
import { GitSnapshot } from "./git-snapshot.ts";
import { fetchHttpClient, type RequestKind } from "./http-client.ts";
import {
  fetchInto,
  type HttpClient,
  hasFetchConfig,
  initCache,
  listServerRefs,
  readCommit,
  resolveLocalRef,
  type ServerRef,
  type SnapshotReader,
  snapshotReader,
} from "./iso-git.ts";
import { serialized } from "./lock.ts";
import { DEFAULT_PACK_LIMITS, type PackLimits } from "./pack-check.ts";
import { findRef, isFullSha, refNotFoundMessage, revisionAt } from "./refs.ts";
import { cachePathFor, parseRepoUrl } from "./url.ts";

/** Username and password (or token) for HTTP basic auth. */
export interface GitCredentials {
  username: string;
  password: string;
}

/** How to reach the repository, which ref to follow, and where to cache it. */
export interface GitSourceOptions {
  /** http(s) URL of the repository; userinfo in it is used as credentials but never shown. */
  url: string;
  /** A branch, a tag, or a full 40-hex commit SHA. */
  ref: string;
  /** Directory holding one bare object cache per repository URL. */
  cacheDir: string;
  /** Called before each operation (poll, fetch), so a rotated token file or env var takes effect. */
  credentials?: () => GitCredentials | undefined;
  /** Limit per HTTP request, body included (default 60 s). */
  timeoutMs?: number;
  /** Retries after a network error or 5xx (default 3). */
  retries?: number;
  /** Base of the exponential backoff between retries (default 1 s). */
  retryDelayMs?: number;
  /** Called once per HTTP request, for metrics. */
  onRequest?: (kind: RequestKind, ok: boolean) => void;
  /** What one fetch may bring (default DEFAULT_PACK_LIMITS). */
  limits?: Partial<PackLimits>;
  /** Packs the cache may have before they are folded (default MAX_PACKS; Infinity never folds, for benches). */
  maxPacks?: number;
}

/** Result of `poll`: the ref's commit and whether it differs from the last one seen. */
export interface PollResult {
  sha: string;
  changed: boolean;
}

// What `git fetch --unshallow` asks for: "all the history".
const INFINITE_DEPTH = 0x7fffffff;

/** One repository and ref, read through a bare cache under `cacheDir`. */
export class GitSource {
  /** The repository URL without credentials, as shown in messages. */
  readonly url: string;
  /** The ref as configured. */
  readonly ref: string;
  /** The bare repository that caches this URL's objects. */
  readonly gitdir: string;
  private readonly options: GitSourceOptions;
  private readonly urlCredentials: GitCredentials | undefined;
  private readonly http: HttpClient;
  private readonly limits: PackLimits;

  constructor(options: GitSourceOptions) {
    const { clean, userinfo } = parseRepoUrl(options.url);
    this.url = clean;
    this.ref = options.ref;
    this.urlCredentials = userinfo;
    this.gitdir = cachePathFor(options.cacheDir, clean);
    this.options = options;
    this.limits = { ...DEFAULT_PACK_LIMITS, ...options.limits };
    this.http = fetchHttpClient({
      timeoutMs: options.timeoutMs ?? 60_000,
      maxBodyBytes: { refs: this.limits.maxRefsBytes, fetch: this.limits.maxPackBytes },
      ...(options.onRequest ? { onRequest: options.onRequest } : {}),
    });
    if (options.ref === "") throw new BerthError("ref must not be empty", { subject: `git ${clean}` });
  }

  /** The commit the ref points at now: one ref-advertisement request, or none for a full-SHA ref. */
  async resolve(): Promise<string> {
    if (isFullSha(this.ref)) return this.ref;
    const refs = await this.listRefs();
    const found = findRef(refs, this.ref);
    if (!found) {
      throw new BerthError(refNotFoundMessage(refs, this.ref), {
        subject: `git ${this.url}`,
        reason: "FetchFailed",
      });
    }
    return found.sha;
  }

  /** Every ref the server advertises with the commit it points at (annotated tags peeled): one request. */
  async refs(): Promise<Array<{ ref: string; sha: string }>> {
    return (await this.listRefs()).map((r) => ({ ref: r.ref, sha: r.peeled ?? r.oid }));
  }

  /** The same repository, cache and credentials, following another ref (a preview's pull-request head). */
  withRef(ref: string): GitSource {
    return new GitSource({ ...this.options, ref });
  }

  /** Resolves the ref and says whether it moved away from `lastSha`. */
  async poll(lastSha?: string): Promise<PollResult> {
    const sha = await this.resolve();
    return { sha, changed: sha !== lastSha };
  }

  /** The tree at `sha`, fetching it into the cache first unless it is already there. */
  async snapshot(sha: string): Promise<Snapshot> {
    const revision = revisionAt(this.url, this.ref, sha);
    // One fetch at a time per cache: concurrent fetches would race on refs and the shallow file.
    return serialized(this.gitdir, async () => {
      await this.ensureCache();
      // One reader for the check and the snapshot: each reads the pack files it needs once.
      let reader = snapshotReader(this.gitdir);
      if (!(await hasCommit(reader, sha))) {
        await this.fetchCommit(sha);
        await this.compact(sha);
        reader = snapshotReader(this.gitdir); // the fetch added a pack
      }
      return GitSnapshot.open(reader, sha, revision);
    });
  }

  /** Folds the cache's packs when a fetch made too many (compact.ts); a failure fails this attempt only. */
  private async compact(sha: string): Promise<void> {
    try {
      await compactCache(this.gitdir, {
        keep: [sha],
        ...(this.options.maxPacks !== undefined ? { maxPacks: this.options.maxPacks } : {}),
      });
    } catch (err) {
      throw new BerthError(`could not fold the cache's packs in ${this.gitdir}: ${messageOf(err)}`, {
        subject: `git ${this.url}`,
        reason: "FetchFailed",
        cause: err,
      });
    }
  }

  private async fetchCommit(sha: string): Promise<void> {
    if (!isFullSha(this.ref)) {
      // The usual case: `sha` is the ref's tip. The first time, its tree alone (depth 1). Later, no depth:
      // the server then sends only the commits since our last tip and what they changed, where a depth-1
      // fetch would send the whole tree again.
      const incremental = await this.hasTrackingTip();
      await this.fetch({ singleBranch: true, remoteRef: this.ref, ...(incremental ? {} : { depth: 1 }) });
      if (await hasCommit(snapshotReader(this.gitdir), sha)) return;
    }
    // A pinned commit, or a tip the ref has since moved away from: fetch all branches and tags, with history.
    const shallow =
      existsSync(join(this.gitdir, "shallow")) && readFileSync(join(this.gitdir, "shallow")).length > 0;
    await this.fetch({
      singleBranch: false,
      tags: true,
      remoteRef: sha,
      ...(shallow ? { depth: INFINITE_DEPTH } : {}),
    });
    if (await hasCommit(snapshotReader(this.gitdir), sha)) return;
    throw new BerthError(`commit ${sha} not found: no branch or tag of the repository contains it`, {
      subject: `git ${this.url}`,
      reason: "FetchFailed",
    });
  }

  private fetch(args: {
    singleBranch: boolean;
    remoteRef: string;
    depth?: number;
    tags?: boolean;
  }): Promise<unknown> {
    return this.withRetries(() =>
      fetchInto({
        http: this.http,
        gitdir: this.gitdir,
        url: this.url,
        // The local tracking ref, so the server is told which objects we already have.
        ref: isFullSha(args.remoteRef) ? args.remoteRef : this.trackingRef(),
        remoteRef: args.remoteRef,
        singleBranch: args.singleBranch,
        tags: args.tags ?? false,
        ...(args.depth !== undefined ? { depth: args.depth } : {}),
        headers: this.authHeaders(),
        limits: this.limits,
        subject: `git ${this.url}`,
      }),
    ).catch((err: unknown) => {
      // The ref vanished between resolve() and snapshot().
      if (err instanceof BerthError && (err.cause as { code?: unknown })?.code === "NotFoundError") {
        throw new BerthError(`ref "${args.remoteRef}" not found on the server`, {
          subject: `git ${this.url}`,
          reason: "FetchFailed",
          cause: err.cause,
        });
      }
      throw err;
    });
  }

  private listRefs(): Promise<ServerRef[]> {
    // Protocol v1 gets every ref, tags peeled, in the single GET of the advertisement; v2 would need a POST too.
    return this.withRetries(() => listServerRefs(this.http, this.url, this.authHeaders()));
  }

  private withRetries<T>(operation: () => Promise<T>): Promise<T> {
    return withRetries(operation, {
      retries: this.options.retries ?? 3,
      baseDelayMs: this.options.retryDelayMs ?? 1000,
      retryable: isRetryable,
      failed: (err, attempts) => fetchFailed(this.url, err, attempts),
    });
  }

  // Sent up front rather than via isomorphic-git's onAuth, which would cost a 401 round trip every time.
  private authHeaders(): Record<string, string> {
    const credentials = this.options.credentials?.() ?? this.urlCredentials;
    if (!credentials) return {};
    const basic = Buffer.from(`${credentials.username}:${credentials.password}`, "utf8").toString("base64");
    return { Authorization: `Basic ${basic}` };
  }

  private async ensureCache(): Promise<void> {
    // Checked every time (one small read) so a cache left half-initialized by a crash gets completed.
    if (existsSync(join(this.gitdir, "HEAD")) && (await hasFetchConfig(this.gitdir))) return;
    await mkdir(this.gitdir, { recursive: true });
    // fetch writes what it got to the remote-tracking refs the cache's refspec names; the URL is the clean one.
    await initCache(this.gitdir, this.url);
  }

  /** Where fetch records the branch's tip locally (the refspec maps refs/heads/X to it). */
  private trackingRef(): string {
    return `refs/remotes/origin/${this.ref.replace(/^refs\/heads\//, "")}`;
  }

  /** Whether the tip fetched last time for the ref is in the cache, to negotiate against. */
  private async hasTrackingTip(): Promise<boolean> {
    try {
      const oid = await resolveLocalRef(this.gitdir, this.trackingRef());
      return await hasCommit(snapshotReader(this.gitdir), oid);
    } catch {
      return false;
    }
  }
}

async function hasCommit(reader: SnapshotReader, sha: string): Promise<boolean> {
  try {
    await readCommit(reader, sha);
    return true;
  } catch {
    return false;
  }
}
