/** Watch and request timeouts without a cluster: a silent watch is relisted, a silent server times a request out. */
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeClient, type ResourceInfo } from "../../agent/kube/client.ts";
import { KindWatch } from "../../agent/kube/watch.ts";

const info: ResourceInfo = {
  group: "",
  version: "v1",
  kind: "ConfigMap",
  plural: "configmaps",
  namespaced: true,
  verbs: ["list", "watch"],
};
const bookmark = (rv: number) =>
  `${JSON.stringify({ type: "BOOKMARK", object: { metadata: { resourceVersion: String(rv) } } })}\n`;

/** A client whose lists answer at once and whose watches send what `body` yields. */
function fakeClient(body: (signal: AbortSignal) => AsyncIterable<string>) {
  const calls = { lists: 0, watches: 0, distrusted: 0 };
  const client = {
    distrustPool: () => {
      calls.distrusted++;
    },
    collectionPath: () => "/api/v1/configmaps",
    request: async () => {
      calls.lists++;
      return { items: [], metadata: { resourceVersion: "1" } };
    },
    stream: async (_verb: string, _path: string, signal: AbortSignal) => {
      calls.watches++;
      return body(signal);
    },
  } as unknown as KubeClient;
  return { client, calls };
}

/** A watch of ConfigMaps labelled a=b through `client`, updates ignored; `options` tunes its timers. */
const watchOf = (client: KubeClient, options: Partial<ConstructorParameters<typeof KindWatch>[1]>) =>
  new KindWatch(client, { info, labelSelector: "a=b", onUpdate: () => {}, ...options });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("KindWatch idle timer", () => {
  test("a watch that stays open but forwards nothing is dropped and relisted", async () => {
    const { client, calls } = fakeClient(async function* () {
      yield bookmark(2);
      await new Promise(() => {}); // open, silent, forever
    });
    const states: Array<[boolean, string | undefined]> = [];
    const watch = watchOf(client, {
      onState: (connected, error) => states.push([connected, error]),
      idleTimeoutMs: 150,
      backoffMs: 10,
    });
    watch.start();
    await sleep(700);
    await watch.stop();
    expect(calls.lists).toBeGreaterThanOrEqual(3);
    expect(watch.relists).toBe(calls.lists);
    // Pooled connections over the same path are not trusted for the relist.
    expect(calls.distrusted).toBeGreaterThanOrEqual(calls.lists - 1);
    expect(states).toContainEqual([false, "watch of ConfigMap stalled: nothing received for 0s; relisting"]);
  });

  test("a quiet but live watch (bookmarks within the idle time) is never relisted", async () => {
    const { client, calls } = fakeClient(async function* (signal) {
      for (let rv = 2; !signal.aborted; rv++) {
        yield bookmark(rv);
        await sleep(50);
      }
    });
    const watch = watchOf(client, { idleTimeoutMs: 200 });
    watch.start();
    await sleep(700);
    await watch.stop();
    expect(calls).toEqual({ lists: 1, watches: 1, distrusted: 0 });
  });

  test("a watch the server ends resumes without a relist; one ended at once backs off instead of spinning", async () => {
    const { client, calls } = fakeClient(async function* () {
      yield bookmark(2);
    });
    const watch = watchOf(client, { idleTimeoutMs: 200, backoffMs: 20, maxBackoffMs: 80 });
    watch.start();
    await sleep(500);
    await watch.stop();
    expect(calls.lists).toBe(1);
    // 20, 40, 80, 80, … ms apart: a handful, not thousands.
    expect(calls.watches).toBeGreaterThan(3);
    expect(calls.watches).toBeLessThan(12);
  });
});

describe("KubeClient request timeout", () => {
  let server: Server | undefined;
  let dir: string | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server?.close(r));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("a server that accepts and never answers fails the request, naming the server and the limit", async () => {
    server = createServer((s) => void sockets.push(s)); // accepts, never speaks (not even TLS)
    await new Promise<void>((r) => server?.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    dir = mkdtempSync(join(tmpdir(), "berth-timeout-"));
    const kubeconfig = join(dir, "kubeconfig");
    writeFileSync(
      kubeconfig,
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://127.0.0.1:${port}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
    );
    const client = KubeClient.connect({ kubeconfig });
    client.requestTimeoutMs = 300;
    const t0 = performance.now();
    await expect(client.request("get", "GET", "/api")).rejects.toThrow(
      `kubernetes: cannot reach the API server at https://127.0.0.1:${port}: no answer within 0.3s`,
    );
    await expect(
      client.stream("watch", "/api/v1/configmaps?watch=1", new AbortController().signal),
    ).rejects.toThrow("no answer within 0.3s");
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(client.codes).toEqual({ "get error": 1, "watch error": 1 });
  });
});
