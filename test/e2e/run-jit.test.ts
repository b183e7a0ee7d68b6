/**
 * The compiled `berth run` re-executes itself, in the same process, with JavaScriptCore's JIT off (memory at
 * rest; agent/cli/jit.ts), unless BERTH_JIT=on, and with Bun's cap on HTTP requests in flight raised (a watch
 * per app and kind stays open). Read from the running process's own environment.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, startBerth } from "../support/binary.ts";
import { eventually, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { freePort } from "../support/ports.ts";

let cluster: TestCluster;
let git: GitFixture;
let url: string;

beforeAll(async () => {
  berthBinary();
  cluster = await useCluster();
  git = await GitFixture.start();
  url = git.createRepo("jit");
  git.commit("jit", { "app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: jit}\n" });
}, 600_000);

afterAll(async () => {
  await git?.close();
});

/** Starts `berth run` (its ledger and API of its own), waits for /healthz; returns the Bun settings it runs with. */
async function settingsOfRun(
  env: Record<string, string>,
): Promise<{ jit: string | undefined; maxRequests: string | undefined }> {
  const port = await freePort();
  const config = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", interval: 1h}\napps:\n  - {name: jit, path: app, namespace: default}\nledger: {path: $DIR/ledger.db}\napi: {listen: "127.0.0.1:${port}"}\n`,
  );
  const run = startBerth(["run", "--config", config, "--kubeconfig", cluster.kubeconfigPath], env);
  try {
    await eventually("the API to answer", 30_000, async () =>
      (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok ? true : undefined,
    );
    // The process spawned is the one serving: execve replaced its program, it forked nothing.
    const environ = readFileSync(`/proc/${run.child.pid}/environ`, "utf8").split("\0");
    const variable = (name: string) => environ.find((e) => e.startsWith(`${name}=`))?.slice(name.length + 1);
    return { jit: variable("BUN_JSC_useJIT"), maxRequests: variable("BUN_CONFIG_MAX_HTTP_REQUESTS") };
  } finally {
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
  }
}

test("berth run runs without the JIT by default, with it under BERTH_JIT=on; the request cap is raised in both", async () => {
  expect(await settingsOfRun({})).toEqual({ jit: "0", maxRequests: "65535" });
  expect(await settingsOfRun({ BERTH_JIT: "on" })).toEqual({ jit: undefined, maxRequests: "65535" });
}, 120_000);
