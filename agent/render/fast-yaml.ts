/**
 * A fast path for the one shape that makes big manifest files: a single document of nested block mappings
 * with one-line scalar values (a ConfigMap or Secret with very many keys). The `yaml` package builds a token
 * list, a syntax tree and then plain values — about 1 µs per byte; this reads such a file line by line in a
 * fraction of that. Anything outside the shape (sequences, flow collections, block or multi-line scalars,
 * anchors, tags, comments after values, document markers, quoted keys, tabs, CR) returns undefined and the
 * caller parses with the `yaml` package, which also reports every error: this path never judges bad input.
 * Scalars are resolved by the same tags the `yaml` package uses (passed in), so values are identical.
 */
import { isScalar, type ScalarTag } from "yaml";

/** Plain keys that are certainly strings; anything else (numbers, booleans, quoted, `<<`) leaves the fast path. */
const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_./-]*$/;
/** Double-quoted values using only the escapes JSON has (JSON.parse then reads them as YAML would). */
const JSON_STRING = /^"(?:[^"\\]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"$/;
const SINGLE_QUOTED = /^'(?:[^']|'')*'$/;
/** A plain scalar may not start with an indicator (or `- `, `? `, `: `). */
const PLAIN_START = /^(?:[^-?:,[\]{}#&*!|>'"%@`\s]|[-?:][^\s])/;

const NOT_SIMPLE = Symbol("not simple");

interface Level {
  indent: number;
  map: Record<string, unknown>;
}

/**
 * The document's value, or undefined when the text is outside the fast path's shape. `tags` are the schema's
 * scalar tags in resolution order (the `yaml` package's, custom ones first).
 */
export function fastParseYaml(text: string, tags: readonly ScalarTag[]): Record<string, unknown> | undefined {
  if (hasOddCharacters(text)) return undefined;
  const root: Record<string, unknown> = {};
  const stack: Level[] = [{ indent: 0, map: root }];
  let pending: { level: Level; key: string } | undefined;
  let lines = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end);
    start = end + 1;
    let indent = 0;
    while (line.charCodeAt(indent) === 32) indent++;
    if (indent === line.length || line.charCodeAt(indent) === 35 /* # */) continue;
    if (indent === 0 && (line.startsWith("---") || line.startsWith("..."))) return undefined;
    if (line.charCodeAt(indent) === 37 /* % */ && indent === 0) return undefined;
    lines++;
    if (pending) {
      const parent = pending.level;
      if (indent > parent.indent) {
        const child: Level = { indent, map: {} };
        set(parent.map, pending.key, child.map);
        stack.push(child);
      } else set(parent.map, pending.key, null);
      pending = undefined;
    }
    while (stack.length > 1 && indent < (stack[stack.length - 1] as Level).indent) stack.pop();
    const level = stack[stack.length - 1] as Level;
    if (indent !== level.indent) return undefined;
    const content = line.slice(indent);
    const colon = content.indexOf(":");
    if (colon <= 0 || colon > 1000) return undefined;
    const key = content.slice(0, colon);
    if (!PLAIN_KEY.test(key) || typeof resolvePlain(key, tags) !== "string") return undefined;
    if (key === "__proto__" || Object.hasOwn(level.map, key)) return undefined;
    const after = content.slice(colon + 1);
    if (after !== "" && after.charCodeAt(0) !== 32) return undefined;
    const raw = after.trim();
    if (raw === "") {
      pending = { level, key };
      continue;
    }
    const value = scalar(raw, tags);
    if (value === NOT_SIMPLE) return undefined;
    set(level.map, key, value);
  }
  if (lines === 0) return undefined;
  if (pending) set(pending.level.map, pending.key, null);
  return root;
}

/** One scalar that ends on its line, or NOT_SIMPLE. */
function scalar(raw: string, tags: readonly ScalarTag[]): unknown {
  const first = raw.charCodeAt(0);
  if (first === 34 /* " */) {
    if (!JSON_STRING.test(raw)) return NOT_SIMPLE;
    return JSON.parse(raw) as string;
  }
  if (first === 39 /* ' */) {
    if (!SINGLE_QUOTED.test(raw)) return NOT_SIMPLE;
    return raw.slice(1, -1).replaceAll("''", "'");
  }
  // Comments, a nested "key: value", a trailing ":" or an indicator: the full parser decides.
  if (!PLAIN_START.test(raw) || raw.includes(" #") || raw.includes(": ") || raw.endsWith(":"))
    return NOT_SIMPLE;
  return resolvePlain(raw, tags);
}

/** What a plain scalar means: the first default tag whose test matches resolves it, else it is a string. */
function resolvePlain(raw: string, tags: readonly ScalarTag[]): unknown {
  for (const tag of tags) {
    if (tag.default === true && tag.test?.test(raw)) {
      let failed = false;
      const value = tag.resolve(
        raw,
        () => {
          failed = true;
        },
        { intAsBigInt: false } as never,
      );
      if (failed) return NOT_SIMPLE;
      // Some tags (booleans) resolve to a Scalar node, to keep its source text: its value is what toJS gives.
      return isScalar(value) ? value.value : value;
    }
  }
  return raw;
}

/** Control characters (other than LF), CR, tab, BOM and Unicode line breaks: the full parser handles them. */
function hasOddCharacters(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 32 ? c !== 10 : c === 127 || c === 0x85 || c === 0x2028 || c === 0x2029 || c === 0xfeff)
      return true;
  }
  return false;
}

/** As the `yaml` package sets a key: inherited names (toString, …) become own properties. */
function set(map: Record<string, unknown>, key: string, value: unknown): void {
  if (key in map)
    Object.defineProperty(map, key, { value, writable: true, enumerable: true, configurable: true });
  else map[key] = value;
}
