/**
 * Parses manifest files in worker threads (node:worker_threads: the same API under Bun, the compiled binary,
 * Deno 2 and Node 20). A worker busy with a file whose wait is aborted is terminated, so SIGTERM never waits
 * for a parse. Where no worker can start, files are parsed in this thread, as before.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { messageOf } from "../object/errors.ts";
import { attachLarge, type Detached } from "./chunked.ts";
import { type FileParser, parseInline } from "./plain.ts";
import type { FileRender, FileRenderLimits } from "./render-file.ts";

/**
 * Where the worker's module is, relative to this module: beside it when run from source (Bun, Deno), the
 * compiled binary's embedded entry (scripts/build.sh adds it), or the Node bundle's second file.
 */
const WORKER_CANDIDATES = ["./parse-worker.ts", "./render/parse-worker.js", "./parse-worker.mjs"];

function workerUrl(): URL | undefined {
  for (const candidate of WORKER_CANDIDATES) {
    const url = new URL(candidate, import.meta.url);
    try {
      if (existsSync(fileURLToPath(url))) return url;
    } catch {
      // Not a file URL on this runtime: try the next.
    }
  }
  return undefined;
}

interface Job {
  id: number;
  path: string;
  bytes: Uint8Array;
  limits: FileRenderLimits;
  resolve: (r: FileRender) => void;
  reject: (e: Error) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

/** What a worker says: that it started, or one file's result (large containers detached) or error. */
interface WorkerMessage {
  id?: number;
  ready?: true;
  result?: FileRender;
  detached?: Detached[];
  error?: string;
}

interface Slot {
  worker: Worker;
  job: Job | undefined;
  /** Whether it said it started: one that dies before that could not start. */
  answered: boolean;
  /** Set while the worker waits for work: it is stopped when this fires. */
  idle?: ReturnType<typeof setTimeout> | undefined;
}

/**
 * How long an idle worker is kept, ms. Each is a JavaScript VM of its own (5-7 MB resident: the heap of
 * scripts/bench/heap.ts); with the render cache an agent at rest parses nothing, so its workers go, and the
 * next commit starts them again. Short: the files of one render come back to back, and a worker kept through
 * the apply and health wait that follow (seconds for 1,000 objects) only adds to the sync's peak memory.
 */
export const WORKER_IDLE_MS = 2_000;

/**
 * Files of at most this many bytes are parsed in the calling thread: the worst such file measured (1,024 empty
 * YAML documents, or 300 keys) took 3–5 ms here, while a worker's round trip costs about 0.3 ms of this thread's
 * time for any file, and most manifests are far smaller than this. Larger files still go to a worker, so none
 * holds this thread long.
 */
export const INLINE_BYTES = 4096;

/** A small pool of parse workers, started on first use, unreferenced while idle (they never keep a CLI alive). */
export class ParsePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private readonly url: URL | undefined;
  /** Why files are parsed in this thread, once a worker could not start. */
  fallback: string | undefined;

  private readonly size: number;
  private readonly idleMs: number;
  private readonly inlineBytes: number;
  private readonly onFallback: ((why: string) => void) | undefined;

  constructor(
    options: {
      size?: number;
      idleMs?: number;
      onFallback?: (why: string) => void;
      workerUrl?: URL;
      /** Files of at most this many bytes are parsed in this thread (default INLINE_BYTES; -1: none). */
      inlineBytes?: number;
    } = {},
  ) {
    this.size = options.size ?? 2;
    this.inlineBytes = options.inlineBytes ?? INLINE_BYTES;
    this.idleMs = options.idleMs ?? WORKER_IDLE_MS;
    this.onFallback = options.onFallback;
    this.url = options.workerUrl ?? workerUrl();
    if (!this.url) this.fallBack("the parse worker's module was not found");
  }

  /** The FileParser that uses this pool. */
  readonly parse: FileParser = (path, bytes, limits, signal) => {
    // A file over the size limit is refused at once: copying it to a worker would only be wasted memory.
    if (
      this.fallback !== undefined ||
      bytes.byteLength <= this.inlineBytes ||
      bytes.byteLength > limits.maxFileBytes
    )
      return parseInline(path, bytes, limits, signal);
    if (signal?.aborted) return Promise.reject(abortError(signal));
    return new Promise<FileRender>((resolve, reject) => {
      const job: Job = {
        id: this.nextId++,
        path,
        bytes,
        limits,
        resolve,
        reject,
        signal,
        onAbort: () => this.abort(job),
      };
      signal?.addEventListener("abort", job.onAbort, { once: true });
      this.queue.push(job);
      this.pump();
    });
  };

  /** Stops every worker; waiting parses reject. */
  async close(): Promise<void> {
    for (const job of this.queue.splice(0)) this.settle(job, new Error("the parse pool was closed"));
    for (const slot of this.slots.splice(0)) {
      clearTimeout(slot.idle);
      if (slot.job) this.settle(slot.job, new Error("the parse pool was closed"));
      await slot.worker.terminate();
    }
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => !s.job);
      if (!slot && this.slots.length < this.size) slot = this.start();
      if (!slot) return;
      const job = this.queue.shift() as Job;
      clearTimeout(slot.idle);
      slot.idle = undefined;
      slot.job = job;
      slot.worker.ref();
      // A copy, not a transfer: the snapshot may cache the blob's buffer.
      slot.worker.postMessage({ id: job.id, path: job.path, bytes: job.bytes, limits: job.limits });
    }
  }

  private start(): Slot | undefined {
    let worker: Worker;
    try {
      worker = new Worker(this.url as URL);
    } catch (err) {
      this.fallBack(`the parse worker could not start: ${messageOf(err)}`);
      return undefined;
    }
    worker.unref();
    const slot: Slot = { worker, job: undefined, answered: false };
    this.slots.push(slot);
    worker.on("message", (msg: WorkerMessage) => {
      const job = slot.job;
      slot.answered = true;
      if (!job || job.id !== msg.id) return;
      slot.job = undefined;
      worker.unref();
      this.pump();
      if (!slot.job) this.idleFrom(slot);
      const { result, detached } = msg;
      if (!result) return this.settle(job, new Error(msg.error ?? "the parse worker failed"));
      // Large maps and lists arrive in pieces, put back a piece per turn: no long stall on this thread.
      attachLarge(
        result.objects.map((o) => o.object),
        detached ?? [],
      ).then(
        () => this.settle(job, undefined, result),
        (err) => this.settle(job, err instanceof Error ? err : new Error(String(err))),
      );
    });
    worker.on("error", (err) => this.lost(slot, err));
    worker.on("exit", () => this.lost(slot, undefined));
    return slot;
  }

  /** Stops the slot's worker once it has waited `idleMs` for work. */
  private idleFrom(slot: Slot): void {
    clearTimeout(slot.idle);
    slot.idle = setTimeout(() => {
      const i = this.slots.indexOf(slot);
      if (i < 0 || slot.job) return;
      this.slots.splice(i, 1); // before terminate: its exit is not a loss
      void slot.worker.terminate();
    }, this.idleMs);
    (slot.idle as { unref?: () => void }).unref?.();
  }

  /** A worker died: if it never answered, files are parsed in this thread from now on; else its file fails. */
  private lost(slot: Slot, err: unknown): void {
    const i = this.slots.indexOf(slot);
    if (i < 0) return;
    this.slots.splice(i, 1);
    const job = slot.job;
    slot.job = undefined;
    if (!slot.answered) {
      this.fallBack(`the parse worker could not start: ${err === undefined ? "it exited" : messageOf(err)}`);
      for (const j of [...(job ? [job] : []), ...this.queue.splice(0)])
        parseInline(j.path, j.bytes, j.limits).then((r) => this.settle(j, undefined, r));
      return;
    }
    if (job)
      this.settle(
        job,
        new Error(`the parse worker failed: ${err === undefined ? "it exited" : messageOf(err)}`),
      );
    this.pump();
  }

  /** An aborted wait: drop it from the queue, or stop the worker that is parsing it. */
  private abort(job: Job): void {
    const queued = this.queue.indexOf(job);
    if (queued >= 0) this.queue.splice(queued, 1);
    const slot = this.slots.find((s) => s.job === job);
    if (slot) {
      this.slots.splice(this.slots.indexOf(slot), 1);
      slot.job = undefined;
      void slot.worker.terminate();
    }
    this.settle(job, abortError(job.signal));
    this.pump();
  }

  private settle(job: Job, err: Error | undefined, result?: FileRender): void {
    job.signal?.removeEventListener("abort", job.onAbort);
    if (err) job.reject(err);
    else job.resolve(result as FileRender);
  }

  private fallBack(why: string): void {
    if (this.fallback !== undefined) return;
    this.fallback = why;
    this.onFallback?.(why);
  }
}

function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error("stopped");
}

let shared: ParsePool | undefined;

/** The process's parse pool (workers are shared by every app and every wiring of the agent). */
export function sharedParsePool(onFallback?: (why: string) => void): ParsePool {
  shared ??= new ParsePool(onFallback ? { onFallback } : {});
  return shared;
}
