/**
 * `berth import flux PATH [--dir ROOT] [--out DIR] [--force]`: reads Flux objects from PATH (a file or a
 * directory, recursively), renders each Kustomization's path from ROOT (the repository root, default `.`) and
 * writes berth.yaml (+ flux-health.yaml) to DIR, or prints them. Every field berth cannot express is one line on
 * stderr. Exit 0 converted (with or without such lines), 2 bad input.
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { messageOf } from "../object/errors.ts";
import { renderApp } from "../render/app.ts";
import { FsSnapshot } from "../render/fs-snapshot.ts";
import type { Io } from "./cli.ts";
import { type FluxDoc, importFlux, RULES_FILE } from "./import-flux.ts";

const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
const USAGE = "berth: usage: berth import flux FILE|DIR [--dir REPO_ROOT] [--out DIR] [--force]\n";

function yamlFiles(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  // A Helm chart's templates are not YAML and hold no Flux objects.
  if (existsSync(join(path, "Chart.yaml"))) return [];
  const out: string[] = [];
  for (const name of readdirSync(path).sort()) {
    if (name.startsWith(".")) continue;
    const full = join(path, name);
    if (statSync(full).isDirectory()) out.push(...yamlFiles(full));
    else if (/\.ya?ml$/.test(name)) out.push(full);
  }
  return out;
}

export async function importCommand(
  rest: string[],
  options: { dir?: string | undefined; out?: string | undefined; force: boolean },
  io: Io,
): Promise<number> {
  const [what, path, ...extra] = rest;
  if (what !== "flux" || path === undefined || extra.length > 0) {
    io.err(USAGE);
    return EXIT.usage;
  }
  if (!existsSync(path)) {
    io.err(`berth: ${path}: no such file or directory\n`);
    return EXIT.usage;
  }
  const docs: FluxDoc[] = [];
  for (const file of yamlFiles(path)) {
    for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
      if (doc.errors.length > 0) {
        io.err(`berth: ${file}: not YAML: ${doc.errors[0]?.message}\n`);
        return EXIT.usage;
      }
      const object = doc.toJS() as unknown;
      if (typeof object === "object" && object !== null && !Array.isArray(object))
        docs.push({ object: object as Record<string, unknown>, file });
    }
  }
  const root = options.dir ?? ".";
  const snapshot = new FsSnapshot(root);
  const result = await importFlux(docs, async (appPath) => {
    try {
      const r = await renderApp(snapshot, { name: "flux-import", path: appPath === "." ? "" : appPath });
      if (r.errors.length > 0)
        return { objects: [], error: r.errors.map((e) => `${e.path}: ${e.message}`).join("; ") };
      return { objects: r.objects.map((o) => o.object as unknown as Record<string, unknown>) };
    } catch (err) {
      return { objects: [], error: messageOf(err) };
    }
  });
  const apps = result.config.apps as unknown[];
  const header = `# Converted by \`berth import flux ${relative(".", path) || "."}\`: check the lines it printed.\n# yaml-language-server: $schema=https://berth.dev/schemas/config.schema.json\n`;
  const config = header + stringify(result.config, { lineWidth: 0 });
  const rules = result.rules ? stringify(result.rules, { lineWidth: 0 }) : undefined;
  if (options.out) {
    const targets = [join(options.out, "berth.yaml"), ...(rules ? [join(options.out, RULES_FILE)] : [])];
    const existing = targets.filter((t) => existsSync(t));
    if (existing.length > 0 && !options.force) {
      io.err(`berth: ${existing.join(", ")} exists; --force replaces it\n`);
      return EXIT.usage;
    }
    writeFileSync(targets[0] ?? "", config);
    if (rules && targets[1]) writeFileSync(targets[1], rules);
    io.out(`wrote ${targets.join(" and ")}: ${apps.length} apps\n`);
  } else {
    io.out(`# berth.yaml\n${config}`);
    if (rules) io.out(`---\n# ${RULES_FILE}\n${rules}`);
  }
  for (const n of result.notes) io.err(`! ${n}\n`);
  return EXIT.ok;
}
