/**
 * The notification and forge client reads at most MAX_ANSWER_BYTES of an answer (an error answer: its start): a
 * receiver or forge URL pointing at something that streams gigabytes must not fill the agent's memory. A local
 * HTTP server streams the answers.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { DeliveryError, MAX_ANSWER_BYTES, requestJson } from "../../agent/notify/http.ts";

const HUGE = 64 * 1024 * 1024;
let server: Server;
let base = "";
/** Bytes the server got out for the last streamed answer before the client hung up (or all of them). */
let sent = 0;

/** Streams `total` bytes of `x` with backpressure, stopping when the client goes away. */
function stream(res: ServerResponse, status: number, total: number): void {
  res.writeHead(status, { "content-type": "application/json" });
  const chunk = Buffer.alloc(64 * 1024, "x");
  sent = 0;
  const more = () => {
    while (sent < total && !res.destroyed) {
      sent += chunk.byteLength;
      if (!res.write(chunk)) return void res.once("drain", more);
    }
    if (!res.destroyed) res.end();
  };
  res.on("close", () => res.destroy());
  more();
}

beforeAll(async () => {
  server = createServer((req, res) => {
    if (req.url === "/huge") stream(res, 200, HUGE);
    else if (req.url === "/huge-error") stream(res, 500, HUGE);
    else {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"ok":true}');
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const options = { timeoutMs: 20_000, retries: 0, showPath: true };

describe("answers past the limit", () => {
  test("a 64 MiB answer is refused after the limit, not downloaded, and not retried", async () => {
    const err = await requestJson("GET", `${base}/huge`, undefined, options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeliveryError);
    expect((err as DeliveryError).message).toBe(
      `GET ${base}/huge: answered more than ${MAX_ANSWER_BYTES} bytes (the limit), not read: is the URL right?`,
    );
    expect((err as DeliveryError).retryable).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    expect(sent).toBeLessThan(HUGE / 2);
  });

  test("an error answer is read only for the start of its message", async () => {
    const err = await requestJson("POST", `${base}/huge-error`, "{}", options).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeliveryError);
    expect((err as DeliveryError).message).toBe(`POST ${base}/huge-error: HTTP 500: ${"x".repeat(200)}`);
    expect((err as DeliveryError).retryable).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    expect(sent).toBeLessThan(HUGE / 2);
  });

  test("a small answer is parsed as before", async () => {
    expect(await requestJson("GET", `${base}/small`, undefined, options)).toEqual({ ok: true });
  });
});
