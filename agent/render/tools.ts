/**
 * Running render tools (kustomize, helm, sops): found by configured path or PATH lookup, started with an
 * argument array (never a shell), bounded by a timeout and an output size limit, fed only a private copy of
 * the repository snapshot.
 */
import { spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, dirname, isAbsolute, join, relative } from "node:path";
import { BerthError } from "../object/errors.ts";
import type { Snapshot } from "../object/snapshot.ts";
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
}

/** Defaults of ToolSettings. */
export const TOOL_DEFAULTS = { timeoutMs: 60_000, maxOutputBytes: 16 * 1024 * 1024 } as const;

const INSTALL_HINT: Record<ToolName, string> = {
  kustomize: "install kustomize (sigs.k8s.io/kustomize/kustomize/v5) or set render.tools.kustomize",
  helm: "install helm (helm.sh/helm/v3) or set render.tools.helm",
  sops: "install sops (github.com/getsops/sops/v3) or set render.tools.sops",
};

/** The tool's binary: the configured path, else the first executable of that name on PATH; undefined if none. */
export function findTool(
  name: ToolName,
  settings: ToolSettings = {},
  path = process.env.PATH ?? "",
): string | undefined {
  const configured = settings.paths?.[name];
  if (configured !== undefined) return isExecutable(configured) ? configured : undefined;
  for (const dir of path.split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
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

/** Runs `binary args…` in `cwd` with a minimal environment; rejects on timeout, oversize output or a non-zero exit. */
export function runTool(
  binary: string,
  args: readonly string[],
  options: {
    cwd: string;
    env?: Record<string, string>;
    timeoutMs?: number;
    maxOutputBytes?: number;
    label: string;
  },
): Promise<ToolOutput> {
  const timeoutMs = options.timeoutMs ?? TOOL_DEFAULTS.timeoutMs;
  const maxOutput = options.maxOutputBytes ?? TOOL_DEFAULTS.maxOutputBytes;
  return new Promise((resolve, reject) => {
    // No inherited environment: the tools get no cloud credentials, proxies or kubeconfig of the agent.
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: options.cwd, ...(options.env ?? {}) };
    // Its own process group, so a timeout kills whatever the tool started too (a child holding the pipe open).
    const child = spawn(binary, [...args], {
      cwd: options.cwd,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
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
    child.stdout.on("data", (chunk: Buffer) => {
      outBytes += chunk.length;
      if (outBytes > maxOutput) stop(`printed more than ${maxOutput} bytes`);
      else out.push(chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      // Only the start of stderr is kept for the message.
      if (errBytes < 64 * 1024) err.push(chunk);
      errBytes += chunk.length;
    });
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(
        new BerthError(`cannot run ${binary}: ${e.message}`, {
          subject: options.label,
          reason: "BuildFailed",
        }),
      );
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const stderr = Buffer.concat(err).toString("utf8");
      if (failure !== undefined) {
        reject(new BerthError(failure, { subject: options.label, reason: "BuildFailed" }));
      } else if (code !== 0) {
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

/** A private (0700) temporary directory; `dispose` removes it. */
export async function privateTempDir(prefix: string): Promise<{ dir: string; dispose(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `berth-${prefix}-`));
  await chmod(dir, 0o700);
  return { dir, dispose: () => rm(dir, { recursive: true, force: true }) };
}

/** Entries one materialisation may write, so a hostile tree cannot fill the disk. */
export const MAX_MATERIALISED_ENTRIES = 100_000;

/**
 * Writes the snapshot's tree into `dir` (a private copy: the tool's only input). Symlinks inside the
 * repository become relative links; links that leave it are refused; submodules are left out.
 * `transform` may rewrite a file's bytes (SOPS decryption).
 */
export async function materialise(
  snapshot: Snapshot,
  dir: string,
  transform?: (path: string, bytes: Uint8Array) => Promise<Uint8Array>,
): Promise<void> {
  let budget = MAX_MATERIALISED_ENTRIES;
  const walk = async (path: string): Promise<void> => {
    for (const entry of await snapshot.readDir(path)) {
      if (--budget < 0)
        throw new BerthError(`more than ${MAX_MATERIALISED_ENTRIES} entries`, { subject: "repository" });
      const target = join(dir, entry.path);
      if (entry.type === "tree") {
        await mkdir(target, { recursive: true, mode: 0o700 });
        await walk(entry.path);
      } else if (entry.type === "blob") {
        const bytes = await snapshot.readBlob(entry.path);
        await writeFile(target, transform ? await transform(entry.path, bytes) : bytes, { mode: 0o600 });
      } else if (entry.type === "symlink") {
        const resolved = await resolvePath(snapshot, entry.path);
        if (!resolved.ok) {
          // A dangling or escaping link is left out; a tool that needs it fails naming the path.
          if (resolved.kind === "missing") continue;
          throw new BerthError(resolved.message, { subject: entry.path, reason: "BuildFailed" });
        }
        const rel = relative(dirname(target), join(dir, resolved.path)) || ".";
        if (isAbsolute(rel))
          throw new BerthError("link target outside the repository", { subject: entry.path });
        await symlink(rel, target);
      }
    }
  };
  await walk("");
}
