/** Config problems: a field path, what was wrong, and the error that carries them all. */
import { BerthError } from "../object/errors.ts";
import type { SchemaProblem } from "../object/yaml-schema.ts";

export { describeValue, fieldPath, problemAt } from "../object/yaml-schema.ts";

/** One thing wrong with a config file: the field path (`apps[1].timeout`), what was expected, and where. */
export type ConfigProblem = SchemaProblem;

/** A config file that cannot be used; the message lists every problem as `file: field: message`. */
export class ConfigError extends BerthError {
  readonly file: string;
  readonly problems: ConfigProblem[];

  constructor(file: string, problems: ConfigProblem[]) {
    const lines = problems.map(formatProblem);
    super(lines.join(`\n${file}: `), { subject: file });
    this.name = "ConfigError";
    this.file = file;
    this.problems = problems;
  }
}

/** `field: message (line N)` without the file name. */
export function formatProblem(problem: ConfigProblem): string {
  const where = problem.line === undefined ? "" : ` (line ${problem.line})`;
  return problem.field === "" ? `${problem.message}${where}` : `${problem.field}: ${problem.message}${where}`;
}
