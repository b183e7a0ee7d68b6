/**
 * The rules in force: the built-in packs plus the files named by the config's `rules`. Loading
 * compiles everything; a failed reload keeps the previous good set and reports the error.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { BerthError, messageOf } from "../object/errors.ts";
import { BUILTIN_PACKS } from "./builtin-packs.ts";
import {
  compileEmbeddedPack,
  type HealthRule,
  parseRuleFile,
  type RuleFile,
  type SyncRule,
} from "./rule-file.ts";

/**
 * The built-in packs, parsed when embedded; each expression is compiled on its first use (they are tested, so a
 * failure is a bug): `berth sync` of an app of three kinds compiles no rule for the others.
 */
export function builtinRuleFiles(): RuleFile[] {
  return Object.entries(BUILTIN_PACKS).map(([file, pack]) => compileEmbeddedPack(pack, file, { lazy: true }));
}

/**
 * The rule files the config's `rules:` entries name: a file as given, a directory as its `*.yaml`/`*.yml`
 * files, sorted by name. Not recursive, so a fixtures or archive subdirectory is never loaded by accident;
 * `*.test.yaml`/`*.test.yml` are `berth rules test` fixtures, not rules, and are left out.
 */
export function ruleFilePaths(paths: readonly string[]): string[] {
  return paths.flatMap((path) => {
    let isDir = false;
    try {
      isDir = statSync(path).isDirectory();
    } catch {
      return [path]; // reading it names the problem
    }
    if (!isDir) return [path];
    let entries: string[];
    try {
      entries = readdirSync(path, { withFileTypes: true })
        .filter((e) => (e.isFile() || e.isSymbolicLink()) && isRuleFileName(e.name))
        .map((e) => e.name);
    } catch (cause) {
      throw new BerthError(`cannot read the rule directory: ${messageOf(cause)}`, { subject: path, cause });
    }
    return entries
      .sort()
      .map((name) => join(path, name))
      .filter((file) => !statSafe(file)?.isDirectory());
  });
}

function isRuleFileName(name: string): boolean {
  if (name.startsWith(".")) return false;
  if (name.endsWith(".test.yaml") || name.endsWith(".test.yml")) return false;
  return name.endsWith(".yaml") || name.endsWith(".yml");
}

function statSafe(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** Reads and compiles rule files (directories expanded); errors name the file (and line and rule, when the content is wrong). */
export function loadRuleFiles(paths: readonly string[]): RuleFile[] {
  return ruleFilePaths(paths).map((path) => {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (cause) {
      throw new BerthError(`cannot read the rule file: ${messageOf(cause)}`, { subject: path, cause });
    }
    return parseRuleFile(text, path);
  });
}

/** A consistent, compiled set of rules. */
export interface CompiledRules {
  health: HealthRule[];
  sync: SyncRule[];
}

/** Combines files; a sync rule name used twice across files is an error. */
export function combine(files: readonly RuleFile[]): CompiledRules {
  const seen = new Map<string, string>();
  for (const f of files) {
    for (const r of f.sync) {
      const other = seen.get(r.name);
      if (other)
        throw new BerthError(`sync rule ${r.name} is also defined in ${other}`, {
          subject: `${f.file}:${r.source.line}`,
        });
      seen.set(r.name, `${f.file}:${r.source.line}`);
    }
  }
  return { health: files.flatMap((f) => f.health), sync: files.flatMap((f) => f.sync) };
}

/** The rule set an agent runs with; `reload()` swaps it only when every file compiles. */
export class RuleSet {
  private current: CompiledRules;

  private constructor(
    private readonly paths: readonly string[],
    private readonly builtins: boolean,
    initial: CompiledRules,
  ) {
    this.current = initial;
  }

  /** Loads the built-ins (unless `builtins: false`) and the given files; throws on the first bad rule. */
  static load(paths: readonly string[], options: { builtins?: boolean } = {}): RuleSet {
    const builtins = options.builtins ?? true;
    return new RuleSet(paths, builtins, RuleSet.compile(paths, builtins));
  }

  private static compile(paths: readonly string[], builtins: boolean): CompiledRules {
    return combine([...(builtins ? builtinRuleFiles() : []), ...loadRuleFiles(paths)]);
  }

  /** Re-reads the files; on error the previous set stays in force and the error is returned. */
  reload(): { ok: true } | { ok: false; error: BerthError } {
    try {
      this.current = RuleSet.compile(this.paths, this.builtins);
      return { ok: true };
    } catch (err) {
      const error = err instanceof BerthError ? err : new BerthError(messageOf(err), { cause: err });
      return { ok: false, error };
    }
  }

  /** The health rules in force. */
  get health(): readonly HealthRule[] {
    return this.current.health;
  }

  /** The sync rules in force. */
  get sync(): readonly SyncRule[] {
    return this.current.sync;
  }
}
