/** Turns the text of one manifest file (multi-document YAML or JSON) into plain documents, within limits. */
import {
  Composer,
  Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  Parser,
  type ScalarTag,
} from "yaml";
import { messageOf } from "../object/errors.ts";
import { fastParseYaml } from "./fast-yaml.ts";
import { jsonSyntaxError } from "./json-position.ts";

/** One document of a file; `index` counts every document of the file, empty ones included. */
export interface ParsedDocument {
  index: number;
  value: unknown;
  /** Where a key path of the document is (1-based line and column), or its nearest ancestor; the document start for []. */
  at?: (path: ReadonlyArray<string | number>) => { line: number; column: number } | undefined;
}

/** Why a file could not be parsed; `line`/`column` are 1-based when known. */
export interface ParseFailure {
  message: string;
  line?: number;
  column?: number;
}

/** The limits parsing honours. */
export interface ParseLimits {
  /** Documents this file may still add before the app's budget runs out. */
  documentBudget: number;
  maxAliases: number;
  maxDepth: number;
}

/**
 * YAML 1.2 core schema, plus YAML 1.1 octals ("0644" is 420), as kubectl reads them: file modes such as
 * `defaultMode: 0644` must mean what they meant under kubectl. "yes"/"on"/"y" stay strings.
 */
const LEGACY_OCTAL: ScalarTag = {
  identify: (value) => typeof value === "number",
  default: true,
  tag: "tag:yaml.org,2002:int",
  test: /^0[0-7]+$/,
  resolve: (text) => Number.parseInt(text, 8),
};

/** Documents of a `.json` file (one document), or the first syntax error with its position. */
export function parseJsonFile(text: string, limits: ParseLimits): ParsedDocument[] | ParseFailure {
  if (text.trim() === "") return [];
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    const found = jsonSyntaxError(text);
    if (found === undefined) return { message: `invalid JSON: ${messageOf(err)}` };
    return { message: `invalid JSON: ${found.message}`, ...position(text, found.offset) };
  }
  const deep = depthProblem(value, limits.maxDepth);
  if (deep) return { message: deep };
  return [{ index: 0, value }];
}

/** The schema's tags in resolution order, for the fast path (the same the Composer below resolves with). */
export const SCALAR_TAGS = new Document(null, { customTags: (tags) => [LEGACY_OCTAL, ...tags] }).schema
  .tags as ScalarTag[];

/**
 * Documents of a YAML stream, stopping at the first error (syntax, alias bomb, too many documents, too deep).
 * Every file tries the simple shape first, small ones too: 1,000 small ConfigMaps parse in 6–15 ms that way
 * against 50–160 ms with the `yaml` package (the higher figures in a fresh process, as in a one-shot `berth sync`,
 * whose render of them took about a third of a second); a file outside the shape costs one scan up to where it
 * leaves it.
 */
export function parseYamlFile(text: string, limits: ParseLimits): ParsedDocument[] | ParseFailure {
  if (limits.documentBudget >= 1) {
    const value = fastParseYaml(text, SCALAR_TAGS);
    if (value !== undefined) {
      const deep = depthProblem(value, limits.maxDepth);
      if (deep) return { message: `document 0: ${deep}` };
      // Positions are only needed for an error: the full parser finds them then.
      const at = (path: ReadonlyArray<string | number>) => {
        const full = parseYamlWithPackage(text, limits);
        return Array.isArray(full) ? full[0]?.at?.(path) : undefined;
      };
      return [{ index: 0, value, at }];
    }
  }
  return parseYamlWithPackage(text, limits);
}

/** parseYamlFile with the `yaml` package: every shape, every error with its position. */
export function parseYamlWithPackage(text: string, limits: ParseLimits): ParsedDocument[] | ParseFailure {
  const lineCounter = new LineCounter();
  const parser = new Parser(lineCounter.addNewLine);
  const composer = new Composer({
    customTags: (tags) => [LEGACY_OCTAL, ...tags],
    prettyErrors: false,
    // yaml's own duplicate-key check scans every earlier key of the map (quadratic: a 150k-key ConfigMap ran
    // past two minutes); duplicateKey() does the same check with a Set.
    uniqueKeys: false,
  });
  const out: ParsedDocument[] = [];
  let index = 0;
  for (const doc of composer.compose(parser.parse(text))) {
    const syntax = doc.errors[0];
    if (syntax) {
      const { line, col } = lineCounter.linePos(syntax.pos[0]);
      return { message: `invalid YAML: ${syntax.message.split("\n")[0]}`, line, column: col };
    }
    const duplicate = duplicateKey(doc);
    if (duplicate !== undefined) {
      const { line, col } = lineCounter.linePos(duplicate);
      return { message: "invalid YAML: Map keys must be unique", line, column: col };
    }
    if (index >= limits.documentBudget) return { message: `too many documents (the limit is per app)` };
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: limits.maxAliases });
    } catch (err) {
      const where = doc.range ? lineCounter.linePos(doc.range[0]) : undefined;
      const message = /alias/i.test(messageOf(err))
        ? `document ${index}: refused: more than ${limits.maxAliases} alias expansions (a YAML "billion laughs" bomb?)`
        : `document ${index}: ${messageOf(err)}`;
      return where ? { message, line: where.line, column: where.col } : { message };
    }
    const deep = depthProblem(value, limits.maxDepth);
    if (deep) return { message: `document ${index}: ${deep}` };
    out.push({ index, value, at: (path) => locate(doc, path, lineCounter) });
    index += 1;
  }
  return out;
}

/**
 * Offset of the first key that repeats an earlier key of its map, as yaml's `uniqueKeys` judges it (scalar
 * keys by value, other keys by identity), in linear time; iterative so deep input cannot overflow the stack.
 */
function duplicateKey(doc: Document.Parsed): number | undefined {
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        const key = pair.key;
        if (isScalar(key) && !Number.isNaN(key.value)) {
          if (seen.has(key.value)) return key.range?.[0] ?? 0;
          seen.add(key.value);
        }
        stack.push(key, pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(isPair(item) ? item.value : item);
    }
  }
  return undefined;
}

/** Line and column of the node at `path` (a key's own position for a mapping entry), or of its nearest ancestor. */
function locate(
  doc: Document.Parsed,
  path: ReadonlyArray<string | number>,
  lines: LineCounter,
): { line: number; column: number } | undefined {
  let node: unknown = doc.contents;
  let offset = doc.contents?.range?.[0] ?? doc.range[0];
  for (const step of path) {
    if (isAlias(node)) break;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(step));
      if (!pair) break;
      offset = (isScalar(pair.key) ? pair.key.range?.[0] : undefined) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof step === "number") {
      const item = node.items[step];
      const start = (item as { range?: [number, number, number] } | undefined)?.range?.[0];
      if (start === undefined) break;
      offset = start;
      node = item;
    } else break;
  }
  const { line, col } = lines.linePos(offset);
  return { line, column: col };
}

/** "nested deeper than N levels", or undefined; iterative so hostile input cannot overflow the stack. */
function depthProblem(root: unknown, maxDepth: number): string | undefined {
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (value === null || typeof value !== "object") continue;
    if (depth >= maxDepth) return `nested deeper than ${maxDepth} levels`;
    for (const child of Object.values(value)) stack.push([child, depth + 1]);
  }
  return undefined;
}

function position(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  return { line, column: offset - before.lastIndexOf("\n") };
}
