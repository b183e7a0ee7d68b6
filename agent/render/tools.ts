/**
 * Running render tools (kustomize, helm, sops): found by configured path or PATH lookup, started with an
 * argument array (never a shell), bounded by a timeout and an output size limit, fed only a private copy of
 * the repository snapshot.
 */
import { spawn } from "node:child_process";
import { accessSync, constants, readFileSync } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, dirname, isAbsolute, join, relative } from "node:path";
import { BerthError } from "../object/errors.ts";
import { BlobTooLargeError, type Snapshot } from "../object/snapshot.ts";
import { resolvePath } from "./resolve-path.ts";

/** A render tool berth can run. */
export type ToolName = "kustomize" | "helm" | "sops";

/** Where the tools are and how far they may go. */
export interface ToolSettings {
  /** Binary paths; unset ones are looked up on PATH. */
  paths?: Partial<Record<ToolName, string>>;
  /** Milliseconds one tool run may take (default 60 s). */
  timeoutMs?: number;
  /** Bytes of stdout one run may print (default 16 MiB). */
  maxOutputBytes?: number;
  /** Address space one run may map, bytes (default 512 MiB; 0: no limit). */
  maxMemoryBytes?: number;
  /** CPU seconds one run may use (default 60; 0: no limit). */
  maxCpuSeconds?: number;
}

/** Defaults of ToolSettings. */
export const TOOL_DEFAULTS = {
  timeoutMs: 60_000,
  maxOutputBytes: 16 * 1024 * 1024,
  maxMemoryBytes: 512 * 1024 * 1024,
  maxCpuSeconds: 60,
} as const;

const INSTALL_HINT: Record<ToolName, string> = {
  kustomize: "install kustomize (sigs.k8s.io/kustomize/kustomize/v5) or set render.kustomize",
  helm: "install helm (helm.sh/helm/v3) or set render.helm",
  sops: "install sops (github.com/getsops/sops/v3) or set render.sops",
};

/** The tool's binary: the configured path, else the first executable of that name on PATH; undefined if none. */
export function findTool(
  name: ToolName,
  settings: ToolSettings = {},
  path = process.env.PATH ?? "",
): string | undefined {
  const configured = settings.paths?.[name];
  if (configured !== undefined) return isExecutable(configured) ? configured : undefined;
  return findOnPath(name, path);
}

/** findTool, or a BerthError naming what to install. */
export function requireTool(name: ToolName, settings: ToolSettings = {}): string {
  const found = findTool(name, settings);
  if (found) return found;
  const where = settings.paths?.[name];
  const why = where === undefined ? "not found on PATH" : `${where} is not an executable file`;
  throw new BerthError(`${name} is needed to render this app but ${why}: ${INSTALL_HINT[name]}`, {
    subject: name,
    reason: "BuildFailed",
  });
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** What a tool run printed. */
export interface ToolOutput {
  stdout: string;
  stderr: string;
}

/**
 * Address space granted on top of `maxMemory` for the hard ceiling: a Go tool reserves far more virtual memory
 * than it uses (measured: `helm template` of a one-object chart, 47 MB resident, fails to start under about
 * 1.35 GiB of RLIMIT_AS and always starts at 1.4 GiB), so RLIMIT_AS alone cannot express "512 MiB". The precise
 * limit is the resident-memory watchdog in runTool(); RLIMIT_AS is the backstop should the watchdog be too slow.
 */
export const ADDRESS_SPACE_HEADROOM = 3 * 1024 * 1024 * 1024;

/**
 * The command line that runs `binary args…` under the hard ceilings: RLIMIT_AS (address space: `maxMemoryBytes`
 * plus ADDRESS_SPACE_HEADROOM, a backstop should the watchdog be too slow) and RLIMIT_CPU (a busy loop ends with
 * SIGXCPU). util-linux `prlimit` sets both; without it, the POSIX shell's `ulimit` does (the arguments are passed
 * as "$@", never interpolated). Both exec the tool, so it keeps the child's pid for the watchdog.
 */
export function limitedCommand(
  binary: string,
  args: readonly string[],
  limits: { maxMemoryBytes: number; maxCpuSeconds: number },
  path = process.env.PATH ?? "",
): { command: string; args: string[] } {
  const { maxCpuSeconds: cpu } = limits;
  const mem = limits.maxMemoryBytes > 0 ? limits.maxMemoryBytes + ADDRESS_SPACE_HEADROOM : 0;
  if (mem <= 0 && cpu <= 0) return { command: binary, args: [...args] };
  const prlimit = findOnPath("prlimit", path);
  if (prlimit) {
    const flags = [...(mem > 0 ? [`--as=${mem}`] : []), ...(cpu > 0 ? [`--cpu=${cpu}`] : [])];
    return { command: prlimit, args: [...flags, "--", binary, ...args] };
  }
  const sh = findOnPath("sh", path) ?? "/bin/sh";
  const ulimits = [
    ...(mem > 0 ? [`ulimit -v ${Math.ceil(mem / 1024)}`] : []),
    ...(cpu > 0 ? [`ulimit -t ${cpu}`] : []),
  ];
  return { command: sh, args: ["-c", `${ulimits.join(" && ")} && exec "$0" "$@"`, binary, ...args] };
}

function findOnPath(name: string, path: string): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (dir !== "" && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** Runs `binary args…` in `cwd` with a minimal environment; rejects on timeout, oversize output, a limit or a non-zero exit. */
export function runTool(
  binary: string,
  args: readonly string[],
  options: {
    cwd: string;
    env?: Record<string, string>;
    /** Timeout, output, memory and CPU limits (defaults: TOOL_DEFAULTS). */
    settings?: ToolSettings;
    label: string;
    /** Written to the tool's stdin (a password for `--password-stdin`, never an argument others can read). */
    input?: string;
  },
): Promise<ToolOutput> {
  const settings = options.settings ?? {};
  const timeoutMs = settings.timeoutMs ?? TOOL_DEFAULTS.timeoutMs;
  const maxOutput = settings.maxOutputBytes ?? TOOL_DEFAULTS.maxOutputBytes;
  const limits = {
    maxMemoryBytes: settings.maxMemoryBytes ?? TOOL_DEFAULTS.maxMemoryBytes,
    maxCpuSeconds: settings.maxCpuSeconds ?? TOOL_DEFAULTS.maxCpuSeconds,
  };
  return new Promise((resolve, reject) => {
    // No inherited environment: the tools get no cloud credentials, proxies or kubeconfig of the agent.
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: options.cwd, ...(options.env ?? {}) };
    const run = limitedCommand(binary, args, limits);
    // Its own process group, so a timeout kills whatever the tool started too (a child holding the pipe open).
    const child = spawn(run.command, run.args, {
      cwd: options.cwd,
      env,
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      detached: true,
    });
    if (options.input !== undefined && child.stdin) {
      // A tool that exits before reading stdin must not crash the agent with EPIPE.
      child.stdin.on("error", () => {});
      child.stdin.end(options.input);
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outBytes = 0;
    let errBytes = 0;
    let failure: string | undefined;
    const stop = (why: string): void => {
      failure ??= why;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    };
    const timer = setTimeout(() => stop(`timed out after ${timeoutMs} ms`), timeoutMs);
    // The resident-memory watchdog: what the tool really holds, read every 50 ms (Linux /proc).
    const watchdog =
      limits.maxMemoryBytes > 0 && child.pid !== undefined
        ? setInterval(() => {
            const rss = residentBytes(child.pid as number);
            if (rss !== undefined && rss > limits.maxMemoryBytes)
              stop(
                `needed more than ${formatBytes(limits.maxMemoryBytes)} of memory (render.maxMemory) and was stopped at ${Math.round(rss / 2 ** 20)} MiB resident`,
              );
          }, 50)
        : undefined;
    child.stdout?.on("data", (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > maxOutput) stop(`printed more than ${maxOutput} bytes`);
      else out.push(chunk);
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      // Only the start of stderr is kept for the message.
      if (errBytes < 64 * 1024) err.push(chunk);
      errBytes += chunk.length;
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      clearInterval(watchdog);
      reject(
        new BerthError(`cannot run ${binary}: ${e.message}`, {
          subject: options.label,
          reason: "BuildFailed",
        }),
      );
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      clearInterval(watchdog);
      const stderr = Buffer.concat(err).toString("utf8");
      if (failure !== undefined) {
        reject(new BerthError(failure, { subject: options.label, reason: "BuildFailed" }));
      } else if (code !== 0) {
        const over = overLimit(stderr, signal, limits);
        if (over) {
          reject(new BerthError(over, { subject: options.label, reason: "BuildFailed" }));
          return;
        }
        const why = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        const detail = stderr.trim().split("\n").slice(-5).join("; ");
        reject(
          new BerthError(`${why}${detail ? `: ${detail}` : ""}`, {
            subject: options.label,
            reason: "BuildFailed",
          }),
        );
      } else {
        resolve({ stdout: Buffer.concat(out).toString("utf8"), stderr });
      }
    });
  });
}

/** Which ceiling a failed run hit, from how it ended; undefined when it was not a limit. */
function overLimit(
  stderr: string,
  signal: NodeJS.Signals | null,
  limits: { maxMemoryBytes: number; maxCpuSeconds: number },
): string | undefined {
  if (limits.maxCpuSeconds > 0 && (signal === "SIGXCPU" || (signal === "SIGKILL" && /\bCPU\b/.test(stderr))))
    return `used more than ${limits.maxCpuSeconds} s of CPU time (render.maxCpu) and was stopped`;
  // Go: "fatal error: runtime: out of memory"; C tools: "Cannot allocate memory" (ENOMEM).
  if (limits.maxMemoryBytes > 0 && /out of memory|cannot allocate memory/i.test(stderr))
    return `needed more than ${formatBytes(limits.maxMemoryBytes)} of memory (render.maxMemory) and was stopped`;
  return undefined;
}

/** Resident memory of a process from /proc (undefined where there is none, or once it has exited). */
function residentBytes(pid: number): number | undefined {
  try {
    const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
    return kb === undefined ? undefined : Number(kb) * 1024;
  } catch {
    return undefined;
  }
}

function formatBytes(n: number): string {
  return n % (1024 * 1024) === 0 ? `${n / (1024 * 1024)} MiB` : `${n} bytes`;
}

/** A private (0700) temporary directory; `dispose` removes it. */
export async function privateTempDir(prefix: string): Promise<{ dir: string; dispose(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `berth-${prefix}-`));
  await chmod(dir, 0o700);
  return { dir, dispose: () => rm(dir, { recursive: true, force: true }) };
}

/** Entries one materialisation may write, so a hostile tree cannot fill the disk. */
export const MAX_MATERIALISED_ENTRIES = 100_000;
/** Bytes of files one materialisation may write: what one Git fetch may unpack (the tree can grow by commits). */
export const MAX_MATERIALISED_BYTES = 1024 * 1024 * 1024;

/**
 * Writes the snapshot's tree into `dir` (a private copy: the tool's only input). Symlinks inside the
 * repository become relative links; submodules are left out. A link that leaves the repository (or loops) is
 * refused when it lies under `strictUnder` (the app's own path: its render certainly reads it) and is left
 * out elsewhere — another app's bad link must not fail this app; a tool that does need it fails naming the
 * missing path, and the returned `leftOut` list says why. `transform` may rewrite a file's bytes (SOPS).
 */
export async function materialise(
  snapshot: Snapshot,
  dir: string,
  transform?: (path: string, bytes: Uint8Array) => Promise<Uint8Array>,
  strictUnder?: string,
  maxBytes = MAX_MATERIALISED_BYTES,
): Promise<{ leftOut: Array<{ path: string; message: string }> }> {
  let budget = MAX_MATERIALISED_ENTRIES;
  let bytesLeft = maxBytes;
  const leftOut: Array<{ path: string; message: string }> = [];
  const strict = (path: string) =>
    strictUnder !== undefined &&
    (strictUnder === "" || path === strictUnder || path.startsWith(`${strictUnder}/`));
  const walk = async (path: string): Promise<void> => {
    for (const entry of await snapshot.readDir(path)) {
      if (--budget < 0)
        throw new BerthError(`more than ${MAX_MATERIALISED_ENTRIES} entries`, { subject: "repository" });
      const target = join(dir, entry.path);
      if (entry.type === "tree") {
        await mkdir(target, { recursive: true, mode: 0o700 });
        await walk(entry.path);
      } else if (entry.type === "blob") {
        // Refused before it is read where the snapshot can tell its size.
        const bytes = await snapshot.readBlob(entry.path, { maxBytes: bytesLeft }).catch((err: unknown) => {
          if (!(err instanceof BlobTooLargeError)) throw err;
          throw new BerthError(`the files come to more than ${maxBytes} bytes (the limit of a copy)`, {
            subject: "repository",
          });
        });
        bytesLeft -= bytes.byteLength;
        await writeFile(target, transform ? await transform(entry.path, bytes) : bytes, { mode: 0o600 });
      } else if (entry.type === "symlink") {
        const resolved = await resolvePath(snapshot, entry.path);
        if (!resolved.ok) {
          // A dangling link is left out quietly; a tool that needs it fails naming the path.
          if (resolved.kind === "missing") continue;
          if (strict(entry.path))
            throw new BerthError(resolved.message, { subject: entry.path, reason: "BuildFailed" });
          leftOut.push({ path: entry.path, message: resolved.message });
          continue;
        }
        const rel = relative(dirname(target), join(dir, resolved.path)) || ".";
        if (isAbsolute(rel))
          throw new BerthError("link target outside the repository", { subject: entry.path });
        await symlink(rel, target);
      }
    }
  };
  await walk("");
  return { leftOut };
}
