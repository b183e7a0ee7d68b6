/**
 * Commit verification: only commits signed by a key in an allowed-signers file (git's gpg.format=ssh) are
 * accepted. Wraps any source whose cache is a bare repository; an unsigned or wrongly signed commit is
 * refused before a snapshot exists, so nothing of it is rendered and the last verified commit stays applied.
 */
import { BerthError } from "../object/errors.ts";
import type { Snapshot } from "../object/snapshot.ts";
import { runGit } from "./ssh-git.ts";

/** A source with a bare-repository cache (GitSource and SshSource both are). */
export interface CachedSource {
  readonly url: string;
  readonly gitdir: string;
  resolve(): Promise<string>;
  snapshot(sha: string): Promise<Snapshot>;
}

/** Checks `sha`'s signature in `gitdir` against `allowedSignersFile`; rejects (FetchFailed) naming the commit and why. */
export async function verifyCommit(gitdir: string, sha: string, allowedSignersFile: string): Promise<void> {
  const args = [
    "-c",
    "gpg.format=ssh",
    "-c",
    `gpg.ssh.allowedSignersFile=${allowedSignersFile}`,
    "--git-dir",
    gitdir,
    "verify-commit",
    "--raw",
    sha,
  ];
  const refused = (why: string, cause?: unknown): BerthError =>
    new BerthError(`${why}; refused (source.verify.allowedSignersFile: ${allowedSignersFile})`, {
      subject: `commit ${sha}`,
      reason: "FetchFailed",
      cause,
    });
  // verify-commit says nothing about an unsigned commit; the header says it plainly.
  const raw = await runGit(["--git-dir", gitdir, "cat-file", "commit", sha], { subject: `commit ${sha}` });
  const header = raw.stdout.toString("utf8").split("\n\n")[0] ?? "";
  if (!/^gpgsig(-sha256)? /m.test(header)) throw refused("is not signed");
  if (!header.includes("-----BEGIN SSH SIGNATURE-----"))
    throw refused("is not signed with an SSH key (gpg.format=ssh)");
  try {
    await runGit(args, { subject: `commit ${sha}`, timeoutMs: 30_000 });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? "";
    const why = /No principal matched|not allowed|Could not verify|allowed signers/i.test(stderr)
      ? "is signed by a key that is not in the allowed signers file"
      : `has no valid signature (${stderr.trim().split("\n").at(-1) || "verification failed"})`;
    throw refused(why, err);
  }
}

/** A source that hands out snapshots only of verified commits. */
export class VerifiedSource {
  constructor(
    private readonly inner: CachedSource,
    private readonly allowedSignersFile: string,
  ) {}

  /** The inner source's URL. */
  get url(): string {
    return this.inner.url;
  }

  /** The ref's commit (not yet verified: snapshot() refuses it if it is not signed). */
  resolve(): Promise<string> {
    return this.inner.resolve();
  }

  /** The snapshot at `sha`, after its signature checked out. */
  async snapshot(sha: string): Promise<Snapshot> {
    const snapshot = await this.inner.snapshot(sha);
    await verifyCommit(this.inner.gitdir, sha, this.allowedSignersFile);
    return snapshot;
  }
}
