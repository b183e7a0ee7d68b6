/**
 * `npm run docs`: writes schemas/README.md, the configuration reference, from the `description`s of
 * schemas/config.schema.json and schemas/rules.schema.json. The reference is generated so it cannot drift
 * from what the config loader accepts; test/unit/config-reference.test.ts fails when the checked-in file
 * differs. `--check` exits 1 instead of writing.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

type Schema = {
  $ref?: string;
  description?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  oneOf?: Schema[];
  anyOf?: Schema[];
  then?: Schema;
  else?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  definitions?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  title?: string;
};

const ROOT = join(import.meta.dir, "..", "..");
export const REFERENCE_PATH = join(ROOT, "schemas", "README.md");

// Definitions that are value formats, named as a type and explained once at the end.
const FORMAT_DEFS = new Set(["duration", "name", "envName", "listen", "expression"]);

function resolve(root: Schema, s: Schema): { schema: Schema; ref?: string } {
  if (!s.$ref) return { schema: s };
  const name = s.$ref.replace("#/definitions/", "");
  const def = root.definitions?.[name];
  if (!def) throw new Error(`${s.$ref}: no such definition`);
  const { $ref: _ref, ...own } = s;
  return { schema: { ...def, ...own }, ref: name };
}

function typeOf(root: Schema, s: Schema): string {
  const { schema, ref } = resolve(root, s);
  if (ref && FORMAT_DEFS.has(ref)) return ref;
  if (schema.const !== undefined) return `\`${JSON.stringify(schema.const)}\``;
  if (schema.enum) return schema.enum.map((v) => `\`${String(v)}\``).join(" \\| ");
  const alts = schema.oneOf ?? schema.anyOf;
  if (alts && !schema.type && alts.every((a) => a.type || a.$ref || a.enum)) {
    return [...new Set(alts.map((a) => typeOf(root, a)))].join(" or ");
  }
  if (schema.type === "array" && schema.items) {
    const item = typeOf(root, schema.items);
    return `list of ${item}`;
  }
  if (Array.isArray(schema.type)) return schema.type.join(" or ");
  if (schema.type)
    return schema.type === "object" && (schema.properties || schema.then) ? "mapping" : schema.type;
  return "any";
}

function objectOf(root: Schema, s: Schema): Schema | undefined {
  const { schema } = resolve(root, s);
  if (schema.properties) return schema;
  if (schema.type === "array" && schema.items) return objectOf(root, schema.items);
  // Alternatives (`oneOf`): their keys together; a key is required only if every alternative requires it.
  const alts = (schema.oneOf ?? schema.anyOf ?? [])
    .map((a) => resolve(root, a).schema)
    .filter((a) => a.properties);
  if (alts.length === 0) return undefined;
  const properties: Record<string, Schema> = {};
  for (const a of alts) Object.assign(properties, a.properties);
  const required = alts.length === 1 ? (alts[0]?.required ?? []) : [];
  return { properties, required };
}

function isList(root: Schema, s: Schema): boolean {
  return resolve(root, s).schema.type === "array";
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

function keys(root: Schema, parent: Schema, prefix: string, out: string[]): void {
  const required = new Set(parent.required ?? []);
  for (const [key, prop] of Object.entries(parent.properties ?? {})) {
    const path = `${prefix}${key}`;
    const { schema } = resolve(root, prop);
    const desc = prop.description ?? schema.description ?? "";
    const req = required.has(key) ? ", required" : "";
    out.push(`- \`${path}\` (${typeOf(root, prop)}${req})${desc ? ` — ${oneLine(desc)}` : ""}`);
    const child = objectOf(root, prop);
    if (child) keys(root, child, `${path}${isList(root, prop) ? "[]" : ""}.`, out);
  }
}

function section(root: Schema, heading: string, intro: string): string[] {
  const out: string[] = [`## ${heading}`, "", intro, ""];
  for (const [key, prop] of Object.entries(root.properties ?? {})) {
    const { schema } = resolve(root, prop);
    const req = (root.required ?? []).includes(key) ? ", required" : "";
    out.push(`### \`${key}\``, "");
    out.push(
      `${typeOf(root, prop)}${req}. ${oneLine(prop.description ?? schema.description ?? "")}`.trim(),
      "",
    );
    const child = objectOf(root, prop);
    if (child) {
      const lines: string[] = [];
      keys(root, child, `${key}${isList(root, prop) ? "[]" : ""}.`, lines);
      out.push(...lines, "");
    }
    // `if`/`then`/`else` (source: Git or OCI): each branch's keys under its own description.
    for (const branch of [schema.else, schema.then]) {
      if (!branch) continue;
      const resolved = resolve(root, branch);
      const lines: string[] = [];
      keys(root, resolved.schema, `${key}.`, lines);
      out.push(
        `**${resolved.ref ?? "otherwise"}**: ${oneLine(resolved.schema.description ?? "")}`,
        "",
        ...lines,
        "",
      );
    }
  }
  return out;
}

function formats(root: Schema): string[] {
  const out: string[] = [];
  for (const [name, def] of Object.entries(root.definitions ?? {})) {
    if (FORMAT_DEFS.has(name) && def.description) out.push(`- \`${name}\`: ${oneLine(def.description)}`);
  }
  return out;
}

export function configReference(config: Schema, rules: Schema): string {
  const lines = [
    "# Configuration reference",
    "",
    "<!-- Generated by `npm run docs` (scripts/docs/config-reference.ts) from the descriptions in",
    "     config.schema.json and rules.schema.json. Edit the schemas, then run `npm run docs`. -->",
    "",
    "berth reads one file, `berth.yaml` ([config.schema.json](config.schema.json)); rule files listed under",
    "`rules:` follow [rules.schema.json](rules.schema.json). Unknown keys are errors, and every error names the",
    "file, the field and what was expected. Editors complete and check berth.yaml when its first line is",
    "`# yaml-language-server: $schema=<path to>/config.schema.json`. `berth validate` checks a file without a",
    "cluster. What the settings do in depth: [rendering](../agent/render/README.md), [sources](../agent/source/README.md),",
    "[syncs, prune and tenants](../agent/engine/README.md), [drift](../agent/drift/README.md),",
    "[ledger](../agent/ledger/README.md), [API](../agent/api/README.md), [notifications](../agent/notify/README.md),",
    "[rules](../rules/README.md), [HA and installing](../scripts/install/README.md).",
    "",
    ...section(config, "berth.yaml", oneLine(config.description ?? "")),
    "### Value formats",
    "",
    ...formats(config),
    "",
    ...section(rules, "Rule files", oneLine(rules.description ?? "")),
    "### Value formats",
    "",
    ...formats(rules),
    "",
  ];
  return lines.join("\n");
}

export function generated(): string {
  const read = (f: string) => JSON.parse(readFileSync(join(ROOT, "schemas", f), "utf8")) as Schema;
  return configReference(read("config.schema.json"), read("rules.schema.json"));
}

if (import.meta.main) {
  const text = generated();
  if (process.argv.includes("--check")) {
    if (readFileSync(REFERENCE_PATH, "utf8") !== text) {
      process.stderr.write("schemas/README.md is out of date: run `npm run docs`\n");
      process.exit(1);
    }
  } else {
    writeFileSync(REFERENCE_PATH, text);
    process.stdout.write("wrote schemas/README.md\n");
  }
}
