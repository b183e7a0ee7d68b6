/** berth.yaml errors in unit tests. */
import { expect } from "bun:test";
import { parseConfig } from "../../agent/config/config.ts";
import { BerthError } from "../../agent/object/errors.ts";

/**
 * The message parseConfig throws for `text` read from `file`; the error must be a `kind` (a BerthError unless
 * given), and a config that parses fails the test.
 */
export function configErrorOf(
  text: string,
  file = "/etc/berth/berth.yaml",
  kind: abstract new (...args: never[]) => Error = BerthError,
): string {
  try {
    parseConfig(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(kind);
    return (err as Error).message;
  }
  throw new Error("expected parseConfig to throw");
}
