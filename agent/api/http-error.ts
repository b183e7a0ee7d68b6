/**
 * The API's errors: HttpError (hono's HTTPException with a stable reason word), and the one table that maps a
 * BerthError's reason to a status. `errorAnswer` turns anything thrown into `{error: {reason, message}}`.
 */
import { HTTPException } from "hono/http-exception";
import { BerthError, type ErrorReason, messageOf } from "../object/errors.ts";

/** Status codes the API answers errors with. */
export type ErrorStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 500 | 502 | 503;

/** An error that knows its HTTP status and a stable reason word. */
export class HttpError extends HTTPException {
  override readonly status: ErrorStatus;

  constructor(
    status: ErrorStatus,
    readonly reason: string,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(status, { message, cause: options.cause });
    this.status = status;
    this.name = "HttpError";
  }
}

/** A BerthError's reason → HTTP status: the one table of the API shell (the CLI's is EXIT_OF). */
export const STATUS_OF: Readonly<Record<ErrorReason, ErrorStatus>> = {
  InvalidInput: 422,
  NotFound: 404,
  Conflict: 409,
  Held: 409,
  Unavailable: 503,
  FetchFailed: 503,
  BuildFailed: 422,
  PlanRejected: 409,
  ApplyFailed: 502,
  PruneFailed: 502,
  HealthCheckFailed: 502,
  Interrupted: 503,
  Succeeded: 500,
};

/** A BerthError without a reason (or with one the table lacks) is an input error. */
const INPUT_STATUS: ErrorStatus = 422;

/** What the API answers for a thrown value; `bug` is set for a programming error (to be logged with its stack). */
export function errorAnswer(err: unknown): {
  status: ErrorStatus;
  reason: string;
  message: string;
  bug?: true;
} {
  if (err instanceof HttpError) return { status: err.status, reason: err.reason, message: err.message };
  if (err instanceof HTTPException)
    return { status: err.status as ErrorStatus, reason: "HttpError", message: err.message };
  if (err instanceof BerthError) {
    const status = (err.reason && STATUS_OF[err.reason]) || INPUT_STATUS;
    return { status, reason: err.reason ?? "InvalidRequest", message: err.message };
  }
  // Anything else is a bug (or a library failing in a way nobody wrapped): the caller sees no internals.
  return { status: 500, reason: "InternalError", message: "internal error", bug: true };
}

/** The message and stack of a bug, for the log. */
export function bugDetail(err: unknown): { error: string; stack?: string } {
  const stack = err instanceof Error ? err.stack : undefined;
  return { error: messageOf(err), ...(stack ? { stack } : {}) };
}
