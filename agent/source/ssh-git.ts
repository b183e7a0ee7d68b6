/** Runs the system `git` (and through it `ssh`) with an argument array, a timeout and a clean environment. */
import { execFile, spawn } from "node:child_process";
import { BerthError } from "../object/errors.ts";
import { rememberedUntilFailure } from "./lock.ts";
import { DEFAULT_PACK_LIMITS } from "./pack-check.ts";

/** How git reaches an SSH server: deploy key and known_hosts; host keys are always checked strictly. */
export interface SshSettings {
  keyFile: string;
  knownHostsFile: string;
  /** Extra ssh options (tests: a non-default port is part of the URL, so none needed). */
  connectTimeoutSeconds?: number;
}

/** The `ssh` command line git runs, built from an argument array and quoted for git's shell. */
export function sshCommand(ssh: SshSettings): string {
  const args = [
    "ssh",
    "-F",
    "/dev/null",
    "-i",
    ssh.keyFile,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "IdentityAgent=none",
    "-o",
    "StrictHostKeyChecking=yes",
    "-o",
    `UserKnownHostsFile=${ssh.knownHostsFile}`,
    "-o",
    "GlobalKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    `ConnectTimeout=${ssh.connectTimeoutSeconds ?? 15}`,
  ];
  return args.map(shellQuote).join(" ");
}

/** What the limit's line on stderr starts with; runGit reports it instead of git's own complaint. */
const OWN_LINE = "berth: ";

/**
 * GIT_SSH_COMMAND for a source: `ssh` as above, what it passes to git cut at `maxBytes`. git has no fetch-side
 * size limit (receive.maxInputSize is for pushes), so the server's bytes are counted on their way in. `dd` passes
 * each read on at once (`head -c` would hold it in stdio's buffer, and the protocol wait for it); one byte more
 * means the server sent too much, and git fails on a pack cut short, having stored nothing of it. git appends
 * ` "$@"` (ssh's host and command) to this line, hence the shell function; GIT_SSH_VARIANT must say "ssh", as git
 * cannot tell from the function's name.
 */
export function boundedSshCommand(ssh: SshSettings, maxBytes: number): string {
  const n = Math.max(0, Math.floor(maxBytes));
  const over = shellQuote(
    `${OWN_LINE}the server sent more than ${n} bytes, the limit for one fetch (the source's limits.maxFetchBytes)`,
  );
  return `berth_ssh() { ${sshCommand(ssh)} "$@" | { dd bs=65536 iflag=count_bytes count=${n} status=none; if [ "$(head -c 1 | wc -c)" -ne 0 ]; then echo ${over} >&2; exit 1; fi; }; }; berth_ssh`;
}

const counting = new Map<string, Promise<void>>();

/**
 * Resolves when the tools boundedSshCommand pipes through work on `path` (the PATH git runs with; checked once
 * while they do); rejects naming what is missing. Without this, a `dd` lacking `iflag=count_bytes` (BusyBox
 * before 1.33) would fail on the first bytes, and the byte after them would read as a server sending too much.
 */
export function checkCountingTools(path: string): Promise<void> {
  // A probe that failed (a fork refused under load, a tool installed since) is run again next time.
  return rememberedUntilFailure(counting, path, () => probeCountingTools(path));
}

/** Counts three bytes down to two with dd, and one with head and wc, on `path`. */
function probeCountingTools(path: string): Promise<void> {
  const probe =
    "printf abc | dd bs=65536 iflag=count_bytes count=2 status=none; printf x | head -c 1 | wc -c";
  return new Promise<void>((resolve, reject) => {
    execFile(
      "sh",
      ["-c", probe],
      { env: { PATH: path, LC_ALL: "C" }, timeout: 10_000 },
      (err, stdout, stderr) => {
        if (!err && stdout.replace(/\s+/g, "") === "ab1") return resolve();
        const why = (stderr || err?.message || `the probe printed ${JSON.stringify(stdout)}`)
          .trim()
          .split("\n")[0];
        reject(
          new BerthError(
            `SSH sources need GNU coreutils' dd (with iflag=count_bytes), head and wc on the PATH, to bound what a fetch brings: ${why}`,
            { subject: `PATH=${path}`, reason: "FetchFailed" },
          ),
        );
      },
    );
  });
}

/**
 * True when `error` is runGit's for a server that sent more than boundedSshCommand's limit, or for git refusing
 * to allocate more than GIT_ALLOC_LIMIT (an object too large): fetching again, or more, cannot help.
 */
export function overFetchLimit(error: unknown): boolean {
  const stderr = (error as { stderr?: unknown } | undefined)?.stderr;
  return (
    typeof stderr === "string" &&
    stderr
      .split("\n")
      .some((l) => l.trim().startsWith(OWN_LINE) || /attempting to allocate \d+ over limit \d+/.test(l))
  );
}

/** POSIX single-quoting: the only way a value reaches git's `sh -c` unchanged. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./=:@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** What a git run printed. */
export interface GitOutput {
  stdout: Buffer;
  stderr: string;
}

/** What one git run may print: a blob of the most one Git fetch may bring (its output is held in memory). */
const MAX_OUTPUT_BYTES = DEFAULT_PACK_LIMITS.maxObjectBytes;

/** The git command `args` run (`fetch` of `--git-dir D fetch …`), for messages. */
export function commandOf(args: readonly string[]): string {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    // --git-dir, -c and -C take the next argument.
    if (arg === "--git-dir" || arg === "-c" || arg === "-C") i++;
    else if (!arg.startsWith("-")) return arg;
  }
  return args[0] ?? "";
}

/** A git run stopped for printing more than its limit. */
export class GitOutputTooLarge extends BerthError {}

/** Runs `git args…`; rejects with a BerthError naming `subject` and git's last stderr lines. */
export function runGit(
  args: readonly string[],
  options: { subject: string; env?: Record<string, string>; timeoutMs?: number; maxOutputBytes?: number },
): Promise<GitOutput> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxOutput = options.maxOutputBytes ?? MAX_OUTPUT_BYTES;
  return new Promise((resolve, reject) => {
    const env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? "/",
      GIT_TERMINAL_PROMPT: "0",
      GIT_CONFIG_NOSYSTEM: "1",
      GIT_CONFIG_GLOBAL: "/dev/null",
      LC_ALL: "C",
      ...(options.env ?? {}),
    };
    const child = spawn("git", [...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let printed = 0;
    let errBytes = 0;
    let overflow = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, timeoutMs);
    child.stdout.on("data", (c: Buffer) => {
      printed += c.byteLength;
      if (printed <= maxOutput) out.push(c);
      else if (!overflow) {
        overflow = true;
        child.kill("SIGKILL");
      }
    });
    child.stderr.on("data", (c: Buffer) => {
      // Its last lines go into the error; a chatty run must not fill memory, so only the first 64 KiB are kept.
      errBytes += c.byteLength;
      if (errBytes <= 64 * 1024) err.push(c);
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(
        new BerthError(`cannot run git: ${e.message}`, { subject: options.subject, reason: "FetchFailed" }),
      );
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString("utf8");
      if (overflow) {
        reject(
          new GitOutputTooLarge(`git printed more than ${maxOutput} bytes (the limit) and was stopped`, {
            subject: options.subject,
            reason: "FetchFailed",
          }),
        );
      } else if (timedOut) {
        reject(
          new BerthError(`git ${commandOf(args)} timed out after ${timeoutMs} ms`, {
            subject: options.subject,
            reason: "FetchFailed",
          }),
        );
      } else if (code !== 0) {
        // git's generic advice lines say nothing; ssh's own line (host key, permission) is what matters, and
        // berth's own line (a limit) says more than git's complaint about the stream it cut.
        const lines = stderr.split(/\r?\n/).map((l) => l.trim());
        const own = lines.filter((l) => l.startsWith(OWN_LINE)).map((l) => l.slice(OWN_LINE.length));
        const detail = (own.length > 0 ? own : lines)
          .filter(
            (l) =>
              l !== "" &&
              !/^(Please make sure|and the repository exists|fatal: Could not read from remote)/.test(l),
          )
          .slice(-3)
          .join("; ");
        const error = new BerthError(`git ${commandOf(args)} failed: ${detail || `exit code ${code}`}`, {
          subject: options.subject,
          reason: "FetchFailed",
        });
        (error as BerthError & { stderr?: string }).stderr = stderr;
        reject(error);
      } else {
        resolve({ stdout: Buffer.concat(out), stderr });
      }
    });
  });
}
