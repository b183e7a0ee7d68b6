/**
 * `berth run` in the compiled binary runs JavaScriptCore without its JIT compilers. A long-running agent spends
 * most of its life at rest, where resident memory is what it costs the box: with 1,000 objects watched it held
 * 86–87 MB without the JIT against 124 MB with it, the first sync's peak 95–97 MB against 147–153 MB, and an
 * idle agent with one object 66–68 MB against 82 MB; the price is CPU time: a warm no-op of 1,000 objects
 * 0.043–0.048 s against 0.030–0.036 s, their first sync 16–17 s against 13.5–16.5 s (scripts/bench/README.md,
 * "the final binary"). One-shot commands (`berth sync`, `plan`, …) keep the JIT: they are short, and their
 * time is what the user waits for.
 *
 * It also raises Bun's cap on HTTP requests in flight at once (BUN_CONFIG_MAX_HTTP_REQUESTS, 256 by default)
 * to its largest value. Every watch of the live view is a request that stays open: one per kind for apps on the
 * agent's own client, one per app, kind and namespace for an app with a ServiceAccount of its own. Past 256 of
 * them (86 such apps of 3 kinds) every other request, a Git poll, a dry-run, an apply, queued behind watches
 * until one re-opened: 10,000 objects in 100 apps took 95 s for a no-op of every app, 4 apps every 3.4 s, when
 * every app had watches of its own (scripts/bench/README.md, "Scale"). The cap is not a memory reservation: an
 * agent at rest is as large either way. Node's and Deno's clients have no such cap.
 *
 * Bun reads both once, at start, from its environment, so `berth run` re-executes itself (execve: the same
 * process id, nothing forked) with them set, before anything else is loaded. `BERTH_JIT=on` keeps the JIT; a
 * BUN_JSC_useJIT or BUN_CONFIG_MAX_HTTP_REQUESTS the user set is left as it is.
 */
import { parseArgs } from "node:util";
import { OPTIONS } from "./options.ts";

/** Bun's largest cap on HTTP requests in flight at once: every watch stays open. */
export const MAX_HTTP_REQUESTS = "65535";

/** The environment to re-execute `berth run` with, an error for a BERTH_JIT value that means nothing, or nothing. */
export function runEnvironment(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): { env: Record<string, string> } | { error: string } | undefined {
  const { positionals } = parseArgs({
    args: [...argv],
    options: OPTIONS,
    allowPositionals: true,
    strict: false,
  });
  if (positionals[0] !== "run") return undefined;
  const setting = (env.BERTH_JIT ?? "off").toLowerCase();
  if (!["on", "off"].includes(setting))
    return {
      error: `BERTH_JIT=${env.BERTH_JIT}: use on (keep the JIT compilers) or off (the default for run)`,
    };
  // Each is set unless already set: by this re-execution, or by the user on purpose.
  const wanted: Record<string, string> = {};
  if (setting === "off" && env.BUN_JSC_useJIT === undefined) wanted.BUN_JSC_useJIT = "0";
  if (env.BUN_CONFIG_MAX_HTTP_REQUESTS === undefined) wanted.BUN_CONFIG_MAX_HTTP_REQUESTS = MAX_HTTP_REQUESTS;
  if (Object.keys(wanted).length === 0) return undefined;
  const next: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) next[k] = v;
  return { env: { ...next, ...wanted } };
}

/**
 * Re-executes the compiled binary per runEnvironment; returns an error to print, or nothing (then the caller goes
 * on: not the compiled binary, not `run`, or no execve in this runtime).
 */
export function tuneRuntime(moduleUrl: string): string | undefined {
  // Only the compiled binary: from source, execPath is `bun` itself and would read the arguments as its own.
  if (!moduleUrl.includes("/$bunfs/")) return undefined;
  const execve = (process as { execve?: (file: string, args: string[], env: Record<string, string>) => void })
    .execve;
  if (typeof execve !== "function") return undefined;
  const decided = runEnvironment(process.argv.slice(2), process.env);
  if (!decided) return undefined;
  if ("error" in decided) return decided.error;
  execve(process.execPath, [process.execPath, ...process.argv.slice(2)], decided.env);
  return undefined;
}
