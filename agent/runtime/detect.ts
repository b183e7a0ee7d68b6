/** Which JavaScript runtime runs this process, read from its globals; every runtime switch in berth asks here. */

/** The runtimes berth runs on: the compiled binary (Bun), Deno 2 and Node 20. */
export type Runtime = "bun" | "deno" | "node";

interface RuntimeGlobals {
  Bun?: { version: string };
  Deno?: { version: { deno: string } };
}

/** The runtime this process runs on. */
export function currentRuntime(): Runtime {
  const g = globalThis as RuntimeGlobals;
  if (g.Bun !== undefined) return "bun";
  if (g.Deno !== undefined) return "deno";
  return "node";
}

/** The runtime named with its version, as `bun 1.2.3`, `deno 2.1.0` or `node 20.11.0`. */
export function runtimeName(): string {
  const g = globalThis as RuntimeGlobals;
  if (g.Bun) return `bun ${g.Bun.version}`;
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  return `node ${process.versions.node}`;
}
