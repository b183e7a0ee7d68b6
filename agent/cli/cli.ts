/** The command-line shell: parses flags, runs a command over the engine, decides the exit code. */
import { parseArgs } from "node:util";
import { createLogger, silentLogger } from "../engine/log.ts";
import { messageOf } from "../object/errors.ts";
import { buildInfo } from "../version.ts";
import { ledgerCommand } from "./commands/ledger.ts";
import { planCommand } from "./commands/plan.ts";
import { runCommand } from "./commands/run.ts";
import { statusCommand } from "./commands/status.ts";
import { syncCommand } from "./commands/sync.ts";
import { validateCommand } from "./commands/validate.ts";
import { EXIT, type Io, OPTIONS, progress, type Values } from "./common.ts";
import { importCommand } from "./import-command.ts";
import { installCommand } from "./install-command.ts";
import {
  LEDGER_ADMIN_COMMANDS,
  ledgerAdminCommand,
  pinCommand,
  type ReplayFlags,
  replayCommand,
  unpinCommand,
} from "./replay-command.ts";
import { approveCommand, type RulesFlags, rulesCommand } from "./rules-command.ts";
import type { GlobalFlags } from "./wire.ts";

export { EXIT, type Io } from "./common.ts";

const USAGE = `berth — a GitOps agent for small teams

usage: berth <command> [flags]

commands:
  run                       sync every app continuously (Ctrl-C or SIGTERM stops after the current step)
  sync [--app NAME]         one sync pass; exit code 1 if any app failed
  plan [--app NAME]         show what a sync would change, without writing
  status                    last ledger entry per app
  status --server URL       ask a running agent (token: --token-file FILE or $BERTH_TOKEN)
  ledger list [--app NAME] [--limit N] [--before ID]
  ledger show ID            one entry with its objects
  ledger verify             check the hash chain and every stored manifest; exit 1 naming the first bad entry
  ledger gc [--dry-run]     drop entries past ledger.retention (kept: last healthy, pinned, approved), collect blobs
  ledger export FILE        consistent backup of the ledger, safe while berth runs
  ledger import FILE [--force]   verify a backup and install it at ledger.path
  ledger restore [--from s3://BUCKET/PREFIX] [--force]
                            rebuild the ledger at ledger.path from its off-box replica (ledger.replica)
  replay --app NAME --to ENTRY|COMMIT|last-healthy [--dry-run]
                            re-apply the manifests an entry recorded, without Git
  replay --all [--dry-run]  restore every app at its last healthy entry, in dependsOn order
  pin --app NAME --to ENTRY hold an app at an entry (replayed instead of Git) until unpin
  unpin --app NAME          release the pin; the next sync catches up to Git
  validate [--dir DIR]      check the config, and render every app (from DIR instead of Git)
  rules check [FILE|DIR...] compile rule files (default: the config's rules); exit 1 naming file:line and rule
  rules test [DIR|FILE...]  run rule fixtures (*.test.yaml); exit 1 if a case fails
  rules eval EXPR --object FILE   evaluate a CEL expression over an object
  approve --app NAME [--revision REV] [--expires 1h] [--override-window] [--by WHO]
                            let a sync held by a hold rule through (with --override-window: also a deferred one)
  install manifests [--namespaced] [--namespace NS] [--image IMAGE]
                            in-cluster manifests with least-privilege RBAC for what the apps render
  import flux FILE|DIR [--dir REPO_ROOT] [--out DIR] [--force]
                            convert Flux Kustomizations, HelmReleases and sources into a berth.yaml
  version                   print the version, commit and runtime

flags:
  --config FILE             default ./berth.yaml
  --kubeconfig FILE         default: $KUBECONFIG, ~/.kube/config, then in-cluster
  --context NAME            kubeconfig context
  --json                    machine-readable output (read commands)
`;

/** Runs one command line; resolves to the exit code. */
export async function cli(argv: string[], io: Io): Promise<number> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    }));
  } catch (err) {
    io.err(`berth: ${messageOf(err)}\n\n${USAGE}`);
    return EXIT.usage;
  }
  const [command, ...rest] = positionals;
  if (values.help || command === undefined || command === "help") {
    io.out(USAGE);
    return EXIT.ok;
  }
  const flags: GlobalFlags = { config: values.config };
  if (values.kubeconfig) flags.kubeconfig = values.kubeconfig;
  if (values.context) flags.context = values.context;
  const log = values.json ? silentLogger : createLogger({ human: io.tty, write: io.err });
  try {
    switch (command) {
      case "version": {
        const info = buildInfo();
        io.out(
          values.json
            ? `${JSON.stringify(info)}\n`
            : `berth ${info.version} (commit ${info.commit}, ${info.runtime})\n`,
        );
        return EXIT.ok;
      }
      case "sync":
        return await syncCommand(flags, values, io, log);
      case "plan":
        return await planCommand(flags, values, io);
      case "run":
        return await runCommand(flags, io, log);
      case "status":
        return await statusCommand(flags, values, io);
      case "ledger":
        if (LEDGER_ADMIN_COMMANDS.has(rest[0] ?? ""))
          return await ledgerAdminCommand(flags, replayFlags(values), rest, io);
        return await ledgerCommand(flags, values, rest, io);
      case "replay":
        return await replayCommand(
          flags,
          replayFlags(values),
          io,
          log,
          values.json ? undefined : progress(io),
        );
      case "pin":
        return await pinCommand(flags, replayFlags(values), io, log);
      case "unpin":
        return await unpinCommand(flags, replayFlags(values), io);
      case "validate":
        return await validateCommand(flags, values, io);
      case "rules":
        return await rulesCommand(flags, rulesFlags(values), rest, io);
      case "approve":
        return await approveCommand(flags, rulesFlags(values), io);
      case "import":
        return await importCommand(rest, { dir: values.dir, out: values.out, force: values.force }, io);
      case "install":
        return await installCommand(
          flags,
          { namespace: values.namespace, namespaced: values.namespaced, image: values.image },
          rest,
          io,
        );
      default:
        io.err(`berth: unknown command "${command}"\n\n${USAGE}`);
        return EXIT.usage;
    }
  } catch (err) {
    // Config, kubeconfig and ledger problems: the user must fix an input.
    io.err(`berth: ${messageOf(err)}\n`);
    return EXIT.usage;
  }
}

function replayFlags(values: Values): ReplayFlags {
  return {
    app: values.app,
    to: values.to,
    from: values.from,
    all: values.all,
    dryRun: values["dry-run"],
    force: values.force,
    json: values.json,
  };
}

function rulesFlags(values: Values): RulesFlags {
  return {
    json: values.json,
    object: values.object,
    app: values.app,
    revision: values.revision,
    expires: values.expires,
    overrideWindow: values["override-window"],
    by: values.by,
  };
}
