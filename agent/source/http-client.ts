/**
 * An isomorphic-git `HttpClient` on the global fetch, which Bun, Deno and Node 20 all have. It adds what
 * isomorphic-git's own clients lack: a per-request timeout, one error type for "could not talk to the
 * server at all", and a hook that sees every request for metrics and request counting.
 */
import { Buffer } from "node:buffer";
import type { GitHttpRequest, GitHttpResponse, HttpClient } from "isomorphic-git";

/** The server could not be reached or did not answer in time (as opposed to answering with an error status). */
export class NetworkError extends Error {
  constructor(
    message: string,
    readonly timedOut: boolean,
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = "NetworkError";
  }
}

/** The server sent more than the client's `maxBodyBytes` in one answer (not retried: it would send it again). */
export class BodyTooLargeError extends Error {
  constructor(
    readonly limit: number,
    readonly kind: RequestKind,
  ) {
    super(`the server sent more than ${limit} bytes in one answer (the limit)`);
    this.name = "BodyTooLargeError";
  }
}

/** What a request was for: the ref advertisement, or a pack negotiation. */
export type RequestKind = "refs" | "fetch";

/** Settings of the fetch-based client. */
export interface HttpClientOptions {
  /** Limit for one request, from sending it until its body has been read. */
  timeoutMs: number;
  /** Bytes one answer may carry, by what it is for: isomorphic-git holds each in memory whole (default: no limit). */
  maxBodyBytes?: Partial<Record<RequestKind, number>>;
  /** Called once per request when it completes or fails; `ok` is a 2xx status read to the end. */
  onRequest?: (kind: RequestKind, ok: boolean) => void;
}

/** Builds the client; each request gets its own timeout. */
export function fetchHttpClient(options: HttpClientOptions): HttpClient {
  return {
    async request(req: GitHttpRequest): Promise<GitHttpResponse> {
      const kind: RequestKind = req.url.includes("/info/refs") ? "refs" : "fetch";
      const report = (ok: boolean) => options.onRequest?.(kind, ok);
      const signal = AbortSignal.timeout(options.timeoutMs);
      // Collect the body: servers like CodeCommit need a Content-Length, and upload-pack requests are small.
      const body = req.body ? await collect(req.body) : undefined;
      let res: Response;
      try {
        res = await fetch(req.url, {
          method: req.method ?? "GET",
          headers: req.headers ?? {},
          ...(body ? { body } : {}),
          signal,
          redirect: "follow",
        });
      } catch (err) {
        report(false);
        throw networkError(err, signal, options.timeoutMs, req.url);
      }
      if (!res.ok) report(false);
      const headers: Record<string, string> = {};
      res.headers.forEach((value, key) => {
        headers[key] = value;
      });
      // An error status is known now; a success only counts once its body arrived whole.
      let answer = readBody(
        res,
        signal,
        options.timeoutMs,
        req.url,
        res.ok ? report : () => {},
        options.maxBodyBytes?.[kind] ?? Number.POSITIVE_INFINITY,
        kind,
      );
      // isomorphic-git ends a ref list quietly where its stream fails, and would read a list cut short (by the
      // limit, a timeout, a reset) as the whole: read it here, so such a failure is this request's error.
      if (kind === "refs" && res.ok) answer = oneChunk(await collect(answer));
      return {
        url: res.url || req.url,
        method: req.method ?? "GET",
        statusCode: res.status,
        statusMessage: res.statusText,
        headers,
        body: answer,
      };
    },
  };
}

async function* oneChunk(bytes: Uint8Array): AsyncIterableIterator<Uint8Array> {
  yield bytes;
}

async function* readBody(
  res: Response,
  signal: AbortSignal,
  timeoutMs: number,
  url: string,
  report: (ok: boolean) => void,
  maxBytes: number,
  kind: RequestKind,
): AsyncIterableIterator<Uint8Array> {
  let ok = res.ok;
  let received = 0;
  try {
    if (!res.body) return;
    const reader = res.body.getReader();
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (err) {
        ok = false;
        throw networkError(err, signal, timeoutMs, url);
      }
      if (chunk.done) return;
      received += chunk.value.byteLength;
      if (received > maxBytes) {
        ok = false;
        await reader.cancel().catch(() => {});
        throw new BodyTooLargeError(maxBytes, kind);
      }
      yield chunk.value;
    }
  } finally {
    report(ok);
  }
}

function networkError(err: unknown, signal: AbortSignal, timeoutMs: number, url: string): NetworkError {
  const host = hostOf(url);
  if (signal.aborted)
    return new NetworkError(`${host}: no answer within ${timeoutMs} ms`, true, { cause: err });
  const detail = err instanceof Error ? describe(err) : String(err);
  return new NetworkError(`${host}: ${detail}`, false, { cause: err });
}

/** Plain words for the usual socket error codes. */
const CODE_TEXT: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ConnectionRefused: "connection refused",
  ECONNRESET: "connection reset",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host not found (DNS lookup failed)",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ETIMEDOUT: "connection timed out",
};

// Runtimes word connection failures differently; the code (ECONNREFUSED, ENOTFOUND, …) is the useful part.
function describe(err: Error): string {
  const inner = (err as { cause?: unknown }).cause;
  const code = (err as { code?: unknown }).code ?? (inner as { code?: unknown } | undefined)?.code;
  if (typeof code === "string" && CODE_TEXT[code]) return `${CODE_TEXT[code]} (${code})`;
  const message = inner instanceof Error ? inner.message : err.message;
  // Deno gives no code, only a long message ending in the OS error.
  if (/connection refused/i.test(message)) return "connection refused";
  if (/dns error|failed to lookup address|name or service not known/i.test(message)) return "host not found";
  return typeof code === "string" && !message.includes(code) ? `${message} (${code})` : message;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "the server";
  }
}

async function collect(chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const part of chunks) {
    parts.push(part);
    size += part.byteLength;
  }
  return Buffer.concat(parts, size);
}
