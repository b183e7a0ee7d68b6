/** Turns what isomorphic-git and the HTTP client throw into `BerthError`s with reason "FetchFailed". */
import { BerthError } from "../object/errors.ts";
import { BodyTooLargeError, NetworkError } from "./http-client.ts";

/** The HTTP status of an isomorphic-git `HttpError`, if `err` is one. */
export function httpStatusOf(err: unknown): number | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const { code, data } = err as { code?: unknown; data?: { statusCode?: unknown } };
  return code === "HttpError" && typeof data?.statusCode === "number" ? data.statusCode : undefined;
}

/** Network failures and server errors may pass; 4xx answers (401, 403, 404, …) will not change on retry. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof NetworkError) return true;
  const status = httpStatusOf(err);
  return status !== undefined && (status >= 500 || status === 429);
}

/** The `BerthError` for a failed request to the repository at `cleanUrl` (which carries no credentials). */
export function fetchFailed(cleanUrl: string, err: unknown, attempts: number): BerthError {
  const subject = `git ${cleanUrl}`;
  if (err instanceof BerthError) return err;
  const tries = attempts > 1 ? ` (after ${attempts} attempts)` : "";
  let message: string;
  if (err instanceof BodyTooLargeError) {
    const key = err.kind === "fetch" ? "the source's limits.maxFetchBytes" : "the limit";
    message = `the server sent more than ${err.limit} bytes in one answer (${key}); nothing was fetched`;
  } else if (err instanceof NetworkError) {
    message = `cannot reach ${err.message}${tries}`;
  } else {
    const status = httpStatusOf(err);
    if (status === 401 || status === 403) {
      message = `authentication failed (HTTP ${status}): check the token in tokenFile/tokenEnv`;
    } else if (status === 404) {
      message = "repository not found (HTTP 404): check the URL, or the token's access to it";
    } else if (status !== undefined) {
      message = `server answered HTTP ${status}${tries}`;
    } else {
      message = `fetch failed: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  return new BerthError(message, { subject, reason: "FetchFailed", cause: err });
}
