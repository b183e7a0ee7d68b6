/** The one HTTP error type of the API; `onError` turns it into `{error: {reason, message}}` with its status. */

/** Status codes the API answers errors with. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 500 | 503;

/** An error that knows its HTTP status and a stable reason word. */
export class HttpError extends Error {
  constructor(
    readonly status: ErrorStatus,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}
