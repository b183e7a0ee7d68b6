/**
 * YAML checked against a JSON Schema, with positions: parses a file keeping where every node stands, runs a
 * validator compiled ahead of time (scripts/gen-validators.ts, Ajv standalone) and words its errors for
 * people — the field as a path (`apps[1].timeout`), what was expected, what was there, and the line and
 * column (`berth.yaml:7:14: apps[1].timeout: expected a duration like "30s", got "soon"`). Config files
 * (agent/config/) and rule files (agent/policy/) load through it.
 */
import type { ErrorObject } from "ajv";
import { type Document, isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import { BerthError } from "./errors.ts";

/** A validator as scripts/gen-validators.ts generates it: true or false, and the errors of the last call. */
export type Validator = ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/** A step of a path into a document: a mapping key or a list index. */
export type Segment = string | number;

/** One thing wrong with a document: where (field path, and line and column when known) and what. */
export interface SchemaProblem {
  /** Field path like `apps[1].timeout`; "" for the document itself. */
  field: string;
  /** The same path as segments (`["apps", 1, "timeout"]`). */
  segments: Segment[];
  message: string;
  /** 1-based line of the offending value, when known. */
  line?: number;
  /** 1-based column of the offending value (or key, for an unknown field), when known. */
  col?: number;
  /** The key itself is wrong (an unknown field): placed at the key, not its value. */
  atKey?: boolean;
}

/** Joins path segments into a field path: ["apps", 1, "timeout"] → `apps[1].timeout`. */
export function fieldPath(segments: readonly Segment[]): string {
  let out = "";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** A problem at a path of segments. */
export function problemAt(segments: Segment[], message: string): SchemaProblem {
  return { field: fieldPath(segments), segments, message };
}

/** A short, quoted rendering of a value for messages ("soon", 42, an object, null). */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

/** `file:line:col` (the parts known): where compilers and editors point. */
export function placeOf(file: string, problem: SchemaProblem): string {
  if (problem.line === undefined) return file;
  return `${file}:${problem.line}${problem.col === undefined ? "" : `:${problem.col}`}`;
}

/** The problem as an error whose message reads `file:line:col: field: message` (its subject is the place). */
export function problemError(file: string, problem: SchemaProblem): BerthError {
  const field = problem.field === "" ? "" : `${problem.field}: `;
  return new BerthError(`${field}${problem.message}`, { subject: placeOf(file, problem) });
}

/** A file that is not YAML: the first syntax error, with its position. */
export class YamlSyntaxError extends Error {
  readonly problem: SchemaProblem;

  constructor(problem: SchemaProblem) {
    super(problem.message);
    this.name = "YamlSyntaxError";
    this.problem = problem;
  }
}

/** A parsed YAML document that still knows where each value was written. */
export class PositionedYaml {
  /** The document as plain data (aliases expanded, at most `maxAliasCount` of them). */
  readonly data: unknown;
  private readonly doc: Document.Parsed;
  private readonly lines: LineCounter;

  private constructor(data: unknown, doc: Document.Parsed, lines: LineCounter) {
    this.data = data;
    this.doc = doc;
    this.lines = lines;
  }

  /**
   * Parses one YAML document (duplicate keys are errors); throws a YamlSyntaxError (`invalid YAML: …`, with
   * line and column where the parser knows them) when the text is not YAML or expands too many aliases.
   */
  static parse(text: string, maxAliasCount = 100): PositionedYaml {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const syntax = doc.errors[0];
    if (syntax) {
      const { line, col } = lines.linePos(syntax.pos[0]);
      const message = `invalid YAML: ${syntax.message.split("\n")[0]}`;
      throw new YamlSyntaxError({ field: "", segments: [], message, line, col });
    }
    let data: unknown;
    try {
      data = doc.toJS({ maxAliasCount });
    } catch (err) {
      const message = `invalid YAML: ${err instanceof Error ? err.message : String(err)}`;
      throw new YamlSyntaxError({ field: "", segments: [], message });
    }
    return new PositionedYaml(data, doc, lines);
  }

  /**
   * Line and column of the value at `segments`, or of its nearest parent that exists (a missing field is
   * reported where its mapping is); undefined when not even the document has a place.
   */
  positionOf(segments: readonly Segment[], atKey = false): { line: number; col: number } | undefined {
    const parent = atKey && segments.length > 0 ? this.doc.getIn(segments.slice(0, -1), true) : undefined;
    if (isMap(parent)) {
      const last = String(segments.at(-1));
      const key = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === last)?.key;
      const range = (key as { range?: [number, number, number] } | null | undefined)?.range;
      if (range) return this.lines.linePos(range[0]);
    }
    for (let n = segments.length; n >= 0; n--) {
      const node = n === 0 ? this.doc.contents : this.doc.getIn(segments.slice(0, n), true);
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (range && (n > 0 || isMap(node) || isSeq(node))) return this.lines.linePos(range[0]);
    }
    return undefined;
  }

  /** The problem with the line and column of its field added. */
  locate(problem: SchemaProblem): SchemaProblem {
    const at = this.positionOf(problem.segments, problem.atKey === true);
    return at ? { ...problem, line: at.line, col: at.col } : problem;
  }
}

/** Words for what a schema node expects, beyond what its keyword says. */
export interface ExpectationHints {
  /** By the name of the `#/definitions/<name>` a pattern or maxLength failed in, e.g. duration → 'a duration like "30s"'. */
  byDefinition?: Record<string, string>;
  /** By the pattern itself (the generated validator carries its own copy of the schema, so nodes cannot be keys). */
  byPattern?: ReadonlyMap<string, string>;
}

/**
 * Every schema violation of `data`, one problem per field and message, worded for people (`required field is
 * missing`, `unknown field (allowed here: …)`, `expected X, got Y`). Lines are added by `PositionedYaml.locate`.
 * A validator compiled with `verbose` names the allowed fields of an unknown one.
 */
export function schemaProblems(
  validate: Validator,
  data: unknown,
  hints: ExpectationHints = {},
): SchemaProblem[] {
  if (validate(data)) return [];
  const problems: SchemaProblem[] = [];
  const seen = new Set<string>();
  // An `if`/`then` (source: Git or OCI) adds 'must match "then" schema' above the branch's own errors, which say more.
  const errors = (validate.errors ?? []).filter((e) => e.keyword !== "if");
  for (const error of withoutOneOfNoise(errors, hints)) {
    const problem = problemOf(error, data, hints);
    const key = `${problem.field}\0${problem.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(problem);
    }
  }
  return problems;
}

/**
 * A value failing a `oneOf` (a boolean or a mapping) makes Ajv report every branch and the oneOf itself.
 * Keep what the user needs: the errors of the branch whose type matched, or else one "expected X or Y".
 */
function withoutOneOfNoise(errors: readonly ErrorObject[], hints: ExpectationHints): ErrorObject[] {
  const out = [...errors];
  for (const oneOf of errors.filter((e) => e.keyword === "oneOf")) {
    const prefix = `${oneOf.schemaPath}/`;
    const branches = out.filter((e) => e.schemaPath.startsWith(prefix));
    const typeMisses = branches.filter((e) => e.keyword === "type" && e.instancePath === oneOf.instancePath);
    const deeper = branches.filter((e) => !typeMisses.includes(e));
    const drop = new Set<ErrorObject>(deeper.length > 0 ? [oneOf, ...typeMisses] : typeMisses);
    if (deeper.length === 0 && typeMisses.length > 0) {
      const types = typeMisses.map((e) => expectation(e, hints));
      oneOf.message = types.join(" or ");
      oneOf.keyword = "oneOfTypes";
    }
    for (let i = out.length - 1; i >= 0; i--) if (drop.has(out[i] as ErrorObject)) out.splice(i, 1);
  }
  return out;
}

function problemOf(error: ErrorObject, data: unknown, hints: ExpectationHints): SchemaProblem {
  const segments = pointerSegments(error.instancePath, data);
  const value = valueAt(data, segments);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "required":
      return problemAt([...segments, String(params.missingProperty)], "required field is missing");
    case "additionalProperties": {
      const allowed = Object.keys(propertiesOf(error.parentSchema)).join(", ");
      const field = problemAt(
        [...segments, String(params.additionalProperty)],
        `unknown field (allowed here: ${allowed})`,
      );
      return { ...field, atKey: true };
    }
    case "dependencies":
      return problemAt(
        [...segments, String(params.property)],
        `needs ${String(params.missingProperty)} as well`,
      );
    default:
      return problemAt(segments, `expected ${expectation(error, hints)}, got ${describeValue(value)}`);
  }
}

function expectation(error: ErrorObject, hints: ExpectationHints): string {
  const params = error.params as Record<string, unknown>;
  const byNode = error.keyword === "pattern" ? hints.byPattern?.get(String(params.pattern)) : undefined;
  if (byNode !== undefined) return byNode;
  const definition = /#\/definitions\/(\w+)\//.exec(error.schemaPath)?.[1];
  const named = definition === undefined ? undefined : hints.byDefinition?.[definition];
  if (named !== undefined && (error.keyword === "pattern" || error.keyword === "maxLength")) return named;
  switch (error.keyword) {
    case "type":
      return `${String(params.type)}`.replace("object", "a mapping").replace("array", "a list");
    case "const":
      return JSON.stringify(params.allowedValue);
    case "enum":
      return `one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "pattern":
      return `a string matching ${String(params.pattern)}`;
    case "minLength":
      return "a non-empty string";
    case "maxLength":
      return `a string of at most ${String(params.limit)} characters`;
    case "minItems":
      return params.limit === 1 ? "a non-empty list" : `a list of at least ${String(params.limit)} entries`;
    case "minProperties":
      return params.limit === 1
        ? "a non-empty mapping"
        : `a mapping of at least ${String(params.limit)} fields`;
    case "uniqueItems":
      return "no duplicate entries";
    case "maximum":
      return `a number at most ${String(params.limit)}`;
    case "minimum":
      return `a number at least ${String(params.limit)}`;
    case "exclusiveMinimum":
      return `a number above ${String(params.limit)}`;
    case "exclusiveMaximum":
      return `a number below ${String(params.limit)}`;
    default:
      return error.message ?? error.keyword;
  }
}

function propertiesOf(schemaNode: unknown): Record<string, unknown> {
  const props = (schemaNode as { properties?: Record<string, unknown> } | undefined)?.properties;
  return props ?? {};
}

/** JSON pointer → path segments, with array indexes as numbers. */
function pointerSegments(pointer: string, data: unknown): Segment[] {
  if (pointer === "") return [];
  const segments: Segment[] = [];
  let node: unknown = data;
  for (const raw of pointer.slice(1).split("/")) {
    const key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    const segment = Array.isArray(node) ? Number(key) : key;
    segments.push(segment);
    node = (node as Record<Segment, unknown> | undefined)?.[segment];
  }
  return segments;
}

function valueAt(data: unknown, segments: readonly Segment[]): unknown {
  let node = data;
  for (const segment of segments) node = (node as Record<Segment, unknown> | undefined)?.[segment];
  return node;
}
