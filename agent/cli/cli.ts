/** The command-line shell: parses flags, runs a command over the engine, decides the exit code. */
import { parseArgs } from "node:util";
import { loadConfig } from "../config/config.ts";
import { createLogger } from "../engine/log.ts";
import { messageOf } from "../object/errors.ts";
import { buildInfo } from "../version.ts";
import { diffCommand } from "./commands/diff.ts";
import { ledgerCommand } from "./commands/ledger.ts";
import { planCommand } from "./commands/plan.ts";
import { runCommand } from "./commands/run.ts";
import { statusCommand } from "./commands/status.ts";
import { syncCommand } from "./commands/sync.ts";
import { validateCommand } from "./commands/validate.ts";
import {
  type Ctx,
  EXIT,
  failure,
  type Io,
  OPTIONS,
  printData,
  progress,
  UsageError,
  type Values,
} from "./common.ts";
import { completionScript } from "./completion.ts";
import { type CommandSpec, commandHelp, commandSpec, GLOBAL_FLAGS, overview } from "./help.ts";
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

/** Runs one command line; resolves to the exit code. */
export async function cli(argv: string[], io: Io): Promise<number> {
  // The command is the first word that names one: flags may come before it.
  const named = argv.find((a) => commandSpec(a) !== undefined || a === "__apps");
  const hint = named && named !== "help" ? `berth ${named} --help` : "berth --help";
  let values: Values;
  let positionals: string[];
  let given: string[];
  try {
    const parsed = parseArgs({
      args: argv,
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
    ({ values, positionals } = parsed);
    given = parsed.tokens.flatMap((t) => (t.kind === "option" ? [t.name] : []));
  } catch (err) {
    io.err(`berth: ${parseError(err)}; see \`${hint}\`\n`);
    return EXIT.usage;
  }
  const [command, ...rest] = positionals;
  if (command === undefined || (command === "help" && rest[0] === undefined && !values.help)) {
    if (command === undefined && !values.help && argv.length > 0) {
      io.err(`berth: no command given; see \`berth --help\`\n`);
      return EXIT.usage;
    }
    io.out(overview());
    return EXIT.ok;
  }
  if (command === "__apps") return appNamesForCompletion(values.config, io);
  const spec = commandSpec(command === "help" ? (rest[0] ?? "help") : command);
  if (!spec) {
    const what = command === "help" ? rest[0] : command;
    io.err(`berth: unknown command "${what}"; see \`berth --help\`\n`);
    return EXIT.usage;
  }
  if (values.help || command === "help") {
    io.out(commandHelp(spec));
    return EXIT.ok;
  }
  const allowed = new Set<string>([...GLOBAL_FLAGS, ...spec.flags]);
  const stray = given.find((f) => !allowed.has(f));
  if (stray !== undefined) {
    io.err(`berth: ${command} does not take --${stray}; see \`berth ${command} --help\`\n`);
    return EXIT.usage;
  }
  const output = outputOf(values, spec);
  if (typeof output !== "string") {
    io.err(`berth: ${output.error}; see \`berth ${command} --help\`\n`);
    return EXIT.usage;
  }
  const format = values["log-format"] ?? (io.tty ? "text" : "json");
  if (format !== "json" && format !== "text") {
    io.err(`berth: --log-format ${format}: use json or text; see \`berth ${command} --help\`\n`);
    return EXIT.usage;
  }
  if (output === "json") values.json = true;
  const flags: GlobalFlags = { config: values.config };
  if (values.kubeconfig) flags.kubeconfig = values.kubeconfig;
  if (values.context) flags.context = values.context;
  // Machine output on stdout keeps stderr for warnings and errors.
  const machine = output === "json" || output === "yaml";
  const log = createLogger({
    human: format === "text",
    level: values.quiet || machine ? "warn" : values.debug ? "debug" : "info",
    write: io.err,
  });
  const ctx: Ctx = { values, args: rest, log, output, logJson: format === "json" };
  if (!spec.apps && !spec.subcommands && !["rules", "completion"].includes(command) && rest.length > 0) {
    io.err(
      `berth: ${command} takes no arguments (got "${rest.join(" ")}"); see \`berth ${command} --help\`\n`,
    );
    return EXIT.usage;
  }
  try {
    switch (command) {
      case "version": {
        const info = buildInfo();
        if (machine) printData(io, output, info);
        else io.out(`berth ${info.version} (commit ${info.commit}, ${info.runtime})\n`);
        return EXIT.ok;
      }
      case "completion": {
        const script = completionScript(rest[0] ?? "");
        if (!script) throw new UsageError("usage: berth completion bash|zsh|fish");
        io.out(script);
        return EXIT.ok;
      }
      case "sync":
        return await syncCommand(flags, ctx, io);
      case "plan":
        return await planCommand(flags, ctx, io);
      case "diff":
        return await diffCommand(flags, ctx, io);
      case "run":
        return await runCommand(flags, ctx, io);
      case "status":
        return await statusCommand(flags, ctx, io);
      case "ledger":
        if (LEDGER_ADMIN_COMMANDS.has(rest[0] ?? "")) {
          if (output === "yaml") throw new UsageError(`ledger ${rest[0]} has no -o yaml (it offers json)`);
          return await ledgerAdminCommand(flags, camelFlags(values), rest, io);
        }
        return await ledgerCommand(flags, ctx, io);
      case "replay":
        return await replayCommand(flags, camelFlags(values), io, log, progress(io, ctx));
      case "pin":
        return await pinCommand(flags, camelFlags(values), io, log);
      case "unpin":
        return await unpinCommand(flags, camelFlags(values), io);
      case "validate":
        return await validateCommand(flags, ctx, io);
      case "rules":
        return await rulesCommand(flags, camelFlags(values), rest, io);
      case "approve":
        return await approveCommand(flags, camelFlags(values), io);
      case "import":
        return await importCommand(rest, { dir: values.dir, out: values.out, force: values.force }, io);
      default:
        return await installCommand(
          flags,
          { namespace: values.namespace, namespaced: values.namespaced, image: values.image },
          rest,
          io,
        );
    }
  } catch (err) {
    const { code, line, bug } = failure(err);
    io.err(`berth: ${line}\n`);
    if (bug)
      io.err(
        values.debug && err instanceof Error && err.stack
          ? `${err.stack}\n`
          : "berth: this is a bug in berth; --debug prints the stack\n",
      );
    return code;
  }
}

/** parseArgs' message in one line: "unknown flag --x", "--app needs a value". */
function parseError(err: unknown): string {
  const code = (err as { code?: string }).code;
  const msg = messageOf(err);
  const flag = /'(-{1,2}[^' ]+)/.exec(msg)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag) return `unknown flag ${flag}`;
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && flag)
    return /argument missing/.test(msg) ? `${flag} needs a value` : `${flag} takes no value`;
  return msg.split(/\.\s/)[0] ?? msg;
}

/** -o/--json as one output format, checked against what the command offers. */
function outputOf(values: Values, spec: CommandSpec): Ctx["output"] | { error: string } {
  const o = values.output ?? (values.json ? "json" : "text");
  if (o === "text") return "text";
  if (o !== "json" && o !== "yaml" && o !== "wide") return { error: `-o ${o}: use json, yaml or wide` };
  const offered = spec.output ?? (spec.flags.includes("json") ? ["json"] : []);
  if (!offered.includes(o))
    return {
      error: `${spec.name} has no -o ${o}${offered.length ? ` (it offers ${offered.join(", ")})` : ""}`,
    };
  return o;
}

/** `berth __apps`: the config's app names, for shell completion; silent when the config cannot be read. */
function appNamesForCompletion(configPath: string, io: Io): number {
  try {
    for (const app of loadConfig(configPath).apps) io.out(`${app.name}\n`);
    return EXIT.ok;
  } catch {
    return EXIT.failed;
  }
}

/** The flags as the replay, ledger and rules commands read them: camelCase (`dry-run` → `dryRun`). */
function camelFlags(values: Values): ReplayFlags & RulesFlags {
  return { ...values, dryRun: values["dry-run"], overrideWindow: values["override-window"] };
}
