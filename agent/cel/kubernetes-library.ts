/**
 * The CEL functions Kubernetes (ValidatingAdmissionPolicy) and Flux users expect that
 * @marcbachmann/cel-js lacks: regex find/findAll, string replace, list helpers,
 * quantity() and semver(). Registered on an Environment by cel.ts, the only importer of the library.
 */

/** What cel.ts passes in: the library's Environment, seen only through the calls used here. */
export interface Registrar {
  registerType(name: string, definition: unknown): Registrar;
  registerFunction(signature: string, handler: (...args: never[]) => unknown): Registrar;
}

/** Thrown for a bad argument; the library reports it as an evaluation error of the expression. */
function fail(message: string): never {
  throw new Error(message);
}

/** A Kubernetes resource quantity ("500m", "1Gi", "1e3"), compared by value. */
export class Quantity {
  constructor(
    readonly text: string,
    readonly value: number,
  ) {}
}

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};
const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/;

/** Parses a quantity as Kubernetes does (value kept as a double: exact for the sizes seen in practice). */
export function parseQuantity(text: string): Quantity {
  const m = QUANTITY.exec(text.trim());
  if (!m) fail(`quantity("${text}"): not a Kubernetes quantity`);
  const base = Number(m[1]);
  const exp = m[2] ? 10 ** Number(m[2].slice(1)) : 1;
  const suffix = m[3] ?? "";
  const mult = BINARY[suffix] ?? DECIMAL[suffix] ?? 1;
  return new Quantity(text, base * exp * mult);
}

/** A semantic version (semver 2.0.0), compared by precedence. */
export class Semver {
  constructor(
    readonly text: string,
    readonly major: bigint,
    readonly minor: bigint,
    readonly patch: bigint,
    readonly pre: string[],
  ) {}
}

const SEMVER = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/;

/** Parses a semantic version; a leading "v" is accepted. */
export function parseSemver(text: string): Semver {
  const m = SEMVER.exec(text);
  if (!m) fail(`semver("${text}"): not a semantic version`);
  return new Semver(
    text,
    BigInt(m[1] ?? 0),
    BigInt(m[2] ?? 0),
    BigInt(m[3] ?? 0),
    m[4] ? m[4].split(".") : [],
  );
}

/** -1, 0 or 1 by semver precedence. */
export function compareSemver(a: Semver, b: Semver): number {
  for (const k of ["major", "minor", "patch"] as const) {
    if (a[k] !== b[k]) return a[k] < b[k] ? -1 : 1;
  }
  if (a.pre.length === 0 || b.pre.length === 0)
    return b.pre.length - a.pre.length === 0 ? 0 : a.pre.length === 0 ? 1 : -1;
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

/** Orders two CEL scalars of one type; a type mismatch is an error. */
function compareScalars(a: unknown, b: unknown, fn: string): number {
  const ta = typeof a;
  if (ta !== typeof b || !["bigint", "number", "string", "boolean"].includes(ta)) {
    fail(`${fn}: elements must be ints, uints, doubles, strings or bools of one type`);
  }
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

/** A cached compiled RegExp; patterns are JavaScript regular expressions (the library's matches() too). */
const regexCache = new Map<string, RegExp>();
function regex(pattern: string, flags = ""): RegExp {
  const key = `${flags}/${pattern}`;
  let re = regexCache.get(key);
  if (!re) {
    try {
      re = new RegExp(pattern, flags);
    } catch (err) {
      fail(`invalid regular expression "${pattern}": ${(err as Error).message}`);
    }
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(key, re);
  }
  return re;
}

/** Registers the Kubernetes CEL library on an environment. */
export function registerKubernetesLibrary(env: Registrar): void {
  env
    .registerType("Quantity", { ctor: Quantity, fields: {} })
    .registerType("Semver", { ctor: Semver, fields: {} })
    // Strings.
    .registerFunction("string.replace(string, string): string", (s: string, a: string, b: string) =>
      s.split(a).join(b),
    )
    .registerFunction(
      "string.replace(string, string, int): string",
      (s: string, a: string, b: string, n: bigint) => {
        if (n < 0n) return s.split(a).join(b);
        let out = s;
        let from = 0;
        for (let i = 0n; i < n; i++) {
          const at = out.indexOf(a, from);
          if (at === -1) break;
          out = out.slice(0, at) + b + out.slice(at + a.length);
          from = at + b.length;
        }
        return out;
      },
    )
    .registerFunction("string.find(string): string", (s: string, p: string) => regex(p).exec(s)?.[0] ?? "")
    .registerFunction("string.findAll(string): list<string>", (s: string, p: string) =>
      [...s.matchAll(regex(p, "g"))].map((m) => m[0]),
    )
    .registerFunction("string.findAll(string, int): list<string>", (s: string, p: string, n: bigint) => {
      const all = [...s.matchAll(regex(p, "g"))].map((m) => m[0]);
      return n < 0n ? all : all.slice(0, Number(n));
    })
    // Lists.
    .registerFunction("list.isSorted(): bool", (l: unknown[]) =>
      l.every((v, i) => i === 0 || compareScalars(l[i - 1], v, "isSorted") <= 0),
    )
    .registerFunction("list.sum(): dyn", (l: unknown[]) => {
      if (l.length === 0) return 0n;
      return l.reduce((a, b) => {
        if (typeof a !== typeof b || (typeof a !== "bigint" && typeof a !== "number")) {
          fail("sum: elements must be numbers of one type");
        }
        return (a as number) + (b as number);
      });
    })
    .registerFunction("list.min(): dyn", (l: unknown[]) => {
      if (l.length === 0) fail("min: empty list");
      return l.reduce((a, b) => (compareScalars(a, b, "min") <= 0 ? a : b));
    })
    .registerFunction("list.max(): dyn", (l: unknown[]) => {
      if (l.length === 0) fail("max: empty list");
      return l.reduce((a, b) => (compareScalars(a, b, "max") >= 0 ? a : b));
    })
    .registerFunction("list.indexOf(dyn): int", (l: unknown[], v: unknown) =>
      BigInt(l.findIndex((x) => x === v)),
    )
    .registerFunction("list.lastIndexOf(dyn): int", (l: unknown[], v: unknown) =>
      BigInt(l.findLastIndex((x) => x === v)),
    )
    // quantity().
    .registerFunction("quantity(string): Quantity", (s: string) => parseQuantity(s))
    .registerFunction("isQuantity(string): bool", (s: string) => QUANTITY.test(s.trim()))
    .registerFunction("Quantity.isLessThan(Quantity): bool", (a: Quantity, b: Quantity) => a.value < b.value)
    .registerFunction(
      "Quantity.isGreaterThan(Quantity): bool",
      (a: Quantity, b: Quantity) => a.value > b.value,
    )
    .registerFunction("Quantity.compareTo(Quantity): int", (a: Quantity, b: Quantity) =>
      BigInt(Math.sign(a.value - b.value)),
    )
    .registerFunction("Quantity.asApproximateFloat(): double", (a: Quantity) => a.value)
    .registerFunction("Quantity.isInteger(): bool", (a: Quantity) => Number.isInteger(a.value))
    .registerFunction("Quantity.asInteger(): int", (a: Quantity) => {
      if (!Number.isSafeInteger(a.value)) fail(`quantity ${a.text} is not an integer that fits`);
      return BigInt(a.value);
    })
    .registerFunction("Quantity.sign(): int", (a: Quantity) => BigInt(Math.sign(a.value)))
    .registerFunction(
      "Quantity.add(Quantity): Quantity",
      (a: Quantity, b: Quantity) => new Quantity(`${a.text}+${b.text}`, a.value + b.value),
    )
    .registerFunction(
      "Quantity.sub(Quantity): Quantity",
      (a: Quantity, b: Quantity) => new Quantity(`${a.text}-${b.text}`, a.value - b.value),
    )
    // semver().
    .registerFunction("semver(string): Semver", (s: string) => parseSemver(s))
    .registerFunction("isSemver(string): bool", (s: string) => SEMVER.test(s))
    .registerFunction("Semver.major(): int", (v: Semver) => v.major)
    .registerFunction("Semver.minor(): int", (v: Semver) => v.minor)
    .registerFunction("Semver.patch(): int", (v: Semver) => v.patch)
    .registerFunction("Semver.isLessThan(Semver): bool", (a: Semver, b: Semver) => compareSemver(a, b) < 0)
    .registerFunction("Semver.isGreaterThan(Semver): bool", (a: Semver, b: Semver) => compareSemver(a, b) > 0)
    .registerFunction("Semver.compareTo(Semver): int", (a: Semver, b: Semver) => BigInt(compareSemver(a, b)));
}
