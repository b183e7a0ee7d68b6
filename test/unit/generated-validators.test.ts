/** The validators compiled ahead of time (scripts/gen-validators.ts) match the schemas they were made from. */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { generate } from "../../scripts/gen-validators.ts";

const ROOT = join(import.meta.dir, "..", "..");

describe("generated validators", () => {
  for (const [path, text] of generate()) {
    test(`${path} is current (else run: bun scripts/gen-validators.ts)`, () => {
      expect(readFileSync(join(ROOT, path), "utf8")).toBe(text);
    });
  }
});
