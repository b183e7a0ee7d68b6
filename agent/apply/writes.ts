/**
 * One stage's writes (applies or deletes) with an exact record of each: acknowledged, failed, or never sent.
 * After the first failure, or once the sync is told to stop, no further write of the stage is started;
 * writes already in flight finish, so the record says exactly what the API server acknowledged.
 */
import { messageOf } from "../object/errors.ts";
import type { ObjectRef } from "../object/object.ts";
import type { WriteStatus } from "../object/records.ts";

/** How long one write may wait for the API server's answer before it is given up (and counted as failed). */
export const WRITE_TIMEOUT_MS = 30_000;

/** What became of one planned write. */
export interface WriteOutcome {
  subject: string;
  ref: ObjectRef;
  status: WriteStatus;
  error?: string;
  /** Failed without an answer from the API server (unreachable, reset, timed out): it may have landed. */
  uncertain?: boolean;
}

/** The outcome of a write that was never sent. */
export function notAttempted(c: { subject: string; ref: ObjectRef }): WriteOutcome {
  return { subject: c.subject, ref: c.ref, status: "not-attempted" };
}

/**
 * Runs `write` over `batch` with at most `limit` in flight, keeping input order. Once one fails or `signal`
 * aborts, the writes not yet started come back `not-attempted`.
 */
export async function writeBatch<C extends { subject: string; ref: ObjectRef }, O extends WriteOutcome>(
  batch: readonly C[],
  limit: number,
  signal: AbortSignal | undefined,
  write: (change: C) => Promise<O>,
): Promise<Array<O | WriteOutcome>> {
  const results = new Array<O | WriteOutcome>(batch.length);
  let stop = false;
  let next = 0;
  const worker = async () => {
    while (next < batch.length) {
      const i = next++;
      const change = batch[i] as C;
      if (stop || signal?.aborted) {
        results[i] = notAttempted(change);
        continue;
      }
      const outcome = await write(change);
      if (outcome.status !== "applied") stop = true;
      results[i] = outcome;
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, batch.length) }, worker));
  return results;
}

/**
 * Sends one write with a deadline; turns its error into a failed outcome. `explain` words an API error.
 * Errors without an HTTP status never got an answer, so the write may or may not have landed.
 */
export async function attempt<R>(
  c: { subject: string; ref: ObjectRef },
  timeoutMs: number,
  send: (signal: AbortSignal) => Promise<R>,
  explain: (err: unknown) => string = messageOf,
): Promise<(WriteOutcome & { result: R }) | WriteOutcome> {
  const deadline = AbortSignal.timeout(timeoutMs);
  try {
    const result = await send(deadline);
    return { subject: c.subject, ref: c.ref, status: "applied", result };
  } catch (err) {
    const answered = typeof (err as { status?: unknown }).status === "number";
    const error = deadline.aborted
      ? `no answer from the API server within ${seconds(timeoutMs)} (the write may still have landed)`
      : explain(err);
    return {
      subject: c.subject,
      ref: c.ref,
      status: "failed",
      error,
      ...(answered ? {} : { uncertain: true }),
    };
  }
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)}s`;
}
