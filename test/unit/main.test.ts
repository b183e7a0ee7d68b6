import { describe, expect, test } from "bun:test";
import { cli } from "../../agent/cli/cli.ts";

async function run(argv: string[]) {
  let out = "";
  let err = "";
  const code = await cli(argv, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
    tty: false,
  });
  return { code, out, err };
}

describe("cli()", () => {
  test("version prints a human line and --json an object", async () => {
    expect((await run(["version"])).out).toMatch(/^berth \S+ \(commit \S+, bun \S+\)\n$/);
    const json = JSON.parse((await run(["version", "--json"])).out);
    expect(Object.keys(json).sort()).toEqual(["commit", "runtime", "version"]);
  });

  test("no command prints usage and succeeds; an unknown command or flag is a usage error (exit 2)", async () => {
    expect(await run([])).toMatchObject({ code: 0 });
    expect((await run([])).out).toContain("usage: berth");
    const bad = await run(["nope"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('unknown command "nope"');
    const badFlag = await run(["sync", "--frobnicate"]);
    expect(badFlag.code).toBe(2);
    expect(badFlag.err).toContain("frobnicate");
  });

  test("a missing config file is a usage error naming the file", async () => {
    const r = await run(["sync", "--config", "/nonexistent/berth.yaml"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("/nonexistent/berth.yaml");
  });
});
