/**
 * `generate:` — one app per directory of a source (Argo CD's ApplicationSet Git directory generator). Expanded
 * from a snapshot's directory listing: `dirs` and `exclude` are globs over directory paths, the template's
 * string values get `{{dir}}` (base name) and `{{path}}` (full path), and each result is checked like an app
 * in `apps`. Every problem names the generator, the directory and the field; a problem means no app of that
 * generator changes (the caller keeps the last good expansion).
 */

import { findCycle } from "../object/dependency-order.ts";
import type { Snapshot } from "../object/snapshot.ts";
import { type AgentConfig, type AppConfig, type GeneratorConfig, generatedApp } from "./config.ts";
import { ConfigError, type ConfigProblem, fieldPath } from "./problems.ts";

/** At most this many directories are listed per generator: a glob like `**` over a huge tree stays bounded. */
export const MAX_GENERATED_DIRS = 1000;

/** A glob over "/"-separated paths as a regular expression (the syntax `globProblem` accepts). */
export function globRegExp(glob: string): RegExp {
  let out = "";
  const segments = glob.split("/");
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment === "**") {
      // Any number of whole segments, none included.
      out += last ? ".*" : "(?:[^/]+/)*";
      return;
    }
    for (let j = 0; j < segment.length; j++) {
      const c = segment[j] as string;
      if (c === "*") out += "[^/]*";
      else if (c === "?") out += "[^/]";
      else if (c === "[") {
        const end = segment.indexOf("]", j);
        const body = segment.slice(j + 1, end);
        out += `[${body.startsWith("!") ? `^${body.slice(1)}` : body.replace(/\\/g, "\\\\")}]`;
        j = end;
      } else out += c.replace(/[.+^${}()|\\]/g, "\\$&");
    }
    if (!last) out += "/";
  });
  return new RegExp(`^${out}$`);
}

/** Directories of the snapshot whose path matches `dirs` and no `exclude`, sorted; walks only as deep as needed. */
export async function matchingDirs(snapshot: Snapshot, gen: GeneratorConfig): Promise<string[]> {
  const include = globRegExp(gen.dirs);
  const exclude = gen.exclude.map(globRegExp);
  const maxDepth = gen.dirs.split("/").includes("**") ? Number.POSITIVE_INFINITY : gen.dirs.split("/").length;
  const found: string[] = [];
  let queue = [""];
  for (let depth = 1; depth <= maxDepth && queue.length > 0; depth++) {
    const next: string[] = [];
    for (const dir of queue) {
      for (const entry of await snapshot.readDir(dir)) {
        if (entry.type !== "tree") continue;
        if (include.test(entry.path) && !exclude.some((x) => x.test(entry.path))) found.push(entry.path);
        if (found.length > MAX_GENERATED_DIRS)
          throw new Error(
            `generate[${gen.index}].dirs ${JSON.stringify(gen.dirs)} matches more than ${MAX_GENERATED_DIRS} directories`,
          );
        next.push(entry.path);
      }
    }
    queue = next;
  }
  return found.sort();
}

/** The template with `{{dir}}` and `{{path}}` replaced in every string value. */
export function fillTemplate(template: unknown, dir: string, path: string): unknown {
  if (typeof template === "string")
    return template.replace(/\{\{\s*(dir|path)\s*\}\}/g, (_, name: string) => (name === "dir" ? dir : path));
  if (Array.isArray(template)) return template.map((v) => fillTemplate(v, dir, path));
  if (template !== null && typeof template === "object")
    return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, fillTemplate(v, dir, path)]));
  return template;
}

/** The apps of every generator over the snapshots it reads, or a ConfigError naming generator, directory and field. */
export async function expandGenerators(
  config: AgentConfig,
  snapshotOf: (source: string) => Snapshot | undefined,
  only?: ReadonlySet<number>,
): Promise<AppConfig[]> {
  const problems: ConfigProblem[] = [];
  const apps: AppConfig[] = [];
  for (const gen of config.generate) {
    if (only && !only.has(gen.index)) continue;
    const snapshot = snapshotOf(gen.source);
    if (!snapshot) continue;
    let dirs: string[];
    try {
      dirs = await matchingDirs(snapshot, gen);
    } catch (err) {
      problems.push({
        field: fieldPath(["generate", gen.index, "dirs"]),
        segments: ["generate", gen.index, "dirs"],
        message: (err as Error).message,
      });
      continue;
    }
    for (const path of dirs) {
      const dir = path.slice(path.lastIndexOf("/") + 1);
      const fields = fillTemplate(gen.template, dir, path) as Record<string, unknown>;
      const app = generatedApp(config, gen, fields);
      if (Array.isArray(app)) {
        for (const p of app) {
          const segments = ["generate", gen.index, "template", ...p.segments];
          problems.push({ field: fieldPath(segments), segments, message: `directory ${path}: ${p.message}` });
        }
        continue;
      }
      apps.push({ ...app, generated: { index: gen.index, dir: path } });
    }
  }
  problems.push(...nameProblems(config.apps, apps));
  if (problems.length > 0) throw new ConfigError(config.configPath, problems);
  return apps;
}

/** Generated names colliding with a static app or each other, dependsOn naming no app, and cycles. */
function nameProblems(statics: readonly AppConfig[], generated: readonly AppConfig[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const where = new Map<string, string>(statics.map((a, i) => [a.name, `apps[${i}]`]));
  const at = (a: AppConfig, field: string): ConfigProblem => {
    const segments = ["generate", a.generated?.index ?? 0, "template", field];
    return { field: fieldPath(segments), segments, message: "" };
  };
  for (const a of generated) {
    const self = `generate[${a.generated?.index}] directory ${a.generated?.dir}`;
    const other = where.get(a.name);
    if (other !== undefined)
      problems.push({ ...at(a, "name"), message: `"${a.name}" from ${self} is also the name of ${other}` });
    else where.set(a.name, self);
  }
  const all = [...statics, ...generated];
  const names = new Set(all.map((a) => a.name));
  // A static app may name a generated one (config.ts lets a name a template can make through): it must exist now.
  statics.forEach((a, i) => {
    a.dependsOn.forEach((d, j) => {
      if (names.has(d)) return;
      const segments = ["apps", i, "dependsOn", j];
      problems.push({
        field: fieldPath(segments),
        segments,
        message: `no app is named "${d}": no generator made one from the source's directories`,
      });
    });
  });
  for (const a of generated)
    for (const d of a.dependsOn)
      if (!names.has(d))
        problems.push({
          ...at(a, "dependsOn"),
          message: `directory ${a.generated?.dir}: no app is named "${d}"`,
        });
  const cycle = findCycle(all);
  if (cycle && problems.length === 0) {
    const a = generated.find((g) => cycle.includes(g.name));
    if (a) problems.push({ ...at(a, "dependsOn"), message: `dependency cycle: ${cycle.join(" → ")}` });
  }
  return problems;
}
