/**
 * The official CEL conformance data (@bufbuild/cel-spec = cel-spec v0.25.1) run through berth's CEL
 * module (agent/cel/cel.ts). Skips carry a reason; failures are listed with a reason in test/fixtures/cel/conformance-failures.tsv.
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { tests as conformance } from "@bufbuild/cel-spec/testdata/conformance.js";
import { CelEnvironment } from "../../agent/cel/cel.ts";

const SECTIONS = [
  "basic",
  "comparisons",
  "conversions",
  "fields",
  "lists",
  "logic",
  "macros",
  "parse",
  "plumbing",
  "string",
  "timestamps",
  "integer_math",
  "fp_math",
];
/** Every case known to fail, with the reason: a case that starts passing or a new failure fails the test. */
const KNOWN_FAILURES = new Map(
  readFileSync(join(import.meta.dir, "..", "fixtures", "cel", "conformance-failures.tsv"), "utf8")
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const [name = "", reason = ""] = line.split("\t");
      return [name, reason] as const;
    }),
);

type Json = Record<string, unknown>;
interface RawTest {
  original: Json & { name?: string; expr: string };
}
interface RawSuite {
  name: string;
  suites?: RawSuite[];
  tests?: RawTest[];
}

const env = new CelEnvironment({ dynamicVariables: true });

/** A canonical string of a CEL value, so expected (proto JSON) and actual (library) values compare. */
function canon(v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (typeof v === "bigint") return `int:${v}`;
  if (typeof v === "number") return `double:${Object.is(v, -0) ? 0 : v}`;
  if (typeof v === "string") return `string:${JSON.stringify(v)}`;
  if (typeof v === "boolean") return `bool:${v}`;
  if (v instanceof Uint8Array) return `bytes:${Buffer.from(v).toString("hex")}`;
  if (Array.isArray(v)) return `[${v.map(canon).join(",")}]`;
  if (v instanceof Map) {
    return `{${[...v]
      .map(([k, x]) => `${canon(k)}:${canon(x)}`)
      .sort()
      .join(",")}}`;
  }
  const name = (v as object).constructor?.name;
  if (name === "UnsignedInt" || name === "UnsignedInteger") return `uint:${(v as { value: bigint }).value}`;
  if (name === "Type") return `type:${String(v).replace(/^Type<(.*)>$/, "$1")}`;
  if (name === "Object") {
    return `{${Object.entries(v as Json)
      .map(([k, x]) => `${canon(k)}:${canon(x)}`)
      .sort()
      .join(",")}}`;
  }
  return `${name}:${String(v)}`;
}

/** The expected value (a cel.expr.Value in proto JSON) in the same canonical form, or why it cannot be compared. */
function expected(value: Json): string | { skip: string } {
  const [kind, raw] = Object.entries(value)[0] ?? ["nullValue", null];
  switch (kind) {
    case "int64Value":
      return `int:${BigInt(raw as string)}`;
    case "uint64Value":
      return `uint:${BigInt(raw as string)}`;
    case "doubleValue":
      return `double:${Number(raw)}`;
    case "stringValue":
      return `string:${JSON.stringify(raw)}`;
    case "boolValue":
      return `bool:${raw}`;
    case "nullValue":
      return "null";
    case "bytesValue":
      return `bytes:${Buffer.from(raw as string, "base64").toString("hex")}`;
    case "typeValue":
      return `type:${raw}`;
    case "listValue": {
      const items = ((raw as Json).values as Json[] | undefined) ?? [];
      const parts = items.map(expected);
      const bad = parts.find((p) => typeof p !== "string");
      return bad ?? `[${parts.join(",")}]`;
    }
    case "mapValue": {
      const entries = ((raw as Json).entries as Array<{ key: Json; value: Json }> | undefined) ?? [];
      const parts: string[] = [];
      for (const e of entries) {
        const k = expected(e.key);
        const x = expected(e.value);
        if (typeof k !== "string") return k;
        if (typeof x !== "string") return x;
        parts.push(`${k}:${x}`);
      }
      return `{${parts.sort().join(",")}}`;
    }
    default:
      return { skip: `expected value is a protobuf message (${kind}); berth has no protobuf types` };
  }
}

/** A binding's value as a CEL value, or why it cannot be given. */
function binding(value: Json): unknown {
  const [kind, raw] = Object.entries(value)[0] ?? ["nullValue", null];
  switch (kind) {
    case "int64Value":
      return BigInt(raw as string);
    case "uint64Value":
      return env.compile(`${BigInt(raw as string)}u`).evaluate({});
    case "doubleValue":
      return Number(raw);
    case "stringValue":
    case "boolValue":
      return raw;
    case "nullValue":
      return null;
    case "bytesValue":
      return new Uint8Array(Buffer.from(raw as string, "base64"));
    case "listValue":
      return (((raw as Json).values as Json[] | undefined) ?? []).map(binding);
    case "mapValue":
      return new Map(
        (((raw as Json).entries as Array<{ key: Json; value: Json }> | undefined) ?? []).map((e) => [
          binding(e.key),
          binding(e.value),
        ]),
      );
    default:
      throw new Error(`binding of kind ${kind} (protobuf message) is not supported`);
  }
}

/** The messages of a case's expected evaluation errors. */
function expectedErrors(o: Json): string[] {
  const errors = ((o.evalError as Json | undefined)?.errors as Array<{ message?: string }> | undefined) ?? [];
  return errors.map((e) => e.message ?? "").filter((m) => m !== "");
}

/**
 * The kind of an error, for comparing berth's messages with the spec's: the spec words "no overload" three ways
 * (no_such_overload, no such overload, no matching overload), and cel-js words operand-type checks its own way.
 */
function errorClass(message: string): string {
  if (/overload|requires bool operands|condition must be bool/i.test(message)) return "no overload";
  return message.toLowerCase();
}

type Outcome = { pass: true } | { pass: false; why: string } | { skip: string };

function run(t: RawTest): Outcome {
  const o = t.original;
  if (o.container) return { skip: `needs container ${String(o.container)} (protobuf namespaces)` };
  const vars: Record<string, unknown> = {};
  for (const [name, b] of Object.entries((o.bindings as Record<string, { value?: Json }>) ?? {})) {
    if (!b.value) return { skip: `binding ${name} is not a plain value` };
    try {
      vars[name] = binding(b.value);
    } catch (err) {
      return { skip: (err as Error).message };
    }
  }
  const want = o.evalError ? "error" : expected((o.value as Json | undefined) ?? { boolValue: true });
  if (typeof want !== "string") return want;
  const first = (err: unknown) => (err as Error).message.split("\n")[0] ?? "";
  let program: ReturnType<typeof env.compile>;
  try {
    program = env.compile(o.expr);
  } catch (err) {
    // An expected evaluation error may come early from the type checker (cel-spec lets a checked environment
    // reject it), never from the parser; where the case disables checking to test run-time behaviour, only the
    // error the spec names (its evalError message) counts.
    const checkError = first(err).startsWith("type error");
    const named = expectedErrors(o).some((m) => errorClass(first(err)) === errorClass(m));
    if (want === "error" && checkError && (!o.disableCheck || named)) return { pass: true };
    return { pass: false, why: first(err) };
  }
  let got: string;
  try {
    got = canon(program.evaluate(vars));
  } catch (err) {
    if (want === "error") return { pass: true };
    return { pass: false, why: first(err) };
  }
  if (want === "error") return { pass: false, why: `expected an error, got ${got}` };
  return got === want ? { pass: true } : { pass: false, why: `expected ${want}, got ${got}` };
}

describe("CEL conformance (cel-spec v0.25.1)", () => {
  test("every case passes, is skipped with a reason, or is a known failure listed with its reason", () => {
    const suites = (conformance as unknown as RawSuite).suites ?? [];
    let passed = 0;
    const failed = new Map<string, string>();
    const skipped: string[] = [];
    const walk = (s: RawSuite, path: string) => {
      for (const t of s.tests ?? []) {
        const r = run(t);
        const name = `${path}/${t.original.name ?? t.original.expr}`;
        if ("skip" in r) skipped.push(`${name}: ${r.skip}`);
        else if (r.pass) passed++;
        else failed.set(name, r.why);
      }
      for (const c of s.suites ?? []) walk(c, `${path}/${c.name}`);
    };
    for (const name of SECTIONS) {
      const s = suites.find((x) => x.name === name);
      expect(s).toBeDefined();
      if (s) walk(s, name);
    }
    const total = passed + failed.size + skipped.length;
    console.log(
      `CEL conformance: ${passed} passed, ${failed.size} failed, ${skipped.length} skipped of ${total}`,
    );
    if (process.env.CEL_CONFORMANCE_VERBOSE) {
      console.log(`skipped:\n  ${skipped.join("\n  ")}`);
      console.log(`failed:\n  ${[...failed].map(([n, why]) => `${n}: ${why}`).join("\n  ")}`);
    }
    expect(total).toBeGreaterThan(1000);
    const unlisted = [...failed].filter(([n]) => !KNOWN_FAILURES.has(n)).map(([n, why]) => `${n}: ${why}`);
    const nowPassing = [...KNOWN_FAILURES.keys()].filter((n) => !failed.has(n));
    // A new failure is a regression (or needs a reason in the list); a listed case passing means the list is stale.
    expect(unlisted).toEqual([]);
    expect(nowPassing).toEqual([]);
    for (const [name, reason] of KNOWN_FAILURES) expect(reason, name).not.toBe("");
  });
});
