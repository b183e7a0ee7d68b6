#!/usr/bin/env bun
/** Entry of the berth binary: parses the command line and dispatches to a command. */
import { buildInfo } from "./version.ts";

const USAGE = `berth — a GitOps agent for small teams

usage: berth <command> [flags]

commands:
  version [--json]   print the version, commit and runtime
  help               print this help
`;

/** Runs one command line and returns the process exit code (0 ok, 2 usage error). */
export function main(argv: string[], out: (s: string) => void, err: (s: string) => void): number {
  const [command, ...rest] = argv;
  switch (command) {
    case "version":
    case "--version": {
      const info = buildInfo();
      if (rest.includes("--json")) out(`${JSON.stringify(info)}\n`);
      else out(`berth ${info.version} (commit ${info.commit}, ${info.runtime})\n`);
      return 0;
    }
    case undefined:
    case "help":
    case "--help":
    case "-h":
      out(USAGE);
      return 0;
    default:
      err(`berth: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

if (import.meta.main) {
  process.exitCode = main(
    process.argv.slice(2),
    (s) => process.stdout.write(s),
    (s) => process.stderr.write(s),
  );
}
