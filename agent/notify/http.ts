/**
 * The one HTTP client of notifications: a JSON POST with a timeout per attempt and a few quick retries on
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
}

/** POSTs a body (already serialised JSON); resolves on 2xx, throws DeliveryError otherwise. */
export async function postJson(url: string, body: string, options: PostOptions): Promise<void> {
  // The URL may carry a secret (Slack/Teams/Discord): errors name only its origin.
  const where = originOf(url);
  await withRetries(
    async () => {
      let res: Response;
      try {
        res = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", ...options.headers },
          body,
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
      const text = await res.text().catch(() => "");
      if (res.ok) return;
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

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "(invalid URL)";
  }
}
