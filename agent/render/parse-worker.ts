/**
 * The parse worker: turns manifest files into objects off the agent's event loop, so a huge file never stalls
 * /healthz, the API or other apps. Started by agent/render/parse-pool.ts (also as its own bundle entry).
 */
import { parentPort } from "node:worker_threads";
import { messageOf } from "../object/errors.ts";
import { detachLarge } from "./chunked.ts";
import { type FileRenderLimits, renderFileBytes } from "./render-file.ts";

/** One file to parse. */
export interface ParseRequest {
  id: number;
  path: string;
  bytes: Uint8Array;
  limits: FileRenderLimits;
}

// Says it started, so the pool can tell a worker that cannot start from one a file made fail.
parentPort?.postMessage({ ready: true });
parentPort?.on("message", (req: ParseRequest) => {
  try {
    const result = renderFileBytes(req.path, req.bytes, req.limits);
    const detached = detachLarge(result.objects.map((o) => o.object));
    parentPort?.postMessage({ id: req.id, result, detached });
  } catch (err) {
    parentPort?.postMessage({ id: req.id, error: messageOf(err) });
  }
});
