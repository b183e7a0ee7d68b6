/**
 * A real Gitea for the forge tests, built from the Go module proxy by scripts/gitea/build.sh, on a free
 * loopback port with a temporary app.ini (SQLite, INSTALL_LOCK, offline, no mailer, no SSH, no Actions).
 * An admin user and an API token are made with Gitea's own CLI; the helpers create repositories, push
 * over HTTP with the token, open pull requests and read back commit statuses and comments through its API.
 * stop() and start() take it down and bring it back on the same port and data (an outage).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { git } from "./git.ts";
import { goBuild } from "./go-build.ts";
import { freePort } from "./ports.ts";
import { killAndWait, outputOf, type RestartableServer, untilServing } from "./process.ts";

/** The gitea binary (built the first time: many minutes cold on 2 cores, 0 s cached). */
export function giteaBinary(): Promise<string> {
  return goBuild("gitea");
}

/** A commit status as Gitea's API returns it (the fields the tests read). */
export interface GiteaStatus {
  id: number;
  context: string;
  status: string;
  description: string;
  target_url: string;
  created_at: string;
}

export interface GiteaComment {
  id: number;
  body: string;
}

export interface GiteaServer extends RestartableServer {
  /** http://127.0.0.1:<port> */
  url: string;
  user: string;
  /** An API token with every scope (also the password for git over HTTP). */
  token: string;
  /** Creates an empty repository of the admin user; returns its web URL (…/<user>/<name>). */
  createRepo(name: string): Promise<string>;
  /** Pushes `ref` (a branch, or `HEAD:refs/heads/x`) of a local work tree to the repository. */
  push(workTree: string, repo: string, ref: string): void;
  /** Opens a pull request; returns its number. */
  openPull(repo: string, head: string, base: string, title: string): Promise<number>;
  /** Every status of a commit, oldest first. */
  statuses(repo: string, sha: string): Promise<GiteaStatus[]>;
  comments(repo: string, pr: number): Promise<GiteaComment[]>;
  /** Any API call as the admin user. */
  api(method: string, path: string, body?: unknown): Promise<unknown>;
}

export async function startGitea(): Promise<GiteaServer> {
  const binary = await giteaBinary();
  const dir = mkdtempSync(join(tmpdir(), "berth-gitea-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const ini = join(dir, "app.ini");
  mkdirSync(join(dir, "data"), { recursive: true });
  writeFileSync(
    ini,
    [
      "APP_NAME = berth-test",
      "RUN_MODE = prod",
      // Tests run as root here; Gitea refuses that unless told.
      "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true",
      `WORK_PATH = ${dir}`,
      "[server]",
      "PROTOCOL = http",
      "HTTP_ADDR = 127.0.0.1",
      `HTTP_PORT = ${port}`,
      `ROOT_URL = ${url}/`,
      "DISABLE_SSH = true",
      "START_SSH_SERVER = false",
      "OFFLINE_MODE = true",
      "LFS_START_SERVER = false",
      // Built without bindata: templates and options are read from beside the binary.
      `STATIC_ROOT_PATH = ${dirname(binary)}`,
      `APP_DATA_PATH = ${join(dir, "data")}`,
      "[database]",
      "DB_TYPE = sqlite3",
      `PATH = ${join(dir, "data", "gitea.db")}`,
      "SQLITE_JOURNAL_MODE = WAL",
      "[repository]",
      `ROOT = ${join(dir, "repos")}`,
      "DEFAULT_BRANCH = main",
      "[security]",
      "INSTALL_LOCK = true",
      `SECRET_KEY = ${randomBytes(24).toString("hex")}`,
      `INTERNAL_TOKEN = ${randomBytes(40).toString("hex")}`,
      "[oauth2]",
      "ENABLED = false",
      "[service]",
      "DISABLE_REGISTRATION = true",
      "[mailer]",
      "ENABLED = false",
      "[actions]",
      "ENABLED = false",
      "[cron]",
      "ENABLED = false",
      "[indexer]",
      "REPO_INDEXER_ENABLED = false",
      "[log]",
      "MODE = console",
      "LEVEL = Warn",
      `ROOT_PATH = ${join(dir, "log")}`,
      "",
    ].join("\n"),
  );
  const env = { ...process.env, GITEA_WORK_DIR: dir, HOME: dir, USER: "root" };
  let child: ChildProcess | undefined;
  const start = async () => {
    const c = spawn(binary, ["web", "--config", ini, "--port", String(port)], {
      cwd: dir,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = c;
    const output = outputOf(c, true);
    // The first start creates the database (migrations): slow on a loaded machine.
    await untilServing(
      "gitea",
      url,
      c,
      async () => (await fetch(`${url}/api/v1/version`, { signal: AbortSignal.timeout(2000) })).ok,
      output,
      180_000,
      250,
    );
  };
  const stop = () => killAndWait(child);
  await start();
  const user = "berth";
  const cli = (...args: string[]) =>
    execFileSync(binary, ["--config", ini, ...args], { cwd: dir, env, encoding: "utf8" }).trim();
  cli(
    "admin",
    "user",
    "create",
    "--admin",
    "--username",
    user,
    "--password",
    randomBytes(12).toString("hex"),
    "--email",
    "berth@example.test",
    "--must-change-password=false",
  );
  const token = cli(
    "admin",
    "user",
    "generate-access-token",
    "--username",
    user,
    "--token-name",
    "tests",
    "--scopes",
    "all",
    "--raw",
  )
    .split("\n")
    .at(-1) as string;
  const api = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const r = await fetch(`${url}/api/v1${path}`, {
      method,
      headers: { authorization: `token ${token}`, "content-type": "application/json" },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: HTTP ${r.status}: ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  };
  const path = (repo: string) => new URL(repo).pathname.replace(/^\/|\.git$/g, "");
  return {
    url,
    user,
    token,
    api,
    createRepo: async (name) => {
      await api("POST", "/user/repos", { name, auto_init: false, default_branch: "main", private: false });
      return `${url}/${user}/${name}`;
    },
    push: (workTree, repo, ref) => {
      const remote = new URL(`${repo}.git`);
      remote.username = user;
      remote.password = token;
      git(workTree, "push", "--quiet", "--force", remote.toString(), ref);
    },
    openPull: async (repo, head, base, title) => {
      // Gitea records pushed branches from a queue: a just-pushed head may be "not found" for a moment.
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          const pr = (await api("POST", `/repos/${path(repo)}/pulls`, { head, base, title })) as {
            number: number;
          };
          return pr.number;
        } catch (err) {
          if (!/HTTP 404/.test(String(err)) || Date.now() > deadline) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    },
    statuses: async (repo, sha) => {
      const all: GiteaStatus[] = [];
      for (let page = 1; page < 50; page++) {
        const got = (await api(
          "GET",
          `/repos/${path(repo)}/statuses/${sha}?sort=oldest&limit=50&page=${page}`,
        )) as GiteaStatus[];
        all.push(...got);
        if (got.length < 50) break;
      }
      return all.sort((a, b) => a.id - b.id);
    },
    comments: async (repo, pr) =>
      (await api("GET", `/repos/${path(repo)}/issues/${pr}/comments`)) as GiteaComment[],
    stop,
    start,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
