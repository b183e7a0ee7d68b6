/** Builds the compiled binary once per test run and runs it. */
import {
  type ChildProcessByStdio,
  type ChildProcessWithoutNullStreams,
  execFileSync,
  spawn,
} from "node:child_process";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { eventually } from "./cluster.ts";
import { freePort } from "./ports.ts";

const ROOT = join(import.meta.dir, "..", "..");
let built: string | undefined;

/** Path of dist/berth, compiled from the current tree on first use. */
export function berthBinary(): string {
  if (!built) {
    const out = execFileSync("bash", [join(ROOT, "scripts", "build.sh")], { cwd: ROOT, encoding: "utf8" });
    built = join(ROOT, out.trim().split("\n").at(-1) ?? "");
  }
  return built;
}

/**
 * Runs the binary to completion; resolves to exit code and output. Asynchronous on purpose: the test Git
 * server runs in this process and must keep answering while the binary talks to it.
 */
export async function runBerth(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000) {
  return runToEnd(
    spawn(berthBinary(), args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env },
    }),
    timeoutMs,
  );
}

/** Starts the binary in the background (e.g. `run`), collecting its output. */
export function startBerth(args: string[], env: Record<string, string> = {}) {
  return inBackground(
    spawn(berthBinary(), args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } }),
  );
}

/** Waits for a child to end (killing it after `timeoutMs`, 2 minutes unless given; 0 waits forever); resolves to its exit code and output. */
export async function runToEnd(
  child: ChildProcessWithoutNullStreams | ChildProcessByStdio<null, Readable, Readable>,
  timeoutMs = 120_000,
) {
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const timer = timeoutMs > 0 ? setTimeout(() => child.kill("SIGKILL"), timeoutMs) : undefined;
  const code = await new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Collects a background child's stdout and stderr together; `exited` resolves to its exit code. */
export function inBackground(
  child: ChildProcessWithoutNullStreams | ChildProcessByStdio<null, Readable, Readable>,
) {
  let output = "";
  child.stdout.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, exited, output: () => output };
}

/** Waits until a `berth run` answers 200 on `<base>/readyz`: its first pass over the apps has ended. */
export async function untilReady(base: string, what: string, timeoutMs: number): Promise<void> {
  await eventually(what, timeoutMs, async () =>
    (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined,
  );
}

/** A loopback address for a `berth run` API: its port and base URL. */
export async function apiAddress(): Promise<{ port: number; base: string }> {
  const port = await freePort();
  return { port, base: `http://127.0.0.1:${port}` };
}

/** GETs a path of a berth API with a bearer token; resolves to the status and the JSON body. */
export async function getJson<T = unknown>(
  base: string,
  path: string,
  token: string,
): Promise<{ status: number; body: T }> {
  const r = await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${token}` } });
  return { status: r.status, body: (await r.json()) as T };
}

/** A row of `berth ledger list --json`. */
export interface LedgerRow {
  id: number;
  outcome: string;
  reason: string;
  message: string;
  revision: string;
}

/** The app's ledger rows, newest first, as `berth ledger list --json` prints them. */
export async function ledgerRows(configPath: string, app: string): Promise<LedgerRow[]> {
  return JSON.parse(
    (await runBerth(["ledger", "list", "--json", "--app", app, "--config", configPath])).stdout,
  );
}
