/**
 * Optional load beside a test file: with BERTH_TEST_LOAD=1, scripts/load/sync-loop.ts (a second control plane
 * and a 1,000-object sync loop) runs while the file's tests do, so a failure that shows only on a busy machine
 * can be reproduced on demand.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

const SCRIPT = join(import.meta.dir, "..", "..", "scripts", "load", "sync-loop.ts");

export interface Load {
  stop(): Promise<void>;
}

/** Starts the load when BERTH_TEST_LOAD=1 and resolves once its first sync round is under way. */
export async function startLoadIfAsked(): Promise<Load> {
  if (process.env.BERTH_TEST_LOAD !== "1") return { stop: async () => {} };
  const child: ChildProcess = spawn(process.execPath, [SCRIPT, "--seconds", "3600"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (d: Buffer) => {
      process.stderr.write(`[load] ${d}`);
      if (d.toString().includes('"event":"started"')) resolve();
    });
    child.once("exit", (code) => reject(new Error(`the load script exited early (${code})`)));
  });
  return {
    stop: async () => {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    },
  };
}
