/**
 * The `berth …` commands shown in the repository's READMEs, so tests can run them and docs cannot drift from
 * the CLI. A command is taken from a fenced code block: every line starting `berth ` in a sh/bash/shell/console
 * block, and every `$ berth ` line in any block (a terminal transcript). A trailing `# exit N` comment states
 * the documented exit code (default 0).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";

export type DocCommandKind =
  /** A usage line with placeholders (`[--app NAME]`, `FILE`, `a | b`): its command and flags must be known. */
  | "synopsis"
  /** Runs without a cluster or Git: help, version, rules, import, `validate --dir`. */
  | "offline"
  /** Needs a cluster and a synced ledger: run in the cluster tier (test/e2e). */
  | "cluster";

export interface DocCommand {
  /** Repository-relative markdown file and 1-based line. */
  file: string;
  line: number;
  /** The line as written, without a `$ ` prompt and trailing comment. */
  text: string;
  /** Arguments after `berth`, quotes removed, a `> FILE` redirection dropped. */
  args: string[];
  kind: DocCommandKind;
  /** Documented exit code: `# exit N` in the line's comment, else 0. */
  exit: number;
}

const SHELL_LANGS = new Set(["sh", "bash", "shell", "console", "zsh"]);
const SKIP_DIRS = new Set(["node_modules", "dist", ".git", ".berth", "fixtures"]);
const OFFLINE = new Set(["version", "rules", "help", "completion", "import"]);
const PLACEHOLDER = /^[A-Z][A-Z0-9_]*(\.\.\.)?$/;

/** Every README.md (and other *.md) of the repository outside fixtures and build output. */
export function docFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) {
        if (!SKIP_DIRS.has(e.name)) walk(join(dir, e.name));
      } else if (e.name.endsWith(".md")) out.push(join(dir, e.name));
    }
  };
  walk(root);
  return out.map((f) => relative(root, f)).sort();
}

/** Splits off a trailing ` # comment` that is not inside quotes. */
function splitComment(line: string): [string, string] {
  let quote = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "#" && (i === 0 || /\s/.test(line[i - 1] ?? "")))
      return [line.slice(0, i).trimEnd(), line.slice(i + 1)];
  }
  return [line.trimEnd(), ""];
}

/** Shell-like words: whitespace-separated, single and double quotes grouping. */
export function words(text: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quote = "";
  let has = false;
  for (const c of text) {
    if (quote) {
      if (c === quote) quote = "";
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur) out.push(cur);
      cur = "";
      has = false;
    } else cur += c;
  }
  if (has || cur) out.push(cur);
  return out;
}

function kindOf(args: string[], raw: string): DocCommandKind {
  if (/[[\]|…]|\.\.\./.test(raw.replace(/'[^']*'|"[^"]*"/g, "")) || args.some((a) => PLACEHOLDER.test(a))) {
    return "synopsis";
  }
  const cmd = args[0] ?? "";
  if (args.includes("--help") || cmd === "--help" || OFFLINE.has(cmd)) return "offline";
  if (cmd === "validate" && args.includes("--dir")) return "offline";
  return "cluster";
}

/** The documented commands of one markdown text. */
export function extractCommands(file: string, markdown: string): DocCommand[] {
  const out: DocCommand[] = [];
  let lang: string | undefined;
  markdown.split("\n").forEach((raw, i) => {
    const fence = /^\s*```(\S*)/.exec(raw);
    if (fence) {
      lang = lang === undefined ? (fence[1] ?? "") : undefined;
      return;
    }
    if (lang === undefined) return;
    const line = raw.trim();
    let body: string;
    if (line.startsWith("$ berth ")) body = line.slice(2);
    else if (SHELL_LANGS.has(lang) && line.startsWith("berth ")) body = line;
    else return;
    const [command, comment] = splitComment(body);
    let args = words(command).slice(1);
    const redirect = args.findIndex((a) => a === ">" || a === ">>");
    if (redirect >= 0) args = args.slice(0, redirect);
    const exit = /\bexit (\d+)\b/.exec(comment)?.[1];
    out.push({
      file,
      line: i + 1,
      text: command,
      args,
      kind: kindOf(args, command),
      exit: exit === undefined ? 0 : Number(exit),
    });
  });
  return out;
}

/** The documented commands of every markdown file under `root`. */
export function docCommands(root: string): DocCommand[] {
  return docFiles(root).flatMap((f) => extractCommands(f, readFileSync(join(root, f), "utf8")));
}

/** The command words of a synopsis (`ledger list`, `replay`) and the flags it names. */
export function synopsisParts(c: DocCommand): { command: string[]; flags: string[] } {
  const command: string[] = [];
  for (const a of c.args) {
    if (!/^[a-z][a-z-]*$/.test(a)) break;
    command.push(a);
  }
  const flags = [...new Set((c.text.match(/--[a-z][a-z-]*/g) ?? []).filter((f) => f !== "--help"))];
  return { command: command.slice(0, 2), flags };
}
