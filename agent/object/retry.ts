/** Retries with exponential backoff and jitter. */

/** How often and how patiently to retry. */
export interface RetryOptions {
  /** Retries after the first attempt. */
  retries: number;
  /** Base delay; attempt n waits between half and all of `baseDelayMs * 2^n`. */
  baseDelayMs: number;
  /** Whether an error is worth another attempt (network errors and 5xx, not 401/403/404). */
  retryable: (err: unknown) => boolean;
  /** Turns the last error into the one thrown, told how many attempts were made (default: rethrown as is). */
  failed?: (err: unknown, attempts: number) => unknown;
}

/** Calls `attempt` until it resolves, a non-retryable error occurs, or the retries are used up (rethrowing the last error). */
export async function withRetries<T>(attempt: () => Promise<T>, options: RetryOptions): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt();
    } catch (err) {
      if (n >= options.retries || !options.retryable(err))
        throw options.failed ? options.failed(err, n + 1) : err;
      // Jitter spreads out agents that failed together, so they do not retry in lockstep.
      const ceiling = options.baseDelayMs * 2 ** n;
      await new Promise((resolve) => setTimeout(resolve, ceiling / 2 + (Math.random() * ceiling) / 2));
    }
  }
}
