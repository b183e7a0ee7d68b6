/**
 * Every config key a message names ("set render.kustomize", "(render.maxMemory)", "ledger.path") exists in
 * schemas/config.schema.json: a hint naming a key the config rejects sends the user nowhere.
 */
import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const schema = JSON.parse(readFileSync(join(ROOT, "schemas", "config.schema.json"), "utf8")) as Schema;

interface Schema {
  properties?: Record<string, Schema>;
  items?: Schema;
  $ref?: string;
  oneOf?: Schema[];
  anyOf?: Schema[];
  definitions?: Record<string, Schema>;
}

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : [],
  );
}

function deref(s: Schema): Schema {
  if (!s.$ref) return s;
  const name = s.$ref.replace("#/definitions/", "");
  return deref(schema.definitions?.[name] ?? {});
}

/** The schema of a dotted key path, or undefined when the config has no such key. */
export function keyExists(path: string): boolean {
  let nodes: Schema[] = [schema];
  for (const part of path.split(".")) {
    const next: Schema[] = [];
    for (const n of nodes) {
      const d = deref(n);
      const alts = [d, ...(d.oneOf ?? []), ...(d.anyOf ?? [])].map(deref);
      for (const a of alts) {
        const holder = a.items ? deref(a.items) : a;
        for (const h of [holder, ...(holder.oneOf ?? []), ...(holder.anyOf ?? [])].map(deref)) {
          const p = h.properties?.[part];
          if (p) next.push(p);
        }
      }
    }
    if (next.length === 0) return false;
    nodes = next;
  }
  return true;
}

/** Config keys named inside string literals of agent/ (template placeholders removed). */
function hintedKeys(): Map<string, string> {
  const found = new Map<string, string>();
  const literal = /"(?:[^"\\\n]|\\.)*"|`(?:[^`\\]|\\.)*`/g;
  const key = /\b(source|ledger|api|render|ha|notify|apps)\.([a-z][A-Za-z]*(?:\.[a-z][A-Za-z]*)*)\b/g;
  for (const file of files(join(ROOT, "agent"))) {
    // Generated validators hold the schema itself (its descriptions name Flux groups such as source.toolkit…).
    if (file.endsWith(".generated.ts")) continue;
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(literal)) {
      const words = m[0].replace(/\$\{[^}]*\}/g, " ");
      // Prose only: a literal with spaces (messages and hints), not an import path or a property access.
      if (!words.includes(" ")) continue;
      for (const k of words.matchAll(key)) {
        const path = `${k[1]}.${k[2]}`;
        // File names, and script code inside a literal (a page's JavaScript: apps.map(…), apps.length).
        if (/\.(ts|db|yaml|json)$/.test(path)) continue;
        if (words[(k.index ?? 0) + k[0].length] === "(" || /\.(length|map|filter|forEach)$/.test(path))
          continue;
        found.set(path, file.slice(ROOT.length + 1));
      }
    }
  }
  return found;
}

describe("config keys named in messages", () => {
  test("the extractor finds the known hints", () => {
    const keys = hintedKeys();
    for (const k of ["render.kustomize", "render.helm", "render.sops", "ledger.path", "ledger.replica"])
      expect(keys.has(k)).toBe(true);
    expect(keyExists("render.tools.kustomize")).toBe(false);
    expect(keyExists("render.kustomize")).toBe(true);
  });

  test("every key a message names exists in schemas/config.schema.json", () => {
    const missing = [...hintedKeys()].filter(([k]) => !keyExists(k)).map(([k, f]) => `${k} (${f})`);
    expect(missing).toEqual([]);
  });
});
