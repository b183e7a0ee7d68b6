import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BerthError } from "../../agent/object/errors.ts";
import { GitSource, type GitSourceOptions } from "../../agent/source/git-source.ts";
import { findRef, refNotFoundMessage } from "../../agent/source/refs.ts";
import { parseRepoUrl, redactUrl } from "../../agent/source/url.ts";
import { GitFixture } from "../support/git.ts";

const TOKEN = "t0ken-very-secret";

/** The rejection of `promise`, which must reject. */
async function failure(promise: Promise<unknown>): Promise<BerthError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(BerthError);
    return err as BerthError;
  }
  throw new Error("expected a rejection");
}

/** A port nothing listens on: bind one, then close it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A local HTTP server answering with `handler`; returns its base URL. */
async function serve(handler: Parameters<typeof createServer>[1]): Promise<{ url: string; server: Server }> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

describe("GitSource failures", () => {
  let guarded: GitFixture;
  let url: string;
  let sha: string;
  const cacheDirs: string[] = [];

  function source(options: Partial<GitSourceOptions> = {}): GitSource {
    const cacheDir = mkdtempSync(join(tmpdir(), "berth-source-"));
    cacheDirs.push(cacheDir);
    return new GitSource({
      url,
      ref: "main",
      cacheDir,
      retries: 2,
      retryDelayMs: 10,
      timeoutMs: 2000,
      ...options,
    });
  }

  beforeAll(async () => {
    guarded = await GitFixture.start({ token: TOKEN });
    url = guarded.createRepo("private");
    sha = guarded.commit("private", { "x.yaml": "x: 1\n" });
    guarded.commit("private", { "y.yaml": "y: 1\n" }, { branch: "dev" });
    // The scratch clone pushes straight to the bare repository, so committing needs no token.
  });

  afterAll(async () => {
    await guarded.close();
    for (const dir of cacheDirs) rmSync(dir, { recursive: true, force: true });
  });

  test("the right token reads; polling with it costs one request", async () => {
    const s = source({ credentials: () => ({ username: "x-token", password: TOKEN }) });
    const snap = await s.snapshot(await s.resolve());
    expect(new TextDecoder().decode(await snap.readBlob("x.yaml"))).toBe("x: 1\n");
    const before = guarded.server.requests.length;
    expect(await s.poll(sha)).toEqual({ sha, changed: false });
    expect(guarded.server.requests.length - before).toBe(1);
  });

  test("credentials are read per operation, so a rotated token takes effect", async () => {
    let token = "old-wrong-token";
    const s = source({ credentials: () => ({ username: "x-token", password: token }) });
    await failure(s.resolve());
    token = TOKEN;
    expect(await s.resolve()).toBe(sha);
  });

  test("a wrong token fails once, says authentication, and never shows the token", async () => {
    const wrong = "wr0ng-t0ken-value";
    const seen: string[] = [];
    const s = source({
      credentials: () => ({ username: "x-token", password: wrong }),
      onRequest: (kind, ok) => seen.push(`${kind}:${ok}`),
    });
    const before = guarded.server.requests.length;
    const err = await failure(s.resolve());
    expect(err.reason).toBe("FetchFailed");
    expect(err.message).toContain("authentication failed (HTTP 401)");
    expect(err.message).toContain("tokenFile/tokenEnv");
    expect(err.message).toStartWith(`git ${url}: `);
    expect(err.message).not.toContain(wrong);
    expect(String(err.stack)).not.toContain(wrong);
    expect(err.cause).toBeDefined();
    // 401 is not retried.
    expect(guarded.server.requests.length - before).toBe(1);
    expect(seen).toEqual(["refs:false"]);

    const none = await failure(source().snapshot(sha));
    expect(none.message).toContain("authentication failed");
  });

  test("credentials in the URL are used but kept out of messages and the cache path", async () => {
    const s = source({ url: url.replace("http://", `http://x-token:${TOKEN}@`) });
    expect(await s.resolve()).toBe(sha);
    expect(s.gitdir).not.toContain(TOKEN);
    const bad = source({ url: url.replace("http://", "http://x-token:leaked-secret@"), ref: "main" });
    const err = await failure(bad.resolve());
    expect(err.message).not.toContain("leaked-secret");
    expect(err.message).toContain(`git ${url}:`);
  });

  test("a missing branch lists the branches there are", async () => {
    const s = source({ ref: "feature", credentials: () => ({ username: "x", password: TOKEN }) });
    const err = await failure(s.resolve());
    expect(err.reason).toBe("FetchFailed");
    expect(err.message).toContain('branch "feature" not found; available: dev, main');
  });

  test("a missing repository says so (404), without retrying", async () => {
    const open = await GitFixture.start();
    try {
      const s = source({ url: `${open.server.url}/nope.git` });
      const err = await failure(s.resolve());
      expect(err.message).toContain("repository not found (HTTP 404)");
      expect(open.server.requests).toHaveLength(1);
    } finally {
      await open.close();
    }
  });

  test("an unreachable server: 'cannot reach' after the retries, quickly", async () => {
    const port = await closedPort();
    const seen: boolean[] = [];
    const s = source({ url: `http://127.0.0.1:${port}/repo.git`, onRequest: (_, ok) => seen.push(ok) });
    const started = performance.now();
    const err = await failure(s.poll());
    const elapsed = performance.now() - started;
    expect(err.reason).toBe("FetchFailed");
    expect(err.message).toContain(`cannot reach 127.0.0.1:${port}`);
    expect(err.message).toContain("after 3 attempts");
    expect(seen).toEqual([false, false, false]);
    expect(elapsed).toBeLessThan(2000);
  });

  test("a server that never answers times out per request", async () => {
    let hits = 0;
    const { url: base, server } = await serve(() => {
      hits++; // never respond
    });
    try {
      const s = source({ url: `${base}/repo.git`, timeoutMs: 150, retries: 1 });
      const started = performance.now();
      const err = await failure(s.resolve());
      expect(err.message).toContain("cannot reach");
      expect(err.message).toContain("no answer within 150 ms");
      expect(hits).toBe(2);
      expect(performance.now() - started).toBeLessThan(2000);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  test("5xx is retried and can recover", async () => {
    const open = await GitFixture.start();
    const repo = open.createRepo("flaky");
    const head = open.commit("flaky", { "a.yaml": "a\n" });
    let failuresLeft = 2;
    // A proxy in front of the real server that fails the first requests with 503.
    const { url: base, server } = await serve(async (req, res) => {
      if (failuresLeft-- > 0) {
        res.writeHead(503).end("busy");
        return;
      }
      const upstream = await fetch(`${open.server.url}${req.url}`, { headers: { "user-agent": "proxy" } });
      res.writeHead(upstream.status, { "content-type": upstream.headers.get("content-type") ?? "" });
      res.end(Buffer.from(await upstream.arrayBuffer()));
    });
    try {
      expect(repo).toContain("/flaky.git");
      expect(await source({ url: `${base}/flaky.git` }).resolve()).toBe(head);
      failuresLeft = 10;
      const err = await failure(source({ url: `${base}/flaky.git` }).resolve());
      expect(err.message).toContain("HTTP 503 (after 3 attempts)");
    } finally {
      server.closeAllConnections();
      server.close();
      await open.close();
    }
  });

  test("a snapshot of a commit the server does not have is a clear error", async () => {
    const s = source({ credentials: () => ({ username: "x", password: TOKEN }) });
    const missing = "ffffffffffffffffffffffffffffffffffffffff";
    const err = await failure(s.snapshot(missing));
    expect(err.message).toContain(`commit ${missing} not found`);
    await expect(s.snapshot("main")).rejects.toThrow("not a full 40-hex commit SHA");
  });
});

describe("source helpers", () => {
  test("redactUrl strips userinfo even from strings that are not URLs", () => {
    expect(redactUrl("https://user:pa ss@host/x")).toBe("https://host/x");
    expect(() => parseRepoUrl("ssh://git@host/x.git")).toThrow("only http(s)");
    expect(() => parseRepoUrl("http://u:secret@[bad")).toThrow(/^(?!.*secret)/);
  });

  test("a missing ref lists branches and tags", () => {
    const refs = [
      { ref: "HEAD", oid: "a" },
      { ref: "refs/heads/main", oid: "a" },
      { ref: "refs/tags/v1", oid: "b", peeled: "a" },
    ];
    expect(refNotFoundMessage(refs, "mian")).toBe('branch "mian" not found; available: main; tags: v1');
    expect(refNotFoundMessage([], "main")).toContain("empty");
    expect(findRef(refs, "v1")).toEqual({ ref: "refs/tags/v1", sha: "a" });
    expect(findRef(refs, "HEAD")).toEqual({ ref: "HEAD", sha: "a" });
  });
});
