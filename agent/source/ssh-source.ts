/**
 * A Git source over SSH (`ssh://…` or `user@host:path`) through the system git and ssh, with a deploy key
 * and a known_hosts file (a changed host key is refused). Same interface as GitSource: `resolve()` is one
 * `git ls-remote`, a commit is fetched shallow into a bare cache once, and snapshots read it with
 * `git ls-tree`/`git cat-file`, without a working copy.
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { BerthError } from "../object/errors.ts";
import type { Snapshot } from "../object/snapshot.ts";
import { serialized } from "./lock.ts";
import { DEFAULT_PACK_LIMITS, type PackLimits } from "./pack-check.ts";
import { findRef, isFullSha, refNotFoundMessage, revisionAt } from "./refs.ts";
import {
  boundedSshCommand,
  checkCountingTools,
  overFetchLimit,
  runGit,
  type SshSettings,
} from "./ssh-git.ts";
import { SshSnapshot } from "./ssh-snapshot.ts";
import { cachePathFor } from "./url.ts";

/**
 * Every fetch keeps what it receives as one pack, moved into place only when whole. Below git's default of 100
 * objects it would write loose objects as they arrive instead, and a fetch cut short (a limit, a timeout, a
 * reset) would leave a commit without its tree: found by `hasCommit`, never fetched again, unreadable.
 */
const ATOMIC_FETCH = ["-c", "fetch.unpackLimit=1"];

/**
 * The most git may allocate at once (`GIT_ALLOC_LIMIT`, read by every git allocation) is what one object may inflate
 * to over HTTP (pack-check.ts; the source's limits.maxObjectBytes): a small pack of deltas that make a huge object
 * fails the fetch in git's own process instead of filling the machine's memory. A blob above it is hashed as it
 * streams (`core.bigFileThreshold`), not held, so a large file the apps never read still comes through; snapshots
 * then refuse to read it.
 */
const streamLargeBlobs = (maxAllocation: number) => ["-c", `core.bigFileThreshold=${maxAllocation}`];

/** How old a temporary pack must be to be another process's leftover rather than its fetch in progress. */
const STALE_TEMPORARY_MS = 60 * 60 * 1000;

/** The temporary packs in `packDir` (git's `tmp_*` files of a fetch in progress or a failed one). */
async function temporaryPacks(packDir: string): Promise<string[]> {
  return (await readdir(packDir).catch(() => [] as string[])).filter((n) => n.startsWith("tmp_"));
}

/** Deletes the temporary packs older than STALE_TEMPORARY_MS; returns the others. */
async function withoutStale(packDir: string, names: string[]): Promise<string[]> {
  const kept: string[] = [];
  for (const name of names) {
    const mtime = (await stat(join(packDir, name)).catch(() => undefined))?.mtimeMs;
    if (mtime !== undefined && Date.now() - mtime > STALE_TEMPORARY_MS)
      await rm(join(packDir, name), { force: true });
    else kept.push(name);
  }
  return kept;
}

/** True for the URLs this source handles: ssh:// and scp-like user@host:path. */
export function isSshUrl(url: string): boolean {
  return /^ssh:\/\//i.test(url) || /^[^/:@\s]+@[^/:\s]+:/.test(url);
}

/** Options of SshSource. */
export interface SshSourceOptions {
  url: string;
  ref: string;
  cacheDir: string;
  ssh: SshSettings;
  /** Per git command (default 60 s). */
  timeoutMs?: number;
  /**
   * What one fetch may bring, as for the HTTP source (default DEFAULT_PACK_LIMITS). Over SSH two apply:
   * maxPackBytes, what one git command may receive from the server; maxObjectBytes, the most git may allocate at
   * once and the size past which a blob streams. git checks the rest itself.
   */
  limits?: Partial<PackLimits>;
}

/** One repository and ref over SSH, cached in a bare repository under `cacheDir`. */
export class SshSource {
  readonly url: string;
  readonly ref: string;
  readonly gitdir: string;
  private readonly options: SshSourceOptions;
  private readonly limits: PackLimits;

  constructor(options: SshSourceOptions) {
    if (!isSshUrl(options.url)) throw new BerthError("not an SSH URL", { subject: `git ${options.url}` });
    if (options.ref === "") throw new BerthError("ref must not be empty", { subject: `git ${options.url}` });
    this.url = options.url;
    this.ref = options.ref;
    this.gitdir = cachePathFor(options.cacheDir, options.url);
    this.options = options;
    this.limits = { ...DEFAULT_PACK_LIMITS, ...options.limits };
  }

  /** The commit the ref points at now: one `git ls-remote`, or none for a full-SHA ref. */
  async resolve(): Promise<string> {
    if (isFullSha(this.ref)) return this.ref;
    const { stdout } = await this.git(["ls-remote", "--", this.url]);
    const refs = parseLsRemote(stdout.toString("utf8"));
    const found = findRef(refs, this.ref);
    if (!found)
      throw new BerthError(refNotFoundMessage(refs, this.ref), {
        subject: `git ${this.url}`,
        reason: "FetchFailed",
      });
    return found.sha;
  }

  /** Every ref the server advertises with the commit it points at: one `git ls-remote`. */
  async refs(): Promise<Array<{ ref: string; sha: string }>> {
    const { stdout } = await this.git(["ls-remote", "--", this.url]);
    return parseLsRemote(stdout.toString("utf8")).map((r) => ({ ref: r.ref, sha: r.peeled ?? r.oid }));
  }

  /** The same repository, cache and key, following another ref (a preview's pull-request head). */
  withRef(ref: string): SshSource {
    return new SshSource({ ...this.options, ref });
  }

  /** The tree at `sha`, fetched shallow into the cache first unless it is there. */
  async snapshot(sha: string): Promise<Snapshot> {
    const revision = revisionAt(this.url, this.ref, sha);
    return serialized(this.gitdir, async () => {
      await this.ensureCache();
      if (!(await this.hasCommit(sha))) await this.fetchCommit(sha);
      return SshSnapshot.open(this.gitdir, sha, revision, this.limits.maxObjectBytes);
    });
  }

  private async fetchCommit(sha: string): Promise<void> {
    if (!isFullSha(this.ref)) {
      const branch = this.ref.replace(/^refs\/heads\//, "");
      const shallow = existsSync(`${this.gitdir}/shallow`);
      // Shallow the first time; after that the server sends only what changed since our tip.
      await this.fetch([
        "--no-tags",
        ...(shallow || !(await this.hasAny()) ? ["--depth", "1"] : []),
        "--",
        this.url,
        `+${this.ref}:refs/remotes/origin/${branch}`,
      ]).catch((error: unknown) => {
        // Fetching everything instead would bring more still.
        if (overFetchLimit(error)) throw error;
      });
      if (await this.hasCommit(sha)) return;
    }
    // A pinned commit or a tip the ref moved away from: everything, with history.
    const unshallow = existsSync(`${this.gitdir}/shallow`) ? ["--unshallow"] : [];
    await this.fetch([...unshallow, "--tags", "--", this.url, "+refs/heads/*:refs/remotes/origin/*"]);
    if (await this.hasCommit(sha)) return;
    throw new BerthError(`commit ${sha} not found: no branch or tag of the repository contains it`, {
      subject: `git ${this.url}`,
      reason: "FetchFailed",
    });
  }

  /**
   * `git fetch args…` into the cache. git leaves the pack of a failed fetch (up to the fetch limit) as
   * objects/pack/tmp_*; those of this fetch go at once, and any an earlier, killed process left after an hour.
   */
  private async fetch(args: string[]): Promise<void> {
    const packDir = join(this.gitdir, "objects", "pack");
    const before = new Set(await withoutStale(packDir, await temporaryPacks(packDir)));
    try {
      await this.git([
        ...ATOMIC_FETCH,
        ...streamLargeBlobs(this.limits.maxObjectBytes),
        "--git-dir",
        this.gitdir,
        "fetch",
        ...args,
      ]);
    } catch (error) {
      for (const name of await temporaryPacks(packDir))
        if (!before.has(name)) await rm(join(packDir, name), { force: true });
      throw error;
    }
  }

  private async hasAny(): Promise<boolean> {
    const out = await this.git(["--git-dir", this.gitdir, "for-each-ref", "--count=1"]);
    return out.stdout.length > 0;
  }

  private async hasCommit(sha: string): Promise<boolean> {
    try {
      await this.git(["--git-dir", this.gitdir, "cat-file", "-e", `${sha}^{commit}`]);
      return true;
    } catch {
      return false;
    }
  }

  private async ensureCache(): Promise<void> {
    if (existsSync(`${this.gitdir}/HEAD`)) return;
    await mkdir(this.gitdir, { recursive: true });
    await this.git(["init", "--bare", "--quiet", this.gitdir]);
  }

  private async git(args: string[]) {
    await checkCountingTools(process.env.PATH ?? "/usr/bin:/bin");
    return runGit(args, {
      subject: `git ${this.url}`,
      env: {
        GIT_SSH_COMMAND: boundedSshCommand(this.options.ssh, this.limits.maxPackBytes),
        GIT_SSH_VARIANT: "ssh",
        GIT_ALLOC_LIMIT: String(this.limits.maxObjectBytes),
      },
      ...(this.options.timeoutMs !== undefined ? { timeoutMs: this.options.timeoutMs } : {}),
    });
  }
}

/** `git ls-remote` output as ref advertisements (annotated tags peeled). */
export function parseLsRemote(text: string): Array<{ ref: string; oid: string; peeled?: string }> {
  const refs = new Map<string, { ref: string; oid: string; peeled?: string }>();
  for (const line of text.split("\n")) {
    const [oid, name] = line.split("\t");
    if (!oid || !name) continue;
    if (name.endsWith("^{}")) {
      const base = refs.get(name.slice(0, -3));
      if (base) base.peeled = oid;
    } else {
      refs.set(name, { ref: name, oid });
    }
  }
  return [...refs.values()];
}
