/** Helper servers the tests start as child processes (Gitea, versitygw, Alertmanager …): readiness and stop. */
import type { ChildProcess } from "node:child_process";

/** Kills a child with SIGKILL and waits until it has exited; nothing if it is gone already. */
export async function killAndWait(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

/**
 * Polls `ready()` every `everyMs` until it says yes; fails with `output()` (the child's log) when the child exits
 * first or after `timeoutMs`, naming `what` and `where`.
 */
export async function untilServing(
  what: string,
  where: string,
  child: ChildProcess,
  ready: () => Promise<boolean>,
  output: () => string,
  timeoutMs: number,
  everyMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await ready().catch(() => false)) return;
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}): ${output()}`);
    if (Date.now() > deadline) throw new Error(`${what} did not get ready on ${where}: ${output()}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A helper server a test can take down and bring back (same port, same data), and finally remove. */
export interface RestartableServer {
  /** Kills the server; its data stays. */
  stop(): Promise<void>;
  /** Starts it again where it was. */
  start(): Promise<void>;
  /** Stops it and removes its data. */
  close(): Promise<void>;
}

/** The last `keep` characters a child wrote to stderr (and stdout, with `both`), for error messages. */
export function outputOf(child: ChildProcess, both = false, keep = 8000): () => string {
  let text = "";
  const add = (d: Buffer) => {
    text = (text + d.toString()).slice(-keep);
  };
  child.stderr?.on("data", add);
  if (both) child.stdout?.on("data", add);
  return () => text;
}
