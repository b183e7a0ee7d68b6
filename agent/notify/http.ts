/**
 * The one HTTP client of notifications and forges: a JSON request with a timeout per attempt and a few quick retries on
 * network errors, 429 and 5xx. Longer outages are the outbox's business (backoff across minutes and restarts).
 */
import { withRetries } from "../object/retry.ts";

/** A delivery the receiver refused or never answered; `retryable` says whether a later attempt may succeed. */
export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
  ) {
    super(message);
    this.name = "DeliveryError";
  }
}

export interface PostOptions {
  headers?: Record<string, string>;
  timeoutMs: number;
  /** Quick retries inside one delivery attempt (default 2). */
  retries?: number;
  baseDelayMs?: number;
  /** Name the URL's path in errors (API clients whose secret is a header, never the URL). */
  showPath?: boolean;
}

/**
 * The most of an answer that is read. Receivers answer a word or two and a forge's largest answer (a page of
 * comments) is some hundreds of KiB; a URL that points somewhere else (a file server, a stream) must not fill the
 * agent's memory within the timeout.
 */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/** Of an error answer only the start is read, for its message. */
const ERROR_ANSWER_BYTES = 64 * 1024;

/** POSTs a body (already serialised JSON); resolves on 2xx, throws DeliveryError otherwise. */
export async function postJson(url: string, body: string, options: PostOptions): Promise<void> {
  await requestJson("POST", url, body, options);
}

/**
 * Sends one JSON request (body already serialised, or none) and returns the parsed JSON answer (undefined when
 * empty); throws DeliveryError on a network error, a timeout or a non-2xx status. The forge clients use it too.
 */
export async function requestJson(
  method: "GET" | "POST" | "PATCH" | "PUT",
  url: string,
  body: string | undefined,
  options: PostOptions,
): Promise<unknown> {
  // The URL may carry a secret (Slack/Teams/Discord): errors name only its origin (and the path for the API
  // clients, whose secret is a header).
  const where = options.showPath ? `${method} ${originOf(url)}${pathOf(url)}` : originOf(url);
  return await withRetries(
    async () => {
      let res: Response;
      try {
        res = await fetch(url, {
          method,
          headers: {
            ...(body !== undefined ? { "content-type": "application/json" } : {}),
            ...options.headers,
          },
          ...(body !== undefined ? { body } : {}),
          redirect: "error",
          signal: AbortSignal.timeout(options.timeoutMs),
        });
      } catch (err) {
        const timedOut = (err as { name?: string }).name === "TimeoutError";
        throw new DeliveryError(
          timedOut
            ? `${where}: no answer within ${options.timeoutMs}ms`
            : `${where}: cannot connect (${(err as Error).message})`,
          true,
        );
      }
      const answer = await readCapped(res, res.ok ? MAX_ANSWER_BYTES : ERROR_ANSWER_BYTES);
      if (answer.over && res.ok)
        throw new DeliveryError(
          `${where}: answered more than ${MAX_ANSWER_BYTES} bytes (the limit), not read: is the URL right?`,
          false,
          res.status,
        );
      const text = answer.text;
      if (res.ok) {
        if (!text) return undefined;
        try {
          return JSON.parse(text) as unknown;
        } catch {
          return text;
        }
      }
      const retryable = res.status === 429 || res.status === 408 || res.status >= 500;
      throw new DeliveryError(
        `${where}: HTTP ${res.status}${text ? `: ${text.slice(0, 200).replace(/\s+/g, " ")}` : ""}`,
        retryable,
        res.status,
      );
    },
    {
      retries: options.retries ?? 2,
      baseDelayMs: options.baseDelayMs ?? 250,
      retryable: (err) => err instanceof DeliveryError && err.retryable,
    },
  );
}

/** Up to `maxBytes` of the answer's body as text; `over` when there was more (the rest is not downloaded). */
async function readCapped(res: Response, maxBytes: number): Promise<{ text: string; over: boolean }> {
  if (!res.body) return { text: "", over: false };
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  try {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) return { text: text + decoder.decode(), over: false };
      const kept = Math.min(maxBytes - size, chunk.value.byteLength);
      text += decoder.decode(chunk.value.subarray(0, kept), { stream: true });
      size += kept;
      if (kept < chunk.value.byteLength) {
        await reader.cancel().catch(() => {});
        return { text: text + decoder.decode(), over: true };
      }
    }
  } catch {
    return { text: "", over: false }; // a body cut off while it arrived reads as none, as before
  }
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return "";
  }
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(invalid URL)";
  }
}
