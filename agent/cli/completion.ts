/**
 * `berth completion bash|zsh|fish`: scripts generated from the command table (help.ts), so they cannot drift
 * from the CLI. App names come from `berth __apps`, which reads the config only (no cluster, no ledger).
 */
import { COMMANDS, GLOBAL_FLAGS } from "./help.ts";

/** Flags followed by a value, and what completes it. */
const VALUES: Record<string, string> = {
  config: "file",
  kubeconfig: "file",
  dir: "dir",
  out: "dir",
  object: "file",
  "token-file": "file",
  app: "apps",
  output: "json yaml wide",
  "log-format": "json text",
  context: "",
  limit: "",
  before: "",
  to: "last-healthy",
  from: "",
  server: "",
  revision: "",
  ref: "",
  expires: "",
  by: "",
  namespace: "",
  image: "",
};

const SHORT: Record<string, string> = { output: "-o", quiet: "-q", help: "-h", verbose: "-v" };

function flagsOf(name: string): string[] {
  const spec = COMMANDS.find((c) => c.name === name);
  return [...new Set([...(spec?.flags ?? []), ...GLOBAL_FLAGS])];
}

export function completionScript(shell: string): string | undefined {
  if (shell === "bash") return bash();
  if (shell === "zsh") return `#compdef berth\nautoload -U +X bashcompinit && bashcompinit\n${bash()}`;
  if (shell === "fish") return fish();
  return undefined;
}

function bash(): string {
  const names = COMMANDS.map((c) => c.name).join(" ");
  const valued = Object.keys(VALUES)
    .map((f) => `--${f}`)
    .concat("-o")
    .join("|");
  const perCommand = COMMANDS.map((c) => {
    const flags = flagsOf(c.name)
      .map((f) => `--${f}`)
      .join(" ");
    const subs = c.subcommands ? `subs="${c.subcommands.join(" ")}"; ` : "";
    return `    ${c.name}) ${subs}flags="${flags}"; apps=${c.apps ? 1 : 0} ;;`;
  }).join("\n");
  const valueCases = Object.entries(VALUES)
    .map(([f, how]) => {
      const pattern = SHORT[f] ? `--${f}|${SHORT[f]}` : `--${f}`;
      if (how === "file") return `    ${pattern}) COMPREPLY=($(compgen -f -- "$cur")); return ;;`;
      if (how === "dir") return `    ${pattern}) COMPREPLY=($(compgen -d -- "$cur")); return ;;`;
      if (how === "apps")
        return `    ${pattern}) COMPREPLY=($(compgen -W "$(_berth_apps)" -- "$cur")); return ;;`;
      return `    ${pattern}) COMPREPLY=($(compgen -W "${how}" -- "$cur")); return ;;`;
    })
    .join("\n");
  return `# berth bash completion: source <(berth completion bash)
_berth_apps() {
  local config=berth.yaml i
  for ((i = 1; i < \${#COMP_WORDS[@]}; i++)); do
    [[ \${COMP_WORDS[i]} == --config ]] && config=\${COMP_WORDS[i + 1]}
  done
  berth __apps --config "$config" 2>/dev/null
}
_berth() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD - 1]}
  local cmd="" sub="" i w skip=0
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    if ((skip)); then skip=0; continue; fi
    case "$w" in
      ${valued}) skip=1 ;;
      -*) ;;
      *) if [[ -z $cmd ]]; then cmd=$w; elif [[ -z $sub ]]; then sub=$w; fi ;;
    esac
  done
  case "$prev" in
${valueCases}
  esac
  if [[ -z $cmd ]]; then
    COMPREPLY=($(compgen -W "${names} --help" -- "$cur"))
    return
  fi
  local flags="" subs="" apps=0
  case "$cmd" in
${perCommand}
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  elif [[ -n $subs && -z $sub ]]; then
    COMPREPLY=($(compgen -W "$subs" -- "$cur"))
  elif [[ $cmd == help ]]; then
    COMPREPLY=($(compgen -W "${names}" -- "$cur"))
  elif ((apps)); then
    COMPREPLY=($(compgen -W "$(_berth_apps)" -- "$cur"))
  fi
}
complete -F _berth berth
`;
}

function fish(): string {
  const lines = [
    "# berth fish completion: berth completion fish > ~/.config/fish/completions/berth.fish",
    "complete -c berth -f",
    ...COMMANDS.map((c) => `complete -c berth -n __fish_use_subcommand -a ${c.name} -d ${quote(c.summary)}`),
  ];
  for (const c of COMMANDS) {
    const when = `"__fish_seen_subcommand_from ${c.name}"`;
    for (const s of c.subcommands ?? []) lines.push(`complete -c berth -n ${when} -a ${s}`);
    if (c.apps) lines.push(`complete -c berth -n ${when} -a "(berth __apps 2>/dev/null)"`);
    for (const f of flagsOf(c.name)) {
      const short = SHORT[f] ? ` -s ${SHORT[f].slice(1)}` : "";
      const how = VALUES[f];
      const arg =
        how === undefined
          ? ""
          : how === "file" || how === "dir"
            ? " -r -F"
            : how === "apps"
              ? ` -r -a "(berth __apps 2>/dev/null)"`
              : how
                ? ` -r -a ${quote(how)}`
                : " -r";
      lines.push(`complete -c berth -n ${when} -l ${f}${short}${arg}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

function quote(s: string): string {
  return `'${s.replace(/'/g, "\\'")}'`;
}
