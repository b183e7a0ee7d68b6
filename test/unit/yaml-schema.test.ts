/** agent/object/yaml-schema.ts: YAML checked against a JSON Schema, errors worded with field, expectation and place. */
import { describe, expect, test } from "bun:test";
import { Ajv } from "ajv";
import {
  PositionedYaml,
  placeOf,
  problemError,
  schemaProblems,
  type Validator,
  YamlSyntaxError,
} from "../../agent/object/yaml-schema.ts";

// Compiled here with the options the generated config validator uses (verbose: unknown fields list the allowed ones).
const validate = new Ajv({ allErrors: true, strict: true, verbose: true }).compile({
  type: "object",
  additionalProperties: false,
  required: ["name"],
  properties: {
    name: { type: "string", pattern: "^[a-z]+$" },
    size: { type: "integer", minimum: 1 },
    mode: { enum: ["fast", "slow"] },
    note: { type: "string", maxLength: 5 },
    tags: { type: "array", minItems: 1, items: { type: "string" } },
    prune: { oneOf: [{ type: "boolean" }, { type: "object", properties: { enabled: { type: "boolean" } } }] },
  },
}) as Validator;

/** Every problem of `text` as `file:line:col: field: message`. */
function messagesOf(text: string): string[] {
  const yaml = PositionedYaml.parse(text);
  return schemaProblems(validate, yaml.data).map((p) => problemError("f.yaml", yaml.locate(p)).message);
}

describe("yaml-schema", () => {
  test("a valid document has no problems", () => {
    expect(messagesOf("name: web\nsize: 2\ntags: [a]\nprune: {enabled: true}\n")).toEqual([]);
  });

  test("each violation names file:line:col, the field, what was expected and what was there", () => {
    const text = "name: Web\nsize: 0\nmode: medium\nnote: too long here\ntags: []\nprune: 3\ncolour: red\n";
    expect(messagesOf(text)).toEqual([
      "f.yaml:7:1: colour: unknown field (allowed here: name, size, mode, note, tags, prune)",
      'f.yaml:1:7: name: expected a string matching ^[a-z]+$, got "Web"',
      "f.yaml:2:7: size: expected a number at least 1, got 0",
      'f.yaml:3:7: mode: expected one of "fast", "slow", got "medium"',
      'f.yaml:4:7: note: expected a string of at most 5 characters, got "too long here"',
      "f.yaml:5:7: tags: expected a non-empty list, got a list",
      "f.yaml:6:8: prune: expected boolean or a mapping, got 3",
    ]);
  });

  test("a missing field is placed at its mapping; list items are indexed", () => {
    const v = new Ajv({ allErrors: true, verbose: true }).compile({
      type: "object",
      properties: { apps: { type: "array", items: { type: "object", required: ["path"] } } },
    }) as Validator;
    const yaml = PositionedYaml.parse("apps:\n  - path: a\n  - name: b\n");
    const [problem] = schemaProblems(v, yaml.data);
    expect(problem && yaml.locate(problem)).toMatchObject({
      field: "apps[1].path",
      message: "required field is missing",
      line: 3,
      col: 5,
    });
  });

  test("YAML that does not parse is a YamlSyntaxError with its place", () => {
    let caught: unknown;
    try {
      PositionedYaml.parse("a: 1\nb: [\n");
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(YamlSyntaxError);
    const problem = (caught as YamlSyntaxError).problem;
    expect(placeOf("f.yaml", problem)).toMatch(/^f\.yaml:\d+:\d+$/);
    expect(problem.message).toStartWith("invalid YAML: ");
    expect(() => PositionedYaml.parse("a: 1\na: 2\n")).toThrow(/unique/);
  });

  test("an alias bomb is refused, not expanded", () => {
    const bomb = `a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`;
    expect(() => PositionedYaml.parse(bomb, 20)).toThrow(YamlSyntaxError);
  });
});
