/**
 * Test helpers around the real Git smart-HTTP server: create bare repositories,
 * commit trees of files through a scratch clone, push, and move branches.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type GitServer, type GitServerAuth, startGitServer } from "../../scripts/git/server.ts";

/** A file's content, a symlink to create, or null to delete the path. */
export type TreeEntry = string | { symlink: string } | null;

export interface CommitOptions {
  branch?: string;
  message?: string;
  author?: { name: string; email: string };
  /** Remove every tracked file first, so the tree is exactly `files`. */
  replace?: boolean;
}

const GIT_ENV = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_TERMINAL_PROMPT: "0",
  HOME: tmpdir(),
};

/** Runs git with arguments (never a shell) and returns trimmed stdout. */
export function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, {
    cwd,
    env: GIT_ENV,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

/** A running Git server plus a scratch directory for its repositories. */
export class GitFixture {
  private constructor(
    readonly server: GitServer,
    readonly dir: string,
  ) {}

  /** Starts a server over a fresh temporary root. */
  static async start(auth?: GitServerAuth): Promise<GitFixture> {
    const dir = mkdtempSync(join(tmpdir(), "berth-git-"));
    mkdirSync(join(dir, "repos"));
    mkdirSync(join(dir, "work"));
    const server = await startGitServer(
      auth ? { root: join(dir, "repos"), auth } : { root: join(dir, "repos") },
    );
    return new GitFixture(server, dir);
  }

  /** Creates an empty bare repository; returns its HTTP URL. */
  createRepo(name: string, branch = "main"): string {
    git(join(this.dir, "repos"), "init", "--quiet", "--bare", `--initial-branch=${branch}`, `${name}.git`);
    const work = this.workDir(name);
    git(dirname(work), "init", "--quiet", `--initial-branch=${branch}`, name);
    git(work, "remote", "add", "origin", this.bareDir(name));
    return this.url(name);
  }

  /** The repository's URL on the server. */
  url(name: string): string {
    return `${this.server.url}/${name}.git`;
  }

  /** Writes `files` into the repository's scratch clone, commits and pushes; returns the commit SHA. */
  commit(name: string, files: Record<string, TreeEntry>, options: CommitOptions = {}): string {
    const work = this.workDir(name);
    const branch = options.branch ?? "main";
    const hasBranch = git(work, "branch", "--list", branch).length > 0;
    const hasCommits = git(work, "branch", "--list").length > 0;
    if (hasBranch) git(work, "checkout", "--quiet", branch);
    else if (hasCommits) git(work, "checkout", "--quiet", "-b", branch);
    if (options.replace && hasCommits) git(work, "rm", "-r", "--quiet", "--ignore-unmatch", ".");
    for (const [path, entry] of Object.entries(files)) {
      const full = join(work, path);
      rmSync(full, { force: true, recursive: true });
      if (entry === null) continue;
      mkdirSync(dirname(full), { recursive: true });
      if (typeof entry === "string") writeFileSync(full, entry);
      else symlinkSync(entry.symlink, full);
    }
    git(work, "add", "--all");
    const author = options.author ?? { name: "Test Author", email: "author@example.test" };
    execFileSync("git", ["commit", "--quiet", "--allow-empty", "-m", options.message ?? "test commit"], {
      cwd: work,
      env: {
        ...GIT_ENV,
        GIT_AUTHOR_NAME: author.name,
        GIT_AUTHOR_EMAIL: author.email,
        GIT_COMMITTER_NAME: author.name,
        GIT_COMMITTER_EMAIL: author.email,
      },
      stdio: "ignore",
    });
    git(work, "push", "--quiet", "--force", "origin", `HEAD:refs/heads/${branch}`);
    return git(work, "rev-parse", "HEAD");
  }

  /** Points `branch` (or a tag with `refs/tags/…`) of the served repository at `sha`. */
  moveRef(name: string, ref: string, sha: string): void {
    const full = ref.startsWith("refs/") ? ref : `refs/heads/${ref}`;
    git(this.bareDir(name), "update-ref", full, sha);
  }

  /** The commit a ref of the served repository points at. */
  head(name: string, ref = "main"): string {
    return git(this.bareDir(name), "rev-parse", ref);
  }

  /** Stops the server and removes every repository. */
  async close(): Promise<void> {
    await this.server.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private bareDir(name: string): string {
    return join(this.dir, "repos", `${name}.git`);
  }

  private workDir(name: string): string {
    return join(this.dir, "work", name);
  }
}

const WIDE_ENV = {
  ...GIT_ENV,
  GIT_AUTHOR_NAME: "Test Author",
  GIT_AUTHOR_EMAIL: "author@example.test",
  GIT_COMMITTER_NAME: "Test Author",
  GIT_COMMITTER_EMAIL: "author@example.test",
};

/**
 * Commits straight into the bare repository `bare` (git plumbing, no clone): `files` (path → text) and a
 * directory `wide` of `entries` files (`f000000.yaml`…, each holding `text`), which a clone would take long to
 * write out; points `main` at it and returns the commit. A directory of 250,000 entries is a 10 MB tree object.
 */
export function commitWide(
  bare: string,
  files: Record<string, string>,
  entries: number,
  text: string,
): string {
  const run = (args: string[], input?: string) =>
    execFileSync("git", args, {
      cwd: bare,
      env: WIDE_ENV,
      input,
      encoding: "utf8",
      maxBuffer: 64 << 20,
    }).trim();
  const blob = (content: string) => run(["hash-object", "-w", "--stdin"], content);
  const lines: string[] = [];
  const one = blob(text);
  for (let i = 0; i < entries; i++) lines.push(`100644 blob ${one}\tf${String(i).padStart(6, "0")}.yaml`);
  type Dir = Map<string, string | Dir>;
  const root: Dir = new Map([["wide", run(["mktree"], `${lines.join("\n")}\n`)]]);
  for (const [path, content] of Object.entries(files)) {
    const parts = path.split("/");
    let dir = root;
    for (const part of parts.slice(0, -1)) {
      const next = dir.get(part);
      if (next instanceof Map) dir = next;
      else {
        const made: Dir = new Map();
        dir.set(part, made);
        dir = made;
      }
    }
    dir.set(parts.at(-1) as string, `blob:${blob(content)}`);
  }
  // A tree's entries are its files' blobs and its subdirectories' trees, made bottom-up; "wide" is a tree already.
  const make = (dir: Dir): string =>
    run(
      ["mktree"],
      [...dir]
        .map(([name, entry]) =>
          entry instanceof Map
            ? `040000 tree ${make(entry)}\t${name}`
            : entry.startsWith("blob:")
              ? `100644 blob ${entry.slice(5)}\t${name}`
              : `040000 tree ${entry}\t${name}`,
        )
        .join("\n")
        .concat("\n"),
    );
  const sha = run(["commit-tree", make(root), "-m", "wide"]);
  run(["update-ref", "refs/heads/main", sha]);
  return sha;
}
