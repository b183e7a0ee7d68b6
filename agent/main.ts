#!/usr/bin/env bun
/** Entry of the berth binary: hands the command line to the CLI shell and exits with its code. */
import { tuneRuntime } from "./cli/jit.ts";

if (import.meta.main) {
  // Before the CLI is loaded: `berth run` may re-execute itself with JavaScriptCore's JIT off (cli/jit.ts).
  const refused = tuneRuntime(import.meta.url);
  if (refused) {
    process.stderr.write(`berth: ${refused}\n`);
    process.exit(2);
  }
  const { cli } = await import("./cli/cli.ts");
  process.exitCode = await cli(process.argv.slice(2), {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    tty: Boolean(process.stderr.isTTY),
    // Colour only on a terminal, and never when NO_COLOR is set (no-color.org).
    color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
  });
}
