/**
 * The regular expressions of CEL rules (matches, find, findAll), run by re2js: a JavaScript port of RE2, the
 * engine CEL specifies, which matches in time linear in the subject. JavaScript's own engine backtracks, so a
 * pattern like `\d*\d*\d*x` on a 64 KiB subject ran for minutes and could not be interrupted; here it takes
 * milliseconds. Each match charges the subject's length to the evaluation budget. The only importer of re2js.
 */
import { RE2JS } from "re2js";
import { charge } from "./budget.ts";

const compiled = new Map<string, RE2JS>();

/** The compiled pattern (cached); throws with RE2's reason for a pattern it does not accept. */
export function compileRegex(pattern: string): RE2JS {
  let re = compiled.get(pattern);
  if (!re) {
    try {
      re = RE2JS.compile(pattern);
    } catch (err) {
      throw new Error(`invalid regular expression "${pattern}": ${(err as Error).message}`);
    }
    if (compiled.size > 1000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re;
}

/** True when `pattern` matches anywhere in `subject` (CEL matches()). */
export function regexMatches(subject: string, pattern: string): boolean {
  const re = compileRegex(pattern);
  charge(1 + subject.length);
  return re.matcher(subject).find();
}

/** The first match, or "" (CEL find()). */
export function regexFind(subject: string, pattern: string): string {
  const m = compileRegex(pattern).matcher(subject);
  charge(1 + subject.length);
  return m.find() ? (m.group() ?? "") : "";
}

/** Up to `limit` matches (all when negative) (CEL findAll()). */
export function regexFindAll(subject: string, pattern: string, limit = -1): string[] {
  const m = compileRegex(pattern).matcher(subject);
  charge(1 + subject.length);
  const out: string[] = [];
  while ((limit < 0 || out.length < limit) && m.find()) {
    out.push(m.group() ?? "");
    charge(1);
  }
  return out;
}
