/**
 * Which command line re-executes the compiled binary, and with what (agent/cli/jit.ts): JavaScriptCore's JIT off,
 * and Bun's cap on HTTP requests in flight raised so that watches cannot hold up other requests.
 */
import { describe, expect, test } from "bun:test";
import { MAX_HTTP_REQUESTS, runEnvironment } from "../../agent/cli/jit.ts";

const base = { PATH: "/usr/bin", HOME: "/root" };
const tuned = { BUN_JSC_useJIT: "0", BUN_CONFIG_MAX_HTTP_REQUESTS: MAX_HTTP_REQUESTS };

describe("runEnvironment", () => {
  test("berth run is re-executed with the JIT off and the request cap raised, keeping the rest", () => {
    expect(MAX_HTTP_REQUESTS).toBe("65535");
    expect(runEnvironment(["run", "--config", "b.yaml"], base)).toEqual({ env: { ...base, ...tuned } });
  });

  test("global flags before the command, with their values, do not hide it", () => {
    expect(runEnvironment(["--config", "b.yaml", "--log-format", "json", "run"], base)).toEqual({
      env: { ...base, ...tuned },
    });
    expect(runEnvironment(["-o", "json", "run"], base)).toHaveProperty("env");
  });

  test("one-shot commands are not re-executed, also when a flag's value reads run", () => {
    for (const argv of [["sync"], ["plan", "run"], ["--config", "run", "sync"], ["version"], []])
      expect(runEnvironment(argv, base)).toBeUndefined();
  });

  test("BERTH_JIT=on keeps the JIT but still raises the cap; off is the default; nonsense is refused", () => {
    expect(runEnvironment(["run"], { ...base, BERTH_JIT: "on" })).toEqual({
      env: { ...base, BERTH_JIT: "on", BUN_CONFIG_MAX_HTTP_REQUESTS: MAX_HTTP_REQUESTS },
    });
    expect(runEnvironment(["run"], { ...base, BERTH_JIT: "OFF" })).toHaveProperty("env.BUN_JSC_useJIT", "0");
    expect(runEnvironment(["run"], { ...base, BERTH_JIT: "fast" })).toEqual({
      error: "BERTH_JIT=fast: use on (keep the JIT compilers) or off (the default for run)",
    });
  });

  test("once re-executed nothing happens again; what the user set is kept", () => {
    expect(runEnvironment(["run"], { ...base, ...tuned })).toBeUndefined();
    expect(
      runEnvironment(["run"], { ...base, BERTH_JIT: "on", BUN_CONFIG_MAX_HTTP_REQUESTS: "1024" }),
    ).toBeUndefined();
    expect(runEnvironment(["run"], { ...base, BUN_JSC_useJIT: "1" })).toEqual({
      env: { ...base, BUN_JSC_useJIT: "1", BUN_CONFIG_MAX_HTTP_REQUESTS: MAX_HTTP_REQUESTS },
    });
    expect(runEnvironment(["run"], { ...base, BUN_CONFIG_MAX_HTTP_REQUESTS: "512" })).toEqual({
      env: { ...base, BUN_CONFIG_MAX_HTTP_REQUESTS: "512", BUN_JSC_useJIT: "0" },
    });
  });
});
