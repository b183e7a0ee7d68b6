/**
 * Semver ranges as Flux's `OCIRepository.spec.ref.semver` reads them (Masterminds/semver): comparators
 * `= != > >= < <=`, `~1.2` (patch updates), `^1.2` (minor updates), wildcards `1.x`, `1.2.*`, hyphen ranges
 * `1.2 - 1.4`; a space or comma means AND, `||` means OR. Pre-releases match only a range that names one.
 */

interface Version {
  major: number;
  minor: number;
  patch: number;
  pre: string[];
}

const VERSION = /^v?(\d+)(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/** A full `MAJOR.MINOR.PATCH[-pre][+build]` (an optional leading `v`), or undefined. */
export function parseVersion(text: string): Version | undefined {
  const m = VERSION.exec(text);
  if (!m || m[2] === undefined || m[3] === undefined || /[xX*]/.test(`${m[2]}${m[3]}`)) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3]), pre: m[4] ? m[4].split(".") : [] };
}

/** The parts semver precedence reads (CEL's Semver holds them as bigints). */
export interface Precedence {
  major: number | bigint;
  minor: number | bigint;
  patch: number | bigint;
  pre: readonly string[];
}

/** Semver precedence: -1, 0 or 1. */
export function compareVersions(a: Precedence, b: Precedence): number {
  for (const k of ["major", "minor", "patch"] as const) if (a[k] !== b[k]) return a[k] < b[k] ? -1 : 1;
  if (a.pre.length === 0 || b.pre.length === 0)
    return a.pre.length === b.pre.length ? 0 : a.pre.length === 0 ? 1 : -1;
  for (let i = 0; i < Math.max(a.pre.length, b.pre.length); i++) {
    const x = a.pre[i];
    const y = b.pre[i];
    if (x === undefined) return -1;
    if (y === undefined) return 1;
    if (x === y) continue;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) return Number(x) < Number(y) ? -1 : 1;
    if (nx !== ny) return nx ? -1 : 1;
    return x < y ? -1 : 1;
  }
  return 0;
}

type Test = (v: Version) => boolean;

/** Compiles a range; throws an Error saying what is wrong with it. */
export function parseRange(range: string): { test: Test; allowsPrerelease: boolean } {
  const alternatives = range.split("||").map((alt) => alt.trim());
  if (alternatives.some((a) => a === ""))
    throw new Error(`"${range}" is not a semver range (empty alternative)`);
  const tests: Test[] = alternatives.map((alt) => {
    const normalised = alt.replace(/\s*-\s+/g, " - ").replace(/([<>=!~^]+)\s+/g, "$1");
    const words = normalised.split(/[\s,]+/).filter((w) => w !== "");
    const parts: Test[] = [];
    for (let i = 0; i < words.length; i++) {
      if (words[i + 1] === "-") {
        const lo = partial(words[i] as string, range);
        const hi = partial(words[i + 2] ?? "", range);
        parts.push((v) => compareVersions(v, lo.floor) >= 0 && below(v, hi, "<="));
        i += 2;
        continue;
      }
      parts.push(comparator(words[i] as string, range));
    }
    return (v) => parts.every((p) => p(v));
  });
  const allowsPrerelease = /-[0-9A-Za-z]/.test(range.replace(/\s-\s/g, " "));
  return { test: (v) => tests.some((t) => t(v)), allowsPrerelease };
}

/** The highest of `tags` that is a version in `range` (pre-releases only when the range names one). */
export function highestMatching(tags: readonly string[], range: string): string | undefined {
  const { test, allowsPrerelease } = parseRange(range);
  let best: { tag: string; version: Version } | undefined;
  for (const tag of tags) {
    const version = parseVersion(tag);
    if (!version || (version.pre.length > 0 && !allowsPrerelease) || !test(version)) continue;
    if (!best || compareVersions(version, best.version) > 0) best = { tag, version };
  }
  return best?.tag;
}

interface Partial {
  floor: Version;
  /** How many of major, minor, patch were given (a wildcard ends the count). */
  given: 0 | 1 | 2 | 3;
}

function partial(text: string, range: string): Partial {
  if (text === "*" || text === "x" || text === "X") return { floor: v(0, 0, 0), given: 0 };
  const m = VERSION.exec(text);
  if (!m) throw new Error(`"${range}" is not a semver range ("${text}" is not a version)`);
  const nums = [m[1], m[2], m[3]].map((p) => (p === undefined || /[xX*]/.test(p) ? undefined : Number(p)));
  const given = (nums[0] === undefined ? 0 : nums[1] === undefined ? 1 : nums[2] === undefined ? 2 : 3) as
    | 1
    | 2
    | 3;
  return {
    floor: {
      major: nums[0] ?? 0,
      minor: nums[1] ?? 0,
      patch: nums[2] ?? 0,
      pre: m[4] ? m[4].split(".") : [],
    },
    given,
  };
}

function v(major: number, minor: number, patch: number): Version {
  return { major, minor, patch, pre: [] };
}

/** The first version past a partial one: `1` → 2.0.0, `1.2` → 1.3.0. */
function ceiling(p: Partial): Version | undefined {
  if (p.given === 0) return undefined;
  if (p.given === 1) return v(p.floor.major + 1, 0, 0);
  if (p.given === 2) return v(p.floor.major, p.floor.minor + 1, 0);
  return undefined;
}

function below(version: Version, p: Partial, op: "<" | "<="): boolean {
  const top = ceiling(p);
  if (top) return compareVersions(version, top) < 0;
  if (p.given === 0) return true;
  const c = compareVersions(version, p.floor);
  return op === "<" ? c < 0 : c <= 0;
}

function comparator(word: string, range: string): Test {
  const m = /^(=|!=|>=|<=|>|<|~>|~|\^)?(.*)$/.exec(word);
  const op = m?.[1] ?? "=";
  const p = partial(m?.[2] ?? "", range);
  const lo = p.floor;
  const cmp = (x: Version) => compareVersions(x, lo);
  switch (op) {
    case "=":
      return (x) => cmp(x) >= 0 && (p.given === 3 ? cmp(x) === 0 : below(x, p, "<"));
    case "!=":
      return (x) => !(cmp(x) >= 0 && (p.given === 3 ? cmp(x) === 0 : below(x, p, "<")));
    case ">":
      return p.given === 3 ? (x) => cmp(x) > 0 : (x) => !below(x, p, "<=") && cmp(x) >= 0;
    case ">=":
      return (x) => cmp(x) >= 0;
    case "<":
      return (x) => cmp(x) < 0;
    case "<=":
      return (x) => below(x, p, "<=");
    case "~":
    case "~>": {
      const top = p.given <= 1 ? v(lo.major + 1, 0, 0) : v(lo.major, lo.minor + 1, 0);
      return (x) => cmp(x) >= 0 && compareVersions(x, top) < 0;
    }
    default: {
      // ^: up to the next change of the first non-zero part given.
      const top =
        lo.major > 0 || p.given <= 1
          ? v(lo.major + 1, 0, 0)
          : lo.minor > 0 || p.given === 2
            ? v(0, lo.minor + 1, 0)
            : v(0, 0, lo.patch + 1);
      return (x) => cmp(x) >= 0 && compareVersions(x, top) < 0;
    }
  }
}
