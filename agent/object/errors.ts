/** The one error type stages throw: it carries its subject, a reason and its cause. */
import type { Reason } from "./object.ts";

/**
 * What kind of failure an error is, for the shells' code tables (agent/api/http-error.ts, agent/cli/common.ts):
 * the reconcile reasons, and those of a request or command. No reason: an input the user must fix.
 */
export type ErrorReason = Reason | "InvalidInput" | "NotFound" | "Conflict" | "Held" | "Unavailable";

export interface BerthErrorOptions {
  /** What the error is about: `Deployment/web/api`, a file path, a config field. */
  subject?: string;
  reason?: ErrorReason;
  cause?: unknown;
}

/** An error whose message starts with its subject; the CLI and HTTP shells map `reason` to exit and status codes. */
export class BerthError extends Error {
  readonly subject: string | undefined;
  readonly reason: ErrorReason | undefined;

  constructor(message: string, options: BerthErrorOptions = {}) {
    super(options.subject ? `${options.subject}: ${message}` : message, { cause: options.cause });
    this.name = "BerthError";
    this.subject = options.subject;
    this.reason = options.reason;
  }
}

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
