/**
 * berth under each runtime it ships on — the compiled Bun binary, Deno (dist/berth-deno) and Node 20
 * (dist/berth.mjs) — built once per test run by scripts/build.sh, and run asynchronously (the test Git
 * server lives in this process and must keep answering while berth talks to it).
 */
import { execFileSync, spawn } from "node:child_process";
import { join } from "node:path";
import { berthBinary, inBackground, runToEnd } from "./binary.ts";

const ROOT = join(import.meta.dir, "..", "..");

/** The three ways berth runs. */
export const RUNTIMES = ["binary", "deno", "node"] as const;
export type Runtime = (typeof RUNTIMES)[number];

/** What `berth version --json` reports as `runtime` (its first word) under each. */
export const RUNTIME_NAME: Record<Runtime, string> = { binary: "bun", deno: "deno", node: "node" };

const built = new Map<Runtime, string[]>();

/** The argv prefix that runs berth under `runtime`, building it on first use (synchronously: call it early). */
export function berthCommand(runtime: Runtime): string[] {
  let cmd = built.get(runtime);
  if (!cmd) {
    if (runtime === "binary") cmd = [berthBinary()];
    else {
      const out = execFileSync("bash", [join(ROOT, "scripts", "build.sh"), runtime], {
        cwd: ROOT,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
      const file = join(ROOT, out.trim().split("\n").at(-1) ?? "");
      // Under `bun test`, process.execPath is Bun: Node is whatever `node` PATH finds (Node 20 in CI).
      cmd = runtime === "node" ? ["node", file] : [file];
    }
    built.set(runtime, cmd);
  }
  return cmd;
}

/** A process berth runs in, with only PATH, HOME and `env` set (so no stray KUBECONFIG or token leaks in). */
function spawnBerth(runtime: Runtime, args: string[], env: Record<string, string>) {
  const [exe, ...pre] = berthCommand(runtime);
  return spawn(exe ?? "false", [...pre, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? "/root", ...env },
  });
}

/** Runs berth to completion under `runtime`; resolves to exit code and output. */
export function runUnder(runtime: Runtime, args: string[], env: Record<string, string> = {}) {
  return runToEnd(spawnBerth(runtime, args, env));
}

/** Starts berth in the background under `runtime` (e.g. `run`), collecting stdout and stderr together. */
export function startUnder(runtime: Runtime, args: string[], env: Record<string, string> = {}) {
  return inBackground(spawnBerth(runtime, args, env));
}

/** The API address `berth run` logged ("api": "http://host:port"), once it has. */
export function apiUrlIn(output: string): string | undefined {
  return /"api":"(http:\/\/[^"]+)"/.exec(output)?.[1];
}
