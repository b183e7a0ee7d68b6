/** A real OpenSSH server on a loopback port serving bare Git repositories to one authorized deploy key. */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.ts";

// os.userInfo() says "unknown" under Bun in some containers; id(1) asks the system.
const USER = execFileSync("id", ["-un"], { encoding: "utf8" }).trim();

/** A key pair made with ssh-keygen: the private key file and the public key line. */
export interface KeyPair {
  file: string;
  publicKey: string;
}

/** Makes an ed25519 key pair without passphrase in `dir`. */
export function makeKey(dir: string, name: string): KeyPair {
  const file = join(dir, name);
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", file]);
  return { file, publicKey: readFileSync(`${file}.pub`, "utf8").trim() };
}

/** A running sshd, its host key, a deploy key it accepts, and a directory of bare repositories. */
export class SshdFixture {
  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly hostKey: KeyPair,
    readonly deployKey: KeyPair,
    private readonly process: ChildProcess,
  ) {}

  /** Starts sshd on 127.0.0.1 with a fresh host key; resolves once it accepts connections. */
  static async start(): Promise<SshdFixture> {
    const dir = mkdtempSync(join(tmpdir(), "berth-sshd-"));
    const hostKey = makeKey(dir, "host_key");
    const deployKey = makeKey(dir, "deploy_key");
    writeFileSync(join(dir, "authorized_keys"), `${deployKey.publicKey}\n`, { mode: 0o600 });
    mkdirSync(join(dir, "repos"));
    mkdirSync("/run/sshd", { recursive: true });
    const port = await freePort();
    const config = [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey.file}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      "PasswordAuthentication no",
      "KbdInteractiveAuthentication no",
      "PubkeyAuthentication yes",
      "PermitRootLogin prohibit-password",
      "StrictModes no",
      "UsePAM no",
      `PidFile ${join(dir, "sshd.pid")}`,
      `AllowUsers ${USER}`,
      "LogLevel ERROR",
    ].join("\n");
    writeFileSync(join(dir, "sshd_config"), `${config}\n`);
    const child = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "sshd_config")], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    const fixture = new SshdFixture(dir, port, hostKey, deployKey, child);
    await fixture.waitReady();
    return fixture;
  }

  private async waitReady(): Promise<void> {
    const { connect } = await import("node:net");
    for (let i = 0; i < 100; i++) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = connect(this.port, "127.0.0.1", () => {
          socket.destroy();
          resolve(true);
        });
        socket.on("error", () => resolve(false));
      });
      if (ok) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`sshd did not listen on 127.0.0.1:${this.port}`);
  }

  /** A known_hosts file trusting `key` (default: this server's real host key) for this server. */
  knownHosts(key: KeyPair = this.hostKey): string {
    const file = join(this.dir, `known_hosts-${Math.random().toString(16).slice(2, 8)}`);
    const [type, blob] = key.publicKey.split(" ");
    writeFileSync(file, `[127.0.0.1]:${this.port} ${type} ${blob}\n`);
    return file;
  }

  /** Creates a bare repository; returns its ssh:// URL. */
  createRepo(name: string): string {
    execFileSync("git", [
      "init",
      "--quiet",
      "--bare",
      "--initial-branch=main",
      join(this.dir, "repos", `${name}.git`),
    ]);
    return this.url(name);
  }

  /** The ssh:// URL of a repository. */
  url(name: string): string {
    return `ssh://${USER}@127.0.0.1:${this.port}${join(this.dir, "repos", `${name}.git`)}`;
  }

  /** The bare repository's path on disk (tests push to it directly). */
  bareDir(name: string): string {
    return join(this.dir, "repos", `${name}.git`);
  }

  /** Stops sshd and removes everything. */
  async close(): Promise<void> {
    this.process.kill("SIGTERM");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A scratch clone that commits files (optionally SSH-signed) and pushes them to a bare repository path. */
export class Committer {
  readonly work: string;
  constructor(bare: string) {
    this.work = mkdtempSync(join(tmpdir(), "berth-work-"));
    this.git("init", "--quiet", "--initial-branch=main");
    this.git("remote", "add", "origin", bare);
  }

  private git(...args: string[]): string {
    return execFileSync("git", args, {
      cwd: this.work,
      encoding: "utf8",
      env: {
        PATH: process.env.PATH ?? "",
        HOME: this.work,
        GIT_CONFIG_NOSYSTEM: "1",
        GIT_AUTHOR_NAME: "Test",
        GIT_AUTHOR_EMAIL: "test@example.test",
        GIT_COMMITTER_NAME: "Test",
        GIT_COMMITTER_EMAIL: "test@example.test",
      },
    }).trim();
  }

  /** Writes files, commits (signed with `signingKey` if given), pushes main; returns the SHA. */
  commit(files: Record<string, string>, message: string, signingKey?: string): string {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(this.work, path, ".."), { recursive: true });
      writeFileSync(join(this.work, path), text);
    }
    this.git("add", "--all");
    const sign = signingKey
      ? ["-c", "gpg.format=ssh", "-c", `user.signingkey=${signingKey}`, "commit", "-S"]
      : ["commit"];
    this.git(...sign, "--quiet", "--allow-empty", "-m", message);
    this.git("push", "--quiet", "--force", "origin", "HEAD:refs/heads/main");
    return this.git("rev-parse", "HEAD");
  }
}
