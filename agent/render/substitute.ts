/**
 * Variable substitution after rendering, compatible with Flux's `postBuild`: `${VAR}`, `${VAR:=default}`
 * (also `:-`, `=`, `-`), `$${VAR}` for a literal, on each object's YAML text, so `replicas: ${N}` becomes a
 * number. Objects labelled or annotated `kustomize.toolkit.fluxcd.io/substitute: disabled` are left alone.
 */
import { readFileSync } from "node:fs";
import { parse, stringify } from "yaml";
import { BerthError, messageOf } from "../object/errors.ts";
import { type KubeObject, refOf, subject } from "../object/object.ts";

/** Where variable values come from, merged in order (later wins), then `vars` over all. */
export type VarSource =
  | { file: string }
  | { kind: "ConfigMap" | "Secret"; name: string; namespace?: string; optional?: boolean };

/** Reads a ConfigMap's or Secret's data (Secret values base64-decoded); undefined if it does not exist. */
export type ConfigReader = (ref: {
  kind: "ConfigMap" | "Secret";
  namespace: string;
  name: string;
}) => Promise<Record<string, string> | undefined>;

/** The opt-out key, as a label or an annotation, with the value `disabled`. */
export const SUBSTITUTE_OPT_OUT = "kustomize.toolkit.fluxcd.io/substitute";

const VAR_NAME = /^[_a-zA-Z][_a-zA-Z0-9]*$/;
const REFERENCE = /\$(\$?)\{([^{}]*)\}/g;

/** Substitutes `vars` into `text`; throws naming the first variable that is undefined and has no default. */
export function substituteText(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(REFERENCE, (whole, dollar: string, body: string) => {
    if (dollar === "$") return whole.slice(1);
    const m = /^([_a-zA-Z][_a-zA-Z0-9]*)(?:(:=|:-|=|-)(.*))?$/s.exec(body);
    // Anything else (`${a b}`, `${}`) is not a variable reference: left as written, as envsubst does.
    if (!m) return whole;
    const [, name, op, fallback] = m as unknown as [string, string, string | undefined, string | undefined];
    const value = vars.get(name);
    if (op === undefined) {
      if (value === undefined) throw new BerthError(`variable "${name}" is not defined and has no default`);
      return value;
    }
    const emptyCounts = op.startsWith(":");
    if (value === undefined || (emptyCounts && value === "")) return fallback ?? "";
    return value;
  });
}

/** True if the object opted out of substitution by label or annotation. */
export function substitutionDisabled(object: KubeObject): boolean {
  const meta = object.metadata as { labels?: Record<string, unknown>; annotations?: Record<string, unknown> };
  return (
    meta.labels?.[SUBSTITUTE_OPT_OUT] === "disabled" || meta.annotations?.[SUBSTITUTE_OPT_OUT] === "disabled"
  );
}

/** Substitutes into one object via its YAML text; errors name the object and the variable. */
export function substituteObject(object: KubeObject, vars: ReadonlyMap<string, string>): KubeObject {
  if (substitutionDisabled(object)) return object;
  const text = stringify(object, { lineWidth: 0 });
  if (!text.includes("${")) return object;
  let replaced: string;
  try {
    replaced = substituteText(text, vars);
  } catch (err) {
    throw new BerthError(messageOf(err), { subject: subjectOfObject(object), reason: "BuildFailed" });
  }
  let parsed: unknown;
  try {
    parsed = parse(replaced, { maxAliasCount: 100 });
  } catch (err) {
    // Never quote the text: it may hold a Secret's values.
    throw new BerthError(`substituted manifest is not valid YAML: ${messageOf(err).split("\n")[0]}`, {
      subject: subjectOfObject(object),
      reason: "BuildFailed",
    });
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new BerthError("substituted manifest is not a mapping", {
      subject: subjectOfObject(object),
      reason: "BuildFailed",
    });
  }
  return parsed as KubeObject;
}

/** Checks variable names as Flux does: letters, digits and `_`, not starting with a digit. */
export function checkVarNames(vars: Iterable<string>, where: string): void {
  for (const name of vars) {
    if (!VAR_NAME.test(name)) {
      throw new BerthError(`variable name ${JSON.stringify(name)} must match ${VAR_NAME.source}`, {
        subject: where,
      });
    }
  }
}

/** Merges the sources in order, then `inline` over them. `defaultNamespace` is used for ConfigMaps/Secrets without one. */
export async function collectVars(
  inline: Readonly<Record<string, string>>,
  sources: readonly VarSource[],
  reader: ConfigReader | undefined,
  defaultNamespace: string | undefined,
): Promise<Map<string, string>> {
  const vars = new Map<string, string>();
  for (const source of sources) {
    let values: Record<string, string>;
    let where: string;
    if ("file" in source) {
      where = source.file;
      values = readVarsFile(source.file);
    } else {
      const namespace = source.namespace ?? defaultNamespace;
      where = `${source.kind}/${namespace ?? ""}/${source.name}`;
      if (namespace === undefined) {
        throw new BerthError("no namespace: set varsFrom[].namespace or the app's namespace", {
          subject: where,
          reason: "BuildFailed",
        });
      }
      if (!reader)
        throw new BerthError("cannot read variables from the cluster here", {
          subject: where,
          reason: "BuildFailed",
        });
      const found = await reader({ kind: source.kind, namespace, name: source.name });
      if (found === undefined) {
        if (source.optional) continue;
        throw new BerthError("not found (set optional: true to allow that)", {
          subject: where,
          reason: "BuildFailed",
        });
      }
      values = found;
    }
    checkVarNames(Object.keys(values), where);
    for (const [k, v] of Object.entries(values)) vars.set(k, v);
  }
  checkVarNames(Object.keys(inline), "vars");
  for (const [k, v] of Object.entries(inline)) vars.set(k, v);
  return vars;
}

/** A variables file: a YAML/JSON mapping of strings, or dotenv lines `KEY=value`. */
export function readVarsFile(path: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new BerthError(`cannot read variables file: ${messageOf(err)}`, {
      subject: path,
      reason: "BuildFailed",
    });
  }
  if (/\.(env)$/i.test(path) || /^\s*[_a-zA-Z][_a-zA-Z0-9]*=/m.test(text)) return parseDotenv(text);
  let data: unknown;
  try {
    data = parse(text, { maxAliasCount: 100 });
  } catch (err) {
    throw new BerthError(`not valid YAML: ${messageOf(err).split("\n")[0]}`, {
      subject: path,
      reason: "BuildFailed",
    });
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== "object" || Array.isArray(data)) {
    throw new BerthError("expected a mapping of variable names to values", {
      subject: path,
      reason: "BuildFailed",
    });
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(data)) {
    if (v !== null && typeof v === "object") {
      throw new BerthError(`variable "${k}" must be a string, number or boolean`, {
        subject: path,
        reason: "BuildFailed",
      });
    }
    out[k] = String(v ?? "");
  }
  return out;
}

function parseDotenv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    let value = line.slice(eq + 1).trim();
    if (/^(["']).*\1$/s.test(value)) value = value.slice(1, -1);
    out[line.slice(0, eq).trim()] = value;
  }
  return out;
}

/** A ConfigMap's data (and binaryData as text) or a Secret's decoded data, as variables. */
export function valuesOfConfigObject(object: KubeObject): Record<string, string> {
  const out: Record<string, string> = {};
  const data = (object.data ?? {}) as Record<string, unknown>;
  const secret = object.kind === "Secret";
  for (const [k, v] of Object.entries(data)) {
    if (typeof v !== "string") continue;
    out[k] = secret ? Buffer.from(v, "base64").toString("utf8") : v;
  }
  return out;
}

function subjectOfObject(object: KubeObject): string {
  try {
    return subject(refOf(object));
  } catch {
    return `${object.kind}/${String(object.metadata?.name ?? "")}`;
  }
}
