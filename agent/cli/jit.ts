/**
 * `berth run` in the compiled binary runs JavaScriptCore without its JIT compilers. A long-running agent spends
 * most of its life at rest, where resident memory is what it costs the box: with 1,000 objects watched it held
 * 86–87 MB without the JIT against 124 MB with it, the first sync's peak 95–97 MB against 147–153 MB, and an
 * idle agent with one object 66–68 MB against 82 MB; the price is CPU time: a warm no-op of 1,000 objects
 * 0.043–0.048 s against 0.030–0.036 s, their first sync 16–17 s against 13.5–16.5 s (scripts/bench/README.md,
 * "the final binary"). One-shot commands (`berth sync`, `plan`, …) keep the JIT: they are short, and their
 * time is what the user waits for.
 *
 * JavaScriptCore reads its options once, at start, from BUN_JSC_* variables, so `berth run` re-executes itself
 * (execve: the same process id, nothing forked) with the option set, before anything else is loaded.
 * `BERTH_JIT=on` keeps the JIT; a BUN_JSC_useJIT the user set is left as it is.
 */
import { parseArgs } from "node:util";
import { OPTIONS } from "./options.ts";

/** The environment to re-execute `berth run` with, an error for a BERTH_JIT value that means nothing, or nothing. */
export function jitEnvironment(
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
  // Already re-executed, or the user chose JavaScriptCore's setting directly.
  if (setting === "on" || env.BUN_JSC_useJIT !== undefined) return undefined;
  const next: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) next[k] = v;
  next.BUN_JSC_useJIT = "0";
  return { env: next };
}

/**
 * Re-executes the compiled binary per jitEnvironment; returns an error to print, or nothing (then the caller goes
 * on: not the compiled binary, not `run`, or no execve in this runtime).
 */
export function tuneRuntime(moduleUrl: string): string | undefined {
  // Only the compiled binary: from source, execPath is `bun` itself and would read the arguments as its own.
  if (!moduleUrl.includes("/$bunfs/")) return undefined;
  const execve = (process as { execve?: (file: string, args: string[], env: Record<string, string>) => void })
    .execve;
  if (typeof execve !== "function") return undefined;
  const decided = jitEnvironment(process.argv.slice(2), process.env);
  if (!decided) return undefined;
  if ("error" in decided) return decided.error;
  execve(process.execPath, [process.execPath, ...process.argv.slice(2)], decided.env);
  return undefined;
}
