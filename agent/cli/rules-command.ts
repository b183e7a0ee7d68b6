/** `berth rules check|test|eval` and `berth approve`: the rules engine's command-line side. */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { fromCel } from "../cel/cel.ts";
import { loadConfig } from "../config/config.ts";
import { parseDuration } from "../config/duration.ts";
import { defaultHealthChecker } from "../health/assess.ts";
import { BerthError, messageOf } from "../object/errors.ts";
import type { KubeObject } from "../object/object.ts";
import { healthVariables } from "../policy/health-rules.ts";
import { healthEnvironment, parseRuleFile } from "../policy/rule-file.ts";
import { ruleFilePaths } from "../policy/rule-set.ts";
import { type CaseResult, runRuleTests } from "../policy/rule-tests.ts";
import { type GlobalFlags, openLedger } from "./wire.ts";

/** Where a command writes (cli.ts's Io). */
interface Out {
  out: (s: string) => void;
  err: (s: string) => void;
}

/** Flags the rules and approve commands read. */
export interface RulesFlags {
  json: boolean;
  object?: string | undefined;
  app?: string | undefined;
  revision?: string | undefined;
  expires?: string | undefined;
  overrideWindow: boolean;
  by?: string | undefined;
}

const USAGE =
  "usage: berth rules check [FILE...] | rules test [DIR|FILE...] | rules eval EXPR --object FILE\n";

/** `berth rules …`; exit 0 all good, 1 a rule or test failed, 2 a usage error. */
export async function rulesCommand(
  flags: GlobalFlags,
  opts: RulesFlags,
  rest: string[],
  io: Out,
): Promise<number> {
  const [sub, ...args] = rest;
  if (sub === "check")
    return check(ruleFilePaths(args.length > 0 ? args : loadConfig(flags.config).rules), opts, io);
  if (sub === "test") return testFixtures(args.length > 0 ? args : ["."], opts, io);
  if (sub === "eval" && args[0] !== undefined) return evaluate(args[0], opts, io);
  io.err(`berth: ${USAGE}`);
  return 2;
}

/** Compiles every file (YAML, schema, CEL parse and type check); each error names file:line, rule, field, column. */
function check(files: string[], opts: RulesFlags, io: Out): number {
  const results = files.map((file) => {
    try {
      const text = readFileSync(file, "utf8");
      const f = parseRuleFile(text, file);
      return { file, ok: true, health: f.health.length, sync: f.sync.length };
    } catch (err) {
      return { file, ok: false, error: messageOf(err) };
    }
  });
  if (opts.json) io.out(`${JSON.stringify(results, null, 2)}\n`);
  else
    for (const r of results)
      if (r.ok) io.out(`✓ ${r.file}: ${r.health} health, ${r.sync} sync rules\n`);
      else io.err(`✗ ${r.error}\n`);
  if (files.length === 0) io.err("berth: no rule files given and none in the config's rules:\n");
  return results.every((r) => r.ok) ? 0 : 1;
}

/** Runs fixture files (`*.test.yaml` under each directory); exit 1 if a case fails, 2 if a file is malformed. */
function testFixtures(paths: string[], opts: RulesFlags, io: Out): number {
  const files = paths.flatMap((p) => fixtureFiles(p));
  if (files.length === 0) {
    io.err(`berth: no *.test.yaml files under ${paths.join(", ")}\n`);
    return 2;
  }
  const results: CaseResult[] = [];
  let broken = false;
  for (const file of files) {
    try {
      results.push(...runRuleTests(file, defaultHealthChecker));
    } catch (err) {
      broken = true;
      io.err(`✗ ${messageOf(err)}\n`);
    }
  }
  const failed = results.filter((r) => !r.ok);
  if (opts.json) io.out(`${JSON.stringify(results, null, 2)}\n`);
  else {
    for (const r of results) {
      io.out(`${r.ok ? "✓" : "✗"} ${r.file}: ${r.name}\n`);
      for (const p of r.problems) io.out(`    ${p}\n`);
    }
    io.out(`${results.length - failed.length} passed, ${failed.length} failed\n`);
  }
  return broken ? 2 : failed.length > 0 ? 1 : 0;
}

function fixtureFiles(path: string): string[] {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (cause) {
    throw new BerthError(`cannot read: ${messageOf(cause)}`, { subject: path, cause });
  }
  if (!isDir) return [path];
  return readdirSync(path, { recursive: true })
    .map(String)
    .filter((f) => f.endsWith(".test.yaml") || f.endsWith(".test.yml"))
    .sort()
    .map((f) => join(path, f));
}

/** Evaluates one health-style expression over an object file (its top-level fields and `self` are variables). */
function evaluate(expr: string, opts: RulesFlags, io: Out): number {
  if (!opts.object) {
    io.err(`berth: rules eval needs --object FILE\n${USAGE}`);
    return 2;
  }
  let obj: KubeObject;
  try {
    obj = parse(readFileSync(opts.object, "utf8")) as KubeObject;
  } catch (cause) {
    throw new BerthError(`cannot read the object: ${messageOf(cause)}`, { subject: opts.object, cause });
  }
  if (!obj || typeof obj !== "object")
    throw new BerthError("not a YAML or JSON object", { subject: opts.object });
  obj.metadata ??= { name: "" };
  try {
    const program = healthEnvironment.compile(expr);
    const value = fromCel(program.evaluate(healthVariables(obj)));
    io.out(`${JSON.stringify(value)}\n`);
    return 0;
  } catch (err) {
    io.err(`✗ ${messageOf(err)}\n`);
    return 1;
  }
}

/** `berth approve --app NAME [--revision REV] [--expires 1h] [--override-window] [--by WHO]`. */
export async function approveCommand(flags: GlobalFlags, opts: RulesFlags, io: Out): Promise<number> {
  const config = loadConfig(flags.config);
  if (!opts.app) {
    io.err("berth: usage: berth approve --app NAME [--revision REV] [--expires 1h] [--override-window]\n");
    return 2;
  }
  const ms = parseDuration(opts.expires ?? "1h");
  if (ms === undefined || ms <= 0)
    throw new BerthError("expected a positive duration such as 30m or 2h", {
      subject: `--expires ${opts.expires}`,
    });
  const ledger = await openLedger(config);
  try {
    // A generated app is in no config list: the ledger knows it (its held prune is what gets approved).
    const app = opts.app;
    if (!config.apps.some((a) => a.name === app) && ledger.list({ app, limit: 1 }).length === 0)
      throw new BerthError(
        `no such app (apps: ${config.apps.map((a) => a.name).join(", ")}; a generated app needs a ledger entry)`,
        { subject: `--app ${app}` },
      );
    // Without --revision: the revision of the app's newest attempt (the one being held).
    const revision = opts.revision ?? ledger.list({ app: opts.app, limit: 1 })[0]?.revision;
    if (!revision)
      throw new BerthError("the app has no ledger entry yet; give --revision", {
        subject: `--app ${opts.app}`,
      });
    const by = opts.by ?? process.env.USER ?? "unknown";
    const approval = ledger.approve(opts.app, revision, by, new Date(Date.now() + ms), {
      overrideWindow: opts.overrideWindow,
    });
    if (opts.json) io.out(`${JSON.stringify(approval, null, 2)}\n`);
    else
      io.out(
        `approved ${approval.app} at ${approval.revision} by ${approval.by} until ${approval.expiresAt}${approval.overrideWindow ? " (overrides sync windows)" : ""}\n`,
      );
    return 0;
  } finally {
    ledger.close();
  }
}
