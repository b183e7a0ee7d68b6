import { describe, expect, test } from "bun:test";
import { main } from "../../agent/main.ts";

function run(argv: string[]) {
  let out = "";
  let err = "";
  const code = main(
    argv,
    (s) => {
      out += s;
    },
    (s) => {
      err += s;
    },
  );
  return { code, out, err };
}

describe("main()", () => {
  test("version prints a human line and --json an object", () => {
    expect(run(["version"]).out).toMatch(/^berth \S+ \(commit \S+, bun \S+\)\n$/);
    const json = JSON.parse(run(["version", "--json"]).out);
    expect(Object.keys(json).sort()).toEqual(["commit", "runtime", "version"]);
  });

  test("no command prints usage and succeeds; an unknown one is a usage error", () => {
    expect(run([])).toMatchObject({ code: 0 });
    expect(run([]).out).toContain("usage: berth");
    const bad = run(["nope"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('unknown command "nope"');
  });
});
