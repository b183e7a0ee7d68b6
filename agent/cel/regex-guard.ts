/**
 * A static check that keeps catastrophic backtracking out of CEL regexes (matches, find, findAll).
 * JavaScript's engine backtracks and cannot be interrupted, so patterns are held to what RE2 (the
 * engine CEL specifies) accepts — no backreferences, no lookaround — and nested repetition such as
 * `(a+)+` is refused. Subjects are capped, which bounds the polynomial cases the check lets through.
 */

/** The longest string a regex function is applied to, in characters. */
export const MAX_REGEX_SUBJECT = 65_536;

interface Frame {
  /** A repeating quantifier (*, +, {n,}, {n,m} with m > 1) occurs inside this group. */
  repeats: boolean;
}

const QUANTIFIER = /^\{(\d+)(,(\d*))?\}/;

/** Why a pattern could backtrack catastrophically (or is not RE2 syntax); undefined when it is accepted. */
export function regexProblem(pattern: string): string | undefined {
  const stack: Frame[] = [{ repeats: false }];
  // What the next quantifier applies to: a group that itself repeats inside, or a plain atom.
  let last: { groupRepeats: boolean } | undefined;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    const top = stack[stack.length - 1] as Frame;
    if (c === "\\") {
      const next = pattern[i + 1] ?? "";
      if (/[1-9]/.test(next) || (next === "k" && pattern[i + 2] === "<")) {
        return `backreference at offset ${i} (not supported: RE2 syntax has none)`;
      }
      i++;
      last = { groupRepeats: false };
      continue;
    }
    if (c === "[") {
      // A character class is one atom: skip to its closing bracket.
      let j = i + 1;
      if (pattern[j] === "^") j++;
      if (pattern[j] === "]") j++;
      while (j < pattern.length && pattern[j] !== "]") j += pattern[j] === "\\" ? 2 : 1;
      i = j;
      last = { groupRepeats: false };
      continue;
    }
    if (c === "(") {
      if (/^\(\?<?[=!]/.test(pattern.slice(i, i + 4))) {
        return `lookaround at offset ${i} (not supported: RE2 syntax has none)`;
      }
      stack.push({ repeats: false });
      last = undefined;
      continue;
    }
    if (c === ")") {
      const frame = stack.pop();
      if (!frame || stack.length === 0) return undefined; // unbalanced: the RegExp constructor reports it
      if (frame.repeats) (stack[stack.length - 1] as Frame).repeats = true;
      last = { groupRepeats: frame.repeats };
      continue;
    }
    let repeating: boolean | undefined;
    let width = 1;
    if (c === "*" || c === "+") repeating = true;
    else if (c === "?") repeating = false;
    else if (c === "{") {
      const m = QUANTIFIER.exec(pattern.slice(i));
      if (m) {
        width = m[0].length;
        repeating = m[2] !== undefined ? m[3] === "" || Number(m[3]) > 1 : Number(m[1]) > 1;
      }
    }
    if (repeating !== undefined) {
      if (repeating && last?.groupRepeats) {
        return `nested repetition at offset ${i} (a repeated group that repeats inside, like (a+)+, backtracks exponentially)`;
      }
      if (repeating) top.repeats = true;
      i += width - 1;
      if (pattern[i + 1] === "?") i++; // lazy modifier
      last = undefined;
      continue;
    }
    last = { groupRepeats: false };
  }
  return undefined;
}

const verdicts = new Map<string, string | undefined>();

/** Throws when a pattern is refused or the subject is too long; verdicts are cached per pattern. */
export function guardRegex(pattern: unknown, subject: unknown): void {
  if (typeof subject === "string" && subject.length > MAX_REGEX_SUBJECT) {
    throw new Error(
      `regex subject is ${subject.length} characters; the limit is ${MAX_REGEX_SUBJECT.toLocaleString("en")}`,
    );
  }
  if (typeof pattern !== "string") return;
  let problem = verdicts.get(pattern);
  if (problem === undefined && !verdicts.has(pattern)) {
    problem = regexProblem(pattern);
    if (verdicts.size > 1000) verdicts.clear();
    verdicts.set(pattern, problem);
  }
  if (problem !== undefined) throw new Error(`regular expression "${pattern}" refused: ${problem}`);
}
