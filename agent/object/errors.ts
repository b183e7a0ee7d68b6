/** The one error type stages throw: it carries its subject, a reason and its cause. */
import type { Reason } from "./object.ts";

export interface BerthErrorOptions {
  /** What the error is about: `Deployment/web/api`, a file path, a config field. */
  subject?: string;
  reason?: Reason;
  cause?: unknown;
}

/** An error whose message starts with its subject; the CLI and HTTP shells map `reason` to exit and status codes. */
export class BerthError extends Error {
  readonly subject: string | undefined;
  readonly reason: Reason | undefined;

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
