import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { configReference, generated, REFERENCE_PATH } from "../../scripts/docs/config-reference.ts";

describe("schemas/README.md, the configuration reference", () => {
  test("is what `npm run docs` generates from the schemas (run it after changing a description)", () => {
    expect(readFileSync(REFERENCE_PATH, "utf8")).toBe(generated());
  });

  test("lists every key with its description, nested keys by path", () => {
    const schema = {
      description: "Top.",
      required: ["a"],
      properties: {
        a: {
          description: "The a key.",
          type: "object",
          properties: { b: { description: "B, a duration.", $ref: "#/definitions/duration" } },
        },
        c: {
          description: "A list.",
          type: "array",
          items: { type: "object", properties: { d: { type: "boolean", description: "D." } } },
        },
      },
      definitions: { duration: { description: "Like 30s.", type: "string" } },
    };
    const text = configReference(schema, { properties: {} });
    expect(text).toContain("### `a`\n\nmapping, required. The a key.");
    expect(text).toContain("- `a.b` (duration) — B, a duration.");
    expect(text).toContain("- `c[].d` (boolean) — D.");
    expect(text).toContain("- `duration`: Like 30s.");
  });
});
