#!/usr/bin/env bun
/** Entry of the berth binary: hands the command line to the CLI shell and exits with its code. */
import { cli } from "./cli/cli.ts";

if (import.meta.main) {
  process.exitCode = await cli(process.argv.slice(2), {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
    tty: Boolean(process.stderr.isTTY),
    // Colour only on a terminal, and never when NO_COLOR is set (no-color.org).
    color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
  });
}
