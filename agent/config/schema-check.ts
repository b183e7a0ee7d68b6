/** Validates a parsed berth.yaml against schemas/config.schema.json, worded by agent/object/yaml-schema.ts. */

import schema from "../../schemas/config.schema.json" with { type: "json" };
import { schemaProblems as problemsOf, type Validator } from "../object/yaml-schema.ts";
import generated from "./config-schema.generated.ts";
import type { ConfigProblem } from "./problems.ts";

/** The JSON Schema of berth.yaml, as embedded in the binary. */
export const CONFIG_SCHEMA: unknown = schema;

/**
 * The schema compiled ahead of time (scripts/gen-validators.ts): compiling it with Ajv at start took ~0.3 s
 * and left ~20 MB resident for a check made once.
 */
const validate = generated as Validator;

/** What a named definition's pattern expects, for messages. */
const EXPECTED_BY_DEFINITION: Record<string, string> = {
  duration: 'a duration like "30s"',
  name: "a lowercase name (a-z, 0-9, '-', at most 63 characters)",
  envName: "an environment variable name",
  listen: 'host:port like "127.0.0.1:7420"',
};

/** What a single field's pattern expects, for messages, keyed by the pattern itself. */
const ociFields = schema.definitions.ociSource.properties;
const EXPECTED_BY_PATTERN = new Map<string, string>([
  [
    ociFields.oci.pattern,
    "oci://<registry host[:port]>/<repository> (no tag or digest: those go in tag, semver or digest)",
  ],
  [ociFields.tag.pattern, "a tag (letters, digits, '_', '.', '-'; at most 128)"],
  [ociFields.digest.pattern, "a manifest digest sha256:<64 lowercase hex>"],
]);

/** Every schema violation of a parsed config, one problem per field. */
export function schemaProblems(data: unknown): ConfigProblem[] {
  return problemsOf(validate, data, { byDefinition: EXPECTED_BY_DEFINITION, byPattern: EXPECTED_BY_PATTERN });
}
