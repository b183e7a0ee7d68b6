/** Which command line re-executes the compiled binary without JavaScriptCore's JIT (agent/cli/jit.ts). */
import { describe, expect, test } from "bun:test";
import { jitEnvironment } from "../../agent/cli/jit.ts";

const base = { PATH: "/usr/bin", HOME: "/root" };

describe("jitEnvironment", () => {
  test("berth run is re-executed with the JIT off, keeping the rest of the environment", () => {
    expect(jitEnvironment(["run", "--config", "b.yaml"], base)).toEqual({
      env: { ...base, BUN_JSC_useJIT: "0" },
    });
  });

  test("global flags before the command, with their values, do not hide it", () => {
    expect(jitEnvironment(["--config", "b.yaml", "--log-format", "json", "run"], base)).toEqual({
      env: { ...base, BUN_JSC_useJIT: "0" },
    });
    expect(jitEnvironment(["-o", "json", "run"], base)).toHaveProperty("env");
  });

  test("one-shot commands keep the JIT, also when a flag's value reads run", () => {
    for (const argv of [["sync"], ["plan", "run"], ["--config", "run", "sync"], ["version"], []])
      expect(jitEnvironment(argv, base)).toBeUndefined();
  });

  test("BERTH_JIT=on keeps it; off is the default; a value that means nothing is refused", () => {
    expect(jitEnvironment(["run"], { ...base, BERTH_JIT: "on" })).toBeUndefined();
    expect(jitEnvironment(["run"], { ...base, BERTH_JIT: "OFF" })).toHaveProperty("env.BUN_JSC_useJIT", "0");
    expect(jitEnvironment(["run"], { ...base, BERTH_JIT: "fast" })).toEqual({
      error: "BERTH_JIT=fast: use on (keep the JIT compilers) or off (the default for run)",
    });
  });

  test("once re-executed, or when the user set JavaScriptCore's own option, nothing happens again", () => {
    expect(jitEnvironment(["run"], { ...base, BUN_JSC_useJIT: "0" })).toBeUndefined();
    expect(jitEnvironment(["run"], { ...base, BUN_JSC_useJIT: "1" })).toBeUndefined();
  });
});
