/**
 * The house's import rules, checked: which folder of `agent/` may import which, and which file may bind each
 * third-party library that does I/O. Exit 1 with one line per violation; run by `npm run lint` and `.ci/run`.
 *
 *   bun scripts/check/boundaries.ts [ROOT]     (ROOT defaults to the repository; the test points it at a copy)
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";

/**
 * Folders of `agent/` and the folders each may import from (its own always allowed). `name:type` allows only
 * `import type`. Stages see only the shared model; the engine composes stages; shells (cli, main) wire anything.
 */
export const LAYERS: Record<string, readonly string[]> = {
  object: [],
  cel: ["object"],
  apply: ["object"],
  plan: ["object"],
  wait: ["object"],
  health: ["object"],
  render: ["object"],
  source: ["object"],
  kube: ["object"],
  ledger: ["object", "runtime"],
  drift: ["object", "cel"],
  policy: ["object", "cel", "plan:type"],
  config: ["object", "cel"],
  notify: ["object", "cel", "config:type", "ledger"],
  forge: ["object", "notify", "ledger"],
  engine: ["object", "apply", "plan", "wait", "health:type", "policy:type", "config:type"],
  api: ["object", "config", "engine", "ledger", "runtime"],
  runtime: ["object"],
  cli: ["*"],
  ".": ["*"],
};

/** Third-party packages that do I/O, and the one file allowed a value import of each (type imports are free). */
export const IO_LIBRARIES: Record<string, readonly string[]> = {
  "@kubernetes/client-node": ["agent/kube/client.ts"],
  "isomorphic-git": ["agent/source/iso-git.ts"],
  "better-sqlite3": ["agent/ledger/drivers/better-sqlite3.ts"],
  "bun:sqlite": ["agent/ledger/drivers/bun-sqlite.ts"],
  "node:sqlite": ["agent/ledger/drivers/node-sqlite.ts"],
  aws4fetch: ["agent/ledger/s3-store.ts"],
  "node-fetch": ["agent/kube/client.ts"],
};

/** Libraries confined to one folder (not I/O, but the folder is their adapter). */
export const CONFINED: Record<string, string> = {
  hono: "api",
  "@marcbachmann/cel-js": "cel",
  re2js: "cel",
  "json-logic-js": "policy",
};

export interface Violation {
  file: string;
  line: number;
  message: string;
}

const IMPORT = /^\s*(import|export)\s+(type\s+)?(?:[^"';]*?\s+from\s+)?["']([^"']+)["']/;

function* tsFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* tsFiles(path);
    else if (name.endsWith(".ts")) yield path;
  }
}

/** The `agent/` folder a path belongs to (`.` for files directly in agent/). */
function folderOf(relToAgent: string): string {
  const parts = relToAgent.split(sep);
  return parts.length > 1 ? (parts[0] ?? ".") : ".";
}

function packageOf(spec: string): string {
  if (spec.startsWith("node:") || spec.startsWith("bun:")) return spec;
  const parts = spec.split("/");
  return spec.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? spec);
}

export function checkBoundaries(root: string): Violation[] {
  const agent = join(root, "agent");
  const out: Violation[] = [];
  for (const path of tsFiles(agent)) {
    const file = relative(root, path).split(sep).join("/");
    const from = folderOf(relative(agent, path));
    const allowed = LAYERS[from];
    if (!allowed) {
      out.push({
        file,
        line: 1,
        message: `folder agent/${from}/ has no rule in scripts/check/boundaries.ts LAYERS`,
      });
      continue;
    }
    // Multi-line imports: join each statement up to its module string so the pattern sees it whole.
    const lines = readFileSync(path, "utf8").split("\n");
    for (let i = 0; i < lines.length; i++) {
      let text = lines[i] ?? "";
      const start = i;
      if (/^\s*(import|export)\b/.test(text) && !/["'];?\s*$/.test(text)) {
        while (i + 1 < lines.length && !/["'];?\s*$/.test(text)) text += ` ${lines[++i] ?? ""}`;
      }
      const m = IMPORT.exec(text);
      if (!m) continue;
      const typeOnly = m[2] !== undefined;
      const spec = m[3] ?? "";
      const at = { file, line: start + 1 };
      if (spec.startsWith(".")) {
        const target = relative(agent, resolve(path, "..", spec));
        // JSON Schemas live in schemas/ at the top (the design card) and are read by config, rules and api.
        if (target.startsWith(`..${sep}schemas${sep}`)) continue;
        if (target.startsWith("..")) {
          out.push({ ...at, message: `imports ${spec}, outside agent/` });
          continue;
        }
        const to = folderOf(target);
        // version.ts (build identity; it imports only runtime detection) is shown by every layer.
        if (target === "version.ts") continue;
        if (to === from || allowed.includes("*") || allowed.includes(to)) continue;
        if (typeOnly && allowed.includes(`${to}:type`)) continue;
        const hint = allowed.includes(`${to}:type`) ? " (only `import type` is allowed)" : "";
        out.push({ ...at, message: `agent/${from}/ may not import agent/${to}/${hint} (${spec})` });
        continue;
      }
      if (typeOnly) continue;
      const pkg = packageOf(spec);
      const owners = IO_LIBRARIES[pkg];
      if (owners && !owners.includes(file))
        out.push({ ...at, message: `${pkg} is imported only by ${owners.join(", ")}; go through it` });
      const home = CONFINED[pkg];
      if (home && from !== home) out.push({ ...at, message: `${pkg} is used only inside agent/${home}/` });
    }
  }
  return out;
}

if (import.meta.main) {
  const root = resolve(process.argv[2] ?? join(import.meta.dir, "..", ".."));
  const violations = checkBoundaries(root);
  for (const v of violations) console.error(`${v.file}:${v.line}: ${v.message}`);
  if (violations.length > 0) {
    console.error(
      `${violations.length} import boundary violation(s); the rules are in scripts/check/boundaries.ts`,
    );
    process.exit(1);
  }
}
