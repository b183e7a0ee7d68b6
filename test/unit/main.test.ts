import { describe, expect, test } from "bun:test";
import { STATUS_OF } from "../../agent/api/http-error.ts";
import { EXIT_OF, failure } from "../../agent/cli/common.ts";
import { BerthError, type ErrorReason } from "../../agent/object/errors.ts";
import { runCli } from "../support/berth.ts";

const run = runCli;

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

describe("exit codes: one table (EXIT_OF) for every error a command throws", () => {
  test("each reason class: input and not found 2, conflict and unavailable 1, held 3", () => {
    const code = (reason?: ErrorReason) =>
      failure(new BerthError("x", { subject: "app web", ...(reason ? { reason } : {}) })).code;
    expect(code()).toBe(2);
    expect(code("InvalidInput")).toBe(2);
    expect(code("NotFound")).toBe(2);
    expect(code("Conflict")).toBe(1);
    expect(code("Unavailable")).toBe(1);
    expect(code("ApplyFailed")).toBe(1);
    expect(code("Held")).toBe(3);
    // Every reason has its row: the table is a Record over ErrorReason, so a new reason fails typecheck.
    expect(Object.keys(EXIT_OF).sort()).toEqual(Object.keys(STATUS_OF).sort());
  });

  test("an unknown reason is an input error; the message is the error's own, subject first", () => {
    const f = failure(new BerthError("bad", { subject: "app web", reason: "Bogus" as ErrorReason }));
    expect(f).toEqual({ code: 2, line: "app web: bad", bug: false });
  });

  test("a bug (TypeError, a thrown string) is exit 1 and an internal error; a library's error stays exit 2", () => {
    let bug: unknown;
    try {
      (undefined as unknown as { x: () => void }).x();
    } catch (err) {
      bug = err;
    }
    expect(failure(bug)).toMatchObject({ code: 1, bug: true });
    expect(failure(bug).line).toStartWith("internal error: ");
    expect(failure("thrown text")).toEqual({ code: 1, line: "internal error: thrown text", bug: true });
    const enoent = Object.assign(new Error("ENOENT: no such file, open 'x'"), { code: "ENOENT" });
    expect(failure(enoent)).toEqual({ code: 2, line: "ENOENT: no such file, open 'x'", bug: false });
  });

  test("status --server of an agent that does not answer is exit 1 (Unavailable), one line", async () => {
    const r = await run(["status", "--server", "http://127.0.0.1:1"]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^berth: http:\/\/127\.0\.0\.1:1: cannot reach the agent: .*\n$/);
  });
});
