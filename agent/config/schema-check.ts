/** Validates a parsed berth.yaml against schemas/config.schema.json and words each failure for humans. */
import type { ErrorObject } from "ajv";
import schema from "../../schemas/config.schema.json" with { type: "json" };
import generated from "./config-schema.generated.ts";
import { type ConfigProblem, describeValue, problemAt } from "./problems.ts";

/** The JSON Schema of berth.yaml, as embedded in the binary. */
export const CONFIG_SCHEMA: unknown = schema;

/**
 * The schema compiled ahead of time (scripts/gen-validators.ts): compiling it with Ajv at start took ~0.3 s
 * and left ~20 MB resident for a check made once.
 */
const validate = generated as ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/** What a named definition's pattern expects, for messages. */
const EXPECTED_BY_DEFINITION: Record<string, string> = {
  duration: 'a duration like "30s"',
  name: "a lowercase name (a-z, 0-9, '-', at most 63 characters)",
  envName: "an environment variable name",
  listen: 'host:port like "127.0.0.1:7420"',
};

/** Every schema violation of a parsed config, one problem per field. */
export function schemaProblems(data: unknown): ConfigProblem[] {
  if (validate(data)) return [];
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  for (const error of withoutOneOfNoise(validate.errors ?? [])) {
    const problem = problemOf(error, data);
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
function withoutOneOfNoise(errors: readonly ErrorObject[]): ErrorObject[] {
  const out = [...errors];
  for (const oneOf of errors.filter((e) => e.keyword === "oneOf")) {
    const prefix = `${oneOf.schemaPath}/`;
    const branches = out.filter((e) => e.schemaPath.startsWith(prefix));
    const typeMisses = branches.filter((e) => e.keyword === "type" && e.instancePath === oneOf.instancePath);
    const deeper = branches.filter((e) => !typeMisses.includes(e));
    const drop = new Set<ErrorObject>(deeper.length > 0 ? [oneOf, ...typeMisses] : typeMisses);
    if (deeper.length === 0 && typeMisses.length > 0) {
      const types = typeMisses.map((e) => expectation(e));
      oneOf.message = types.join(" or ");
      oneOf.keyword = "oneOfTypes";
    }
    for (let i = out.length - 1; i >= 0; i--) if (drop.has(out[i] as ErrorObject)) out.splice(i, 1);
  }
  return out;
}

function problemOf(error: ErrorObject, data: unknown): ConfigProblem {
  const segments = pointerSegments(error.instancePath, data);
  const value = valueAt(data, segments);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "required":
      return problemAt([...segments, String(params.missingProperty)], "required field is missing");
    case "additionalProperties": {
      const allowed = Object.keys(propertiesOf(error.parentSchema)).join(", ");
      return problemAt(
        [...segments, String(params.additionalProperty)],
        `unknown field (allowed here: ${allowed})`,
      );
    }
    case "dependencies":
      return problemAt(
        [...segments, String(params.property)],
        `needs ${String(params.missingProperty)} as well`,
      );
    default:
      return problemAt(segments, `expected ${expectation(error)}, got ${describeValue(value)}`);
  }
}

function expectation(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  const definition = /#\/definitions\/(\w+)\//.exec(error.schemaPath)?.[1];
  const named = definition === undefined ? undefined : EXPECTED_BY_DEFINITION[definition];
  if (named !== undefined && (error.keyword === "pattern" || error.keyword === "maxLength")) return named;
  switch (error.keyword) {
    case "type":
      return `${String(params.type)}`.replace("object", "a mapping").replace("array", "a list");
    case "const":
      return JSON.stringify(params.allowedValue);
    case "enum":
      return `one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`;
    case "minLength":
      return "a non-empty string";
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
function pointerSegments(pointer: string, data: unknown): (string | number)[] {
  if (pointer === "") return [];
  const segments: (string | number)[] = [];
  let node: unknown = data;
  for (const raw of pointer.slice(1).split("/")) {
    const key = raw.replaceAll("~1", "/").replaceAll("~0", "~");
    const segment = Array.isArray(node) ? Number(key) : key;
    segments.push(segment);
    node = (node as Record<string | number, unknown> | undefined)?.[segment];
  }
  return segments;
}

function valueAt(data: unknown, segments: readonly (string | number)[]): unknown {
  let node = data;
  for (const segment of segments) node = (node as Record<string | number, unknown> | undefined)?.[segment];
  return node;
}
