/** What each command is, takes and prints: the per-command help, the overview, and what completion offers. */

/** One command of the CLI (a group such as `ledger` lists its subcommands). */
export interface CommandSpec {
  name: string;
  /** One line for the overview. */
  summary: string;
  /** The usage line(s), without the leading "berth ". */
  usage: string[];
  /** Flags this command reads beyond the global ones (names as in OPTIONS). */
  flags: string[];
  /** Subcommands, for a group (ledger, rules, install). */
  subcommands?: string[];
  /** Positional app names are accepted (completion offers the config's apps). */
  apps?: boolean;
  /** What `-o` accepts here. */
  output?: ReadonlyArray<"json" | "yaml" | "wide">;
  /** A longer description, the exit codes and examples. */
  details?: string;
  exits?: string;
  examples: string[];
}

/** Flags every command takes. */
export const GLOBAL_FLAGS = [
  "config",
  "kubeconfig",
  "context",
  "log-format",
  "quiet",
  "debug",
  "help",
] as const;

/** One line per flag. */
export const FLAG_HELP: Record<string, string> = {
  config: "--config FILE          the agent config (default ./berth.yaml)",
  kubeconfig: "--kubeconfig FILE      default: $KUBECONFIG, ~/.kube/config, then in-cluster",
  context: "--context NAME         kubeconfig context (default: its current-context)",
  "log-format": "--log-format json|text logs on stderr (default: text on a terminal, json otherwise)",
  quiet: "-q, --quiet            no progress lines and no info logs (warnings and errors only)",
  debug: "--debug                debug-level logs, and the stack of an internal error (a bug in berth)",
  help: "-h, --help             this help",
  json: "--json                 machine-readable output (same as -o json)",
  output: "-o, --output FORMAT    json, yaml or wide (a table with every column)",
  app: "--app NAME             one app (same as naming it: berth CMD NAME)",
  verbose: "-v, --verbose          also list unchanged objects",
  limit: "--limit N              at most N entries (N ≥ 1; default 50)",
  before: "--before ID            entries older than entry ID (paging)",
  to: "--to ENTRY|COMMIT|last-healthy   the ledger entry to restore",
  from: "--from s3://BUCKET/PREFIX        the replica to restore from (default ledger.replica.url)",
  all: "--all                  every app, in dependsOn order",
  "dry-run": "--dry-run              say what would happen, change nothing",
  force: "--force                overwrite what is there (ledger import/restore, import --out)",
  out: "--out DIR              where to write the result",
  dir: "--dir DIR              render from a directory instead of Git",
  server: "--server URL           ask a running agent (token: --token-file FILE or $BERTH_TOKEN)",
  "token-file": "--token-file FILE      the API token for --server",
  object: "--object FILE          the object (YAML or JSON) an expression is evaluated over",
  ref: "--ref REF              plan REF's head instead (a pull request's, e.g. refs/pull/7/head), as if merged",
  revision: "--revision REV         the revision approved (default: what the app is held at)",
  expires: "--expires DURATION     how long the approval holds (e.g. 1h)",
  "override-window": "--override-window      also let a sync deferred by a window through",
  by: "--by WHO               who approves (recorded in the ledger)",
  namespace: "--namespace NS         the agent's namespace",
  namespaced: "--namespaced           Role per namespace instead of a ClusterRole",
  image: "--image IMAGE          the agent's image",
};

const EXITS_SYNC =
  "exit codes: 0 every app synced, 1 an app failed, 2 an input error (config, flag, unknown app), 3 held for approval or deferred by a window (nothing failed)";

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: "run",
    summary: "sync every app continuously, serve the API, heal drift",
    usage: ["run"],
    flags: [],
    details:
      "Ctrl-C or SIGTERM stops after the current step; the stop is quiet. Logs go to stderr as JSON unless stderr is a terminal (set --log-format).",
    exits: "exit codes: 0 stopped cleanly, 2 an input error",
    examples: ["berth run", "berth run --config /etc/berth/berth.yaml --log-format json"],
  },
  {
    name: "sync",
    summary: "one sync pass over every app, or the ones named",
    usage: ["sync [APP...]"],
    flags: ["app", "json", "output"],
    apps: true,
    output: ["json", "yaml"],
    details:
      "Applies what changed in dependsOn order and waits for health; while it waits it says, every few seconds, which objects are not ready and why.",
    exits: EXITS_SYNC,
    examples: ["berth sync", "berth sync web db", "berth sync shop -o json --quiet"],
  },
  {
    name: "plan",
    summary: "what a sync would change, without writing",
    usage: ["plan [APP...] [--ref REF]"],
    flags: ["app", "ref", "json", "output", "verbose"],
    apps: true,
    output: ["json", "yaml"],
    exits: "exit codes: 0 the plan is clean, 1 a render or plan error or a blocking rule, 2 an input error",
    examples: [
      "berth plan",
      "berth plan web -v",
      "berth plan web -o yaml",
      "berth plan db --ref refs/pull/7/head",
    ],
  },
  {
    name: "diff",
    summary: "unified diff of live vs desired objects, like kubectl diff",
    usage: ["diff [APP...]"],
    flags: ["app"],
    apps: true,
    details:
      "Per object, the live object (---) against what a sync would apply (+++), as YAML, without berth's bookkeeping (berth.dev/* labels and annotations) and fields the server manages. Objects a sync would delete show as removed; Secret values are redacted.",
    exits:
      "exit codes (as kubectl diff): 0 no differences, 1 differences found, 2 an input error or the diff could not be computed",
    examples: ["berth diff", "berth diff web", "berth diff web | less -R"],
  },
  {
    name: "status",
    summary: "last ledger entry per app (or a running agent's view)",
    usage: ["status [APP...]", "status --server URL [--token-file FILE]"],
    flags: ["app", "json", "output", "server", "token-file"],
    apps: true,
    output: ["json", "yaml", "wide"],
    details: "Fits 100 columns: short revisions and relative times; -o wide adds every column.",
    exits: "exit codes: 0 ok, 1 the agent could not be asked, 2 an input error",
    examples: ["berth status", "berth status web -o wide", "berth status --server http://berth:8080 -o json"],
  },
  {
    name: "ledger",
    summary: "read, check, back up and restore the ledger",
    usage: [
      "ledger list [--app NAME] [--limit N] [--before ID]",
      "ledger show ID",
      "ledger verify",
      "ledger gc [--dry-run]",
      "ledger export FILE",
      "ledger import FILE [--force]",
      "ledger restore [--from s3://BUCKET/PREFIX] [--force]",
    ],
    subcommands: ["list", "show", "verify", "gc", "export", "import", "restore"],
    flags: ["app", "limit", "before", "json", "output", "dry-run", "force", "from"],
    output: ["json", "yaml"],
    details:
      "verify checks the hash chain and every stored manifest; gc drops entries past ledger.retention; export is safe while berth runs; import verifies a backup and installs it at ledger.path; restore rebuilds it from ledger.replica.",
    exits:
      "exit codes: 0 ok, 1 a check failed or the entry does not exist, 2 a usage error (e.g. ledger show abc)",
    examples: [
      "berth ledger list --app web --limit 5",
      "berth ledger show 42 -o yaml",
      "berth ledger verify",
    ],
  },
  {
    name: "replay",
    summary: "re-apply the manifests an entry recorded, without Git",
    usage: ["replay --app NAME --to ENTRY|COMMIT|last-healthy [--dry-run]", "replay --all [--dry-run]"],
    flags: ["app", "to", "all", "dry-run", "json"],
    exits: "exit codes: 0 restored, 1 failed (or a Secret could not be restored), 2 an input error",
    examples: ["berth replay --app web --to last-healthy", "berth replay --all --dry-run"],
  },
  {
    name: "pin",
    summary: "hold an app at an entry (replayed instead of Git) until unpin",
    usage: ["pin --app NAME --to ENTRY|COMMIT|last-healthy"],
    flags: ["app", "to", "json"],
    exits: "exit codes: 0 pinned, 1 the replay failed, 2 an input error",
    examples: ["berth pin --app web --to 41", "berth pin --app web --to last-healthy"],
  },
  {
    name: "unpin",
    summary: "release a pin; the next sync catches up to Git",
    usage: ["unpin --app NAME"],
    flags: ["app", "json"],
    examples: ["berth unpin --app web"],
  },
  {
    name: "validate",
    summary: "check the config (with warnings), and render every app offline",
    usage: ["validate [--dir DIR]"],
    flags: ["dir", "json", "output"],
    output: ["json", "yaml"],
    details:
      "Warns about settings that are valid but probably not meant: no ledger key (Secrets will not be restorable), an API with no tokens, an app that renders nothing health can judge, …",
    exits: "exit codes: 0 valid (warnings do not fail), 1 an app does not render, 2 the config is invalid",
    examples: ["berth validate", "berth validate --dir . -o json"],
  },
  {
    name: "rules",
    summary: "compile, test and evaluate rule files",
    usage: ["rules check [FILE|DIR...]", "rules test [DIR|FILE...]", "rules eval EXPR --object FILE"],
    subcommands: ["check", "test", "eval"],
    flags: ["json", "object"],
    exits: "exit codes: 0 ok, 1 a rule or fixture failed (naming file:line and rule), 2 a usage error",
    examples: [
      "berth rules check",
      "berth rules test rules/",
      "berth rules eval 'self.spec.replicas > 1' --object web.yaml",
    ],
  },
  {
    name: "approve",
    summary: "let a sync held by a hold rule through",
    usage: ["approve --app NAME [--revision REV] [--expires 1h] [--override-window] [--by WHO]"],
    flags: ["app", "revision", "expires", "override-window", "by", "json"],
    examples: ["berth approve --app db --by alice", "berth approve --app db --override-window --expires 30m"],
  },
  {
    name: "install",
    summary: "in-cluster manifests with least-privilege RBAC",
    usage: ["install manifests [--namespaced] [--namespace NS] [--image IMAGE]"],
    subcommands: ["manifests"],
    flags: ["namespace", "namespaced", "image"],
    examples: [
      "berth install manifests | kubectl apply -f -",
      "berth install manifests --namespaced --namespace berth",
    ],
  },
  {
    name: "import",
    summary: "convert Flux Kustomizations, HelmReleases and sources into a berth.yaml",
    usage: ["import flux FILE|DIR [--dir REPO_ROOT] [--out DIR] [--force]"],
    subcommands: ["flux"],
    flags: ["dir", "out", "force"],
    details:
      "Reads Flux objects from FILE or DIR (recursively), renders each Kustomization's path from REPO_ROOT and writes berth.yaml (+ flux-health.yaml) to DIR, or prints them. Every field berth cannot express is one line on stderr.",
    exits: "exit codes: 0 converted (with or without such lines), 2 bad input",
    examples: [
      "berth import flux clusters/production --dir . --out /etc/berth",
      "berth import flux clusters/production/apps.yaml",
    ],
  },
  {
    name: "completion",
    summary: "shell completion script (bash, zsh or fish)",
    usage: ["completion bash|zsh|fish"],
    subcommands: ["bash", "zsh", "fish"],
    flags: [],
    details: "App names are completed from the config (--config, default ./berth.yaml) when it can be read.",
    examples: [
      "source <(berth completion bash)",
      'berth completion zsh > "${fpath[1]}/_berth"',
      "berth completion fish > ~/.config/fish/completions/berth.fish",
    ],
  },
  {
    name: "version",
    summary: "print the version, commit and runtime",
    usage: ["version"],
    flags: ["json", "output"],
    output: ["json", "yaml"],
    examples: ["berth version", "berth version -o json"],
  },
  {
    name: "help",
    summary: "help for a command",
    usage: ["help [COMMAND]"],
    flags: [],
    examples: ["berth help", "berth help sync"],
  },
];

export function commandSpec(name: string | undefined): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

/** `berth --help`: every command on one line. */
export function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return `berth — a GitOps agent for small teams

usage: berth <command> [flags]

commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join("\n")}

global flags:
${GLOBAL_FLAGS.map((f) => `  ${FLAG_HELP[f]}`).join("\n")}

exit codes: 0 ok, 1 failed, 2 an input error, 3 held for approval or deferred by a window (sync)
Run "berth help COMMAND" or "berth COMMAND --help" for a command's flags and examples.
`;
}

/** `berth CMD --help`. */
export function commandHelp(spec: CommandSpec): string {
  const lines = [`berth ${spec.name} — ${spec.summary}`, "", "usage:"];
  for (const u of spec.usage) lines.push(`  berth ${u}`);
  if (spec.details) lines.push("", spec.details);
  if (spec.flags.length > 0) {
    lines.push("", "flags:");
    for (const f of spec.flags) lines.push(`  ${FLAG_HELP[f] ?? `--${f}`}`);
  }
  lines.push("", "global flags:");
  for (const f of GLOBAL_FLAGS) lines.push(`  ${FLAG_HELP[f]}`);
  if (spec.exits) lines.push("", spec.exits);
  lines.push("", "examples:");
  for (const e of spec.examples) lines.push(`  ${e}`);
  return `${lines.join("\n")}\n`;
}
