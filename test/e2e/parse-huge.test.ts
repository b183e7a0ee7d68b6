/**
 * A 150k-key ConfigMap (1.8 MB) never stalls the compiled binary's `berth run` (issue 12, item 4): /healthz
 * answers while the file renders (the parse runs in a worker thread embedded in the binary), and SIGTERM during
 * the render stops the agent and records the attempt as Interrupted. Figures are in scripts/bench/parse-huge.ts;
 * the only bounds here are generous ones. Each test starts the agent on a small commit, listens to its event
 * stream, and only then pushes the huge file: the attempt observed is that commit's first, whose render is not
 * cached (a retry of a failed attempt reuses the render and would prove nothing).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, runBerth, startBerth } from "../support/binary.ts";
import { eventually, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { freePort } from "../support/ports.ts";

let cluster: TestCluster;
let git: GitFixture;
let url: string;
let repo = 0;

function hugeConfigMap(): string {
  const lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: huge", "data:"];
  for (let i = 0; i < 150_000; i++) lines.push(`  k${i}: v`);
  return `${lines.join("\n")}\n`;
}

beforeAll(async () => {
  berthBinary();
  cluster = await useCluster();
  git = await GitFixture.start();
}, 600_000);

afterAll(async () => {
  await git?.close();
});

/**
 * `berth run` on a fresh repository holding a small ConfigMap, polled every second, with its API on a free port
 * (reads open, for the event stream); `pushHuge()` commits the huge file and returns the commit.
 */
async function startAgent() {
  const name = `huge${repo++}`;
  url = git.createRepo(name);
  git.commit(name, { "app/small.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: small}\n" });
  const port = await freePort();
  const config = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", interval: 1s}\napps:\n  - {name: huge, path: app, namespace: default}\nledger: {path: $DIR/ledger.db}\napi:\n  listen: 127.0.0.1:${port}\n  anonymousRead: true\n`,
  );
  const run = startBerth(["run", "--config", config, "--kubeconfig", cluster.kubeconfigPath]);
  const base = `http://127.0.0.1:${port}`;
  await eventually("the API to answer", 30_000, async () =>
    (await fetch(`${base}/healthz`)).ok ? true : undefined,
  );
  const pushHuge = () => git.commit(name, { "app/huge.yaml": hugeConfigMap() });
  return { run, base, config, pushHuge };
}

/** Reads the event stream's `data:` events until `until` returns a value. */
async function readEvents<T>(
  events: Response,
  until: (e: { at?: string; type: string; stage?: string; revision?: string }) => T | undefined,
): Promise<T> {
  const reader = (events.body as ReadableStream<Uint8Array>).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the event stream ended first");
    buf += new TextDecoder().decode(value);
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.startsWith("data: ")) continue;
      const found = until(JSON.parse(line.slice(6)));
      if (found !== undefined) return found;
    }
  }
}

/** Whether an event belongs to an attempt of `commit` (a revision reads `main@sha1:<commit>`). */
function ofCommit(commit: string) {
  let inside = false;
  return (e: { type: string; revision?: string }): boolean => {
    if (e.type === "started") inside = e.revision?.endsWith(`:${commit}`) === true;
    return inside;
  };
}

/** The render stage's start and end in the first attempt of `commit`, by the agent's own clock. */
async function renderWindow(events: Response, commit: string): Promise<{ from: number; to: number }> {
  const inAttempt = ofCommit(commit);
  let from: number | undefined;
  return readEvents(events, (e) => {
    if (!inAttempt(e) || !e.at || (e.type !== "stage" && e.type !== "finished")) return undefined;
    if (e.stage === "render") from = Date.parse(e.at);
    else if (from !== undefined) return { from, to: Date.parse(e.at) };
    return undefined;
  });
}

describe("a 150k-key ConfigMap (compiled binary)", () => {
  test("/healthz keeps answering while berth run renders it", async () => {
    const { run, base, pushHuge } = await startAgent();
    const stop = new AbortController();
    try {
      const events = await fetch(`${base}/api/v1/events`, { signal: stop.signal });
      const window = renderWindow(events, pushHuge());
      let over = false;
      window.then(
        () => {
          over = true;
        },
        () => {
          over = true;
        },
      );
      const answers: Array<{ start: number; end: number }> = [];
      const deadline = Date.now() + 120_000;
      while (!over && Date.now() < deadline) {
        const start = Date.now();
        const r = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(30_000) });
        expect(await r.json()).toEqual({ status: "ok" });
        answers.push({ start, end: Date.now() });
        await new Promise((r) => setTimeout(r, 10));
      }
      const { from, to } = await window;
      const during = answers.filter((a) => a.start >= from && a.end <= to);
      // Parsed in this thread, the render would hold every request until it ended: none would fit inside it.
      expect(to - from).toBeGreaterThan(0);
      expect(during.length).toBeGreaterThanOrEqual(3);
      // Generous: each answer within 2 s even on a loaded machine (the render itself takes seconds there).
      expect(Math.max(...during.map((a) => a.end - a.start))).toBeLessThan(2_000);
      expect(run.output()).not.toContain("parsing manifests in the main thread");
    } finally {
      stop.abort();
      // The plan's dry-run of a 1.8 MB ConfigMap keeps the API server busy for a long while: no need to wait.
      run.child.kill("SIGKILL");
      await run.exited;
    }
  }, 180_000);

  test("SIGTERM during the render stops the agent promptly and records the attempt as Interrupted", async () => {
    const { run, base, config, pushHuge } = await startAgent();
    try {
      const stop = new AbortController();
      const events = await fetch(`${base}/api/v1/events`, { signal: stop.signal });
      const inAttempt = ofCommit(pushHuge());
      await readEvents(events, (e) => (inAttempt(e) && e.stage === "render" ? true : undefined));
      stop.abort();
      const t0 = Date.now();
      run.child.kill("SIGTERM");
      expect(await run.exited).toBe(0);
      // Generous: the target is 2 s; before the worker it took 48 s on an 80k-key file.
      expect(Date.now() - t0).toBeLessThan(10_000);
      const [entry] = JSON.parse(
        (await runBerth(["ledger", "list", "--json", "--app", "huge", "--limit", "1", "--config", config]))
          .stdout,
      );
      expect([entry.reason, entry.message]).toEqual(["Interrupted", "stopped while rendering"]);
    } finally {
      run.child.kill("SIGKILL");
    }
  }, 180_000);
});
