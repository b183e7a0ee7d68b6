/** Config problems: a field path, what was wrong, and the error that carries them all. */
import { BerthError } from "../object/errors.ts";

/** One thing wrong with a config file: the field path (`apps[1].timeout`) and what was expected. */
export interface ConfigProblem {
  /** Field path like `apps[1].timeout`; "" for the document itself. */
  field: string;
  /** The same path as segments (`["apps", 1, "timeout"]`). */
  segments: (string | number)[];
  message: string;
  /** 1-based line of the offending value, when known. */
  line?: number;
}

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

/** Joins path segments into a field path: ["apps", 1, "timeout"] → `apps[1].timeout`. */
export function fieldPath(segments: readonly (string | number)[]): string {
  let out = "";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** A problem at a path of segments. */
export function problemAt(segments: (string | number)[], message: string): ConfigProblem {
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
