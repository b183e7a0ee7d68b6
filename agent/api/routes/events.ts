/** GET /api/v1/events: the engine's events as server-sent events, with a keep-alive comment when idle. */
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import type { ApiDeps, ApiEnv } from "../app.ts";
import { HttpError } from "../http-error.ts";

/** Milliseconds between keep-alive comments on the event stream. */
const SSE_HEARTBEAT_MS = 10_000;
/** Events a slow reader may lag behind; past it the oldest are dropped, not kept in our memory. */
const MAX_QUEUED = 1000;

export function eventRoutes(deps: ApiDeps): Hono<ApiEnv> {
  const r = new Hono<ApiEnv>();
  r.get("/api/v1/events", (c) => {
    const queue: string[] = [];
    const unsubscribe = deps.events.subscribe((p) => {
      queue.push(JSON.stringify({ seq: p.seq, at: p.at, ...p.event }));
      if (queue.length > MAX_QUEUED) queue.shift();
    });
    if (!unsubscribe) throw new HttpError(503, "TooManyStreams", "too many event streams are open");
    const closed = new AbortController();
    return streamSSE(c, async (stream) => {
      stream.onAbort(() => closed.abort());
      try {
        await stream.writeSSE({ event: "hello", data: JSON.stringify({ at: new Date().toISOString() }) });
        while (!closed.signal.aborted && !stream.aborted) {
          const data = queue.shift();
          if (data !== undefined) {
            await stream.writeSSE({ event: JSON.parse(data).type, data });
            continue;
          }
          // The next event (our listener above has queued it by then), the heartbeat or the reader leaving.
          await deps.events.next(SSE_HEARTBEAT_MS, closed.signal);
          if (queue.length === 0 && !closed.signal.aborted) await stream.write(": keep-alive\n\n");
        }
      } finally {
        unsubscribe();
      }
    });
  });
  return r;
}
