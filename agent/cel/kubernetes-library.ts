/**
 * The CEL functions Kubernetes (ValidatingAdmissionPolicy) and Flux users expect that
 * @marcbachmann/cel-js lacks: regex find/findAll, string replace, list helpers,
 * quantity() and semver(). Registered on an Environment by cel.ts, the only importer of the library.
 */
import { compareVersions } from "../object/semver-range.ts";
import { regexFind, regexFindAll } from "./regex.ts";

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

/** -1, 0 or 1 by semver precedence (the one implementation, shared with OCI semver ranges). */
export const compareSemver: (a: Semver, b: Semver) => number = compareVersions;

/** Orders two CEL scalars of one type; a type mismatch is an error. */
function compareScalars(a: unknown, b: unknown, fn: string): number {
  const ta = typeof a;
  if (ta !== typeof b || !["bigint", "number", "string", "boolean"].includes(ta)) {
    fail(`${fn}: elements must be ints, uints, doubles, strings or bools of one type`);
  }
  return (a as number) < (b as number) ? -1 : (a as number) > (b as number) ? 1 : 0;
}

/** A parsed URL (Kubernetes url()): absolute URLs only, as the Kubernetes library requires. */
export class CelUrl {
  constructor(readonly url: URL) {}
}

/** An IPv4 or IPv6 address as a number, with its family. */
export class IpAddress {
  constructor(
    readonly family: 4 | 6,
    readonly value: bigint,
    readonly text: string,
  ) {}
}

/** A CIDR range: the network address and the prefix length. */
export class Cidr {
  constructor(
    readonly ip: IpAddress,
    readonly prefix: number,
  ) {}
}

/** Parses an IPv4 (dotted quad, no leading zeros) or IPv6 address; undefined when it is neither. */
export function parseIp(text: string): IpAddress | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    const parts = text.split(".");
    if (parts.some((p) => (p.length > 1 && p.startsWith("0")) || Number(p) > 255)) return undefined;
    return new IpAddress(
      4,
      parts.reduce((a, p) => (a << 8n) | BigInt(p), 0n),
      text,
    );
  }
  if (!text.includes(":") || text.includes("%") || !/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string | undefined) => (h ? h.split(":") : []);
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  const words: number[] = [];
  const push = (list: string[]) => {
    for (const g of list) {
      if (g.includes(".")) {
        const v4 = parseIp(g);
        if (!v4 || v4.family !== 4) return false;
        words.push(Number(v4.value >> 16n), Number(v4.value & 0xffffn));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) words.push(Number.parseInt(g, 16));
      else return false;
    }
    return true;
  };
  const before: number[] = [];
  if (!push(head)) return undefined;
  before.push(...words.splice(0));
  if (!push(tail)) return undefined;
  const after = words;
  const missing = 8 - before.length - after.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...before, ...Array(halves.length === 1 ? 0 : missing).fill(0), ...after];
  return new IpAddress(
    6,
    all.reduce((a, w) => (a << 16n) | BigInt(w), 0n),
    text,
  );
}

function ipOrFail(text: string): IpAddress {
  return parseIp(text) ?? fail(`ip("${text}"): not an IP address`);
}

/** Parses "address/prefix"; the address may have host bits set (Kubernetes masks them in containsIP). */
export function parseCidr(text: string): Cidr | undefined {
  const [addr, len, extra] = text.split("/");
  if (addr === undefined || len === undefined || extra !== undefined || !/^\d{1,3}$/.test(len))
    return undefined;
  const ip = parseIp(addr);
  const prefix = Number(len);
  if (!ip || prefix > (ip.family === 4 ? 32 : 128)) return undefined;
  return new Cidr(ip, prefix);
}

function cidrContains(c: Cidr, ip: IpAddress): boolean {
  if (c.ip.family !== ip.family) return false;
  const bits = BigInt(c.ip.family === 4 ? 32 : 128);
  const shift = bits - BigInt(c.prefix);
  return c.ip.value >> shift === ip.value >> shift;
}

function urlOrFail(text: string): CelUrl {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    fail(`url("${text}"): not an absolute URL`);
  }
  return new CelUrl(u);
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
    .registerFunction("string.find(string): string", (s: string, p: string) => regexFind(s, p))
    .registerFunction("string.findAll(string): list<string>", (s: string, p: string) => regexFindAll(s, p))
    .registerFunction("string.findAll(string, int): list<string>", (s: string, p: string, n: bigint) =>
      regexFindAll(s, p, n < 0n ? -1 : Number(n)),
    )
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
    .registerFunction("Semver.compareTo(Semver): int", (a: Semver, b: Semver) => BigInt(compareSemver(a, b)))
    // url().
    .registerType("URL", { ctor: CelUrl, fields: {} })
    .registerFunction("url(string): URL", (s: string) => urlOrFail(s))
    .registerFunction("isURL(string): bool", (s: string) => URL.canParse(s))
    .registerFunction("URL.getScheme(): string", (u: CelUrl) => u.url.protocol.replace(/:$/, ""))
    .registerFunction("URL.getHost(): string", (u: CelUrl) => u.url.host)
    .registerFunction("URL.getHostname(): string", (u: CelUrl) => u.url.hostname.replace(/^\[|\]$/g, ""))
    .registerFunction("URL.getPort(): string", (u: CelUrl) => u.url.port)
    .registerFunction("URL.getEscapedPath(): string", (u: CelUrl) => u.url.pathname)
    .registerFunction("URL.getQuery(): map<string, list<string>>", (u: CelUrl) => {
      const out = new Map<string, string[]>();
      for (const [k, v] of u.url.searchParams) out.set(k, [...(out.get(k) ?? []), v]);
      return out;
    })
    // ip() and cidr().
    .registerType("net.IP", { ctor: IpAddress, fields: {} })
    .registerType("net.CIDR", { ctor: Cidr, fields: {} })
    .registerFunction("ip(string): net.IP", (s: string) => ipOrFail(s))
    .registerFunction("isIP(string): bool", (s: string) => parseIp(s) !== undefined)
    .registerFunction("string(net.IP): string", (ip: IpAddress) => ip.text)
    .registerFunction("net.IP.family(): int", (ip: IpAddress) => BigInt(ip.family))
    .registerFunction("net.IP.isLoopback(): bool", (ip: IpAddress) =>
      ip.family === 4 ? ip.value >> 24n === 127n : ip.value === 1n,
    )
    .registerFunction("net.IP.isUnspecified(): bool", (ip: IpAddress) => ip.value === 0n)
    .registerFunction(
      "cidr(string): net.CIDR",
      (s: string) => parseCidr(s) ?? fail(`cidr("${s}"): not a CIDR`),
    )
    .registerFunction("isCIDR(string): bool", (s: string) => parseCidr(s) !== undefined)
    .registerFunction("net.CIDR.containsIP(net.IP): bool", (c: Cidr, ip: IpAddress) => cidrContains(c, ip))
    .registerFunction("net.CIDR.containsIP(string): bool", (c: Cidr, s: string) =>
      cidrContains(c, ipOrFail(s)),
    )
    .registerFunction(
      "net.CIDR.containsCIDR(net.CIDR): bool",
      (c: Cidr, o: Cidr) => o.prefix >= c.prefix && cidrContains(c, o.ip),
    )
    .registerFunction("net.CIDR.ip(): net.IP", (c: Cidr) => c.ip)
    .registerFunction("net.CIDR.prefixLength(): int", (c: Cidr) => BigInt(c.prefix));
}
