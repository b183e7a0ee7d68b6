/**
 * A list-then-watch of one kind, scoped by a label selector: resourceVersion tracking, bookmarks,
 * a relist on 410 Gone or after any broken connection (so changes made while it was down are seen),
 * and reconnects with capped exponential backoff. A connection that stays open but forwards nothing
 * (a dead NAT entry, a stuck proxy) counts as broken: each watch request asks the server to end it after
 * `timeoutSeconds` (it sends a bookmark just before), so silence for longer than that means a stall.
 */
import { messageOf } from "../object/errors.ts";
import type { KubeObject } from "../object/object.ts";
import { KubeApiError, type KubeClient, type ResourceInfo } from "./client.ts";

/** Server-side timeout of one watch request, seconds: short, so that silence soon means a stall. */
export const WATCH_TIMEOUT_SECONDS = 20;
/** Slack over the server's timeout before a silent watch is declared stalled, ms. */
const IDLE_SLACK_MS = 5_000;

/** What a watch reports: a full relist (replacing what was known), or one change. */
export type WatchUpdate =
  | { type: "relist"; objects: KubeObject[] }
  | { type: "ADDED" | "MODIFIED" | "DELETED"; object: KubeObject };

/** How one kind is watched. */
export interface KindWatchOptions {
  info: ResourceInfo;
  labelSelector: string;
  /** Watch one namespace only (a namespaced kind); absent: across all namespaces. */
  namespace?: string;
  onUpdate: (update: WatchUpdate) => void;
  /** Called when the watch connects (after a relist) or loses its connection. */
  onState?: (connected: boolean, error?: string) => void;
  /** First reconnect delay, ms (doubles up to maxBackoffMs). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Server-side timeout of one watch request, seconds; the watch then resumes from its resourceVersion. */
  timeoutSeconds?: number;
  /** Silence (no event, bookmark or end) after which the watch is dropped and relisted, ms. Default: timeout + 5 s. */
  idleTimeoutMs?: number;
}

/** Watches one kind until stop(); `synced` resolves after the first list attempt, successful or not. */
export class KindWatch {
  private readonly abort = new AbortController();
  private resourceVersion = "";
  private running: Promise<void> | undefined;
  private resolveSynced: (() => void) | undefined;
  /** Resolves once the first list has been delivered, or has failed (then `connected` stays false). */
  readonly synced: Promise<void>;
  /** True while a watch request is open and the view is current. */
  connected = false;
  /** Relists done (the first list included), for tests and metrics. */
  relists = 0;
  /**
   * True once the server answered 403: the watch has ended rather than retrying every few seconds (a tenant
   * app's ServiceAccount may not list a kind at all); whoever tracks the kind next starts a new one.
   */
  forbidden = false;

  constructor(
    private readonly client: KubeClient,
    private readonly options: KindWatchOptions,
  ) {
    this.synced = new Promise((r) => {
      this.resolveSynced = r;
    });
  }

  /** Starts listing and watching in the background. */
  start(): void {
    this.running ??= this.run();
  }

  /** Stops the watch and waits for it to end. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let delay = this.options.backoffMs ?? 200;
    let needList = true;
    while (!signal.aborted) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        this.setConnected(true);
        const opened = Date.now();
        await this.watchOnce(signal);
        // A clean end (server timeout): resume from resourceVersion. One that came at once is not a timeout
        // (a proxy answering and closing): back off, so it cannot turn into a busy loop of requests.
        if (Date.now() - opened >= 1000) delay = this.options.backoffMs ?? 200;
        else {
          await sleep(delay, signal);
          delay = Math.min(delay * 2, this.options.maxBackoffMs ?? 5000);
        }
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof StalledWatch) this.client.distrustPool();
        this.setConnected(false, messageOf(err));
        // A failed first list (e.g. 403 Forbidden) must not block whoever awaits `synced`: they fall back to
        // asking the server, since lookups answer only while connected.
        this.resolveSynced?.();
        if (err instanceof KubeApiError && err.status === 403) {
          this.forbidden = true;
          return;
        }
        // 410 Gone: our resourceVersion is too old. Any other break: relist, since events may be lost.
        needList = true;
        await sleep(delay * (0.8 + Math.random() * 0.4), signal);
        delay = Math.min(delay * 2, this.options.maxBackoffMs ?? 5000);
      }
    }
    // Stopped on purpose: nothing was lost, so no onState (it would read as "watch lost; reconnecting").
    this.connected = false;
  }

  private setConnected(connected: boolean, error?: string): void {
    if (this.connected === connected && connected) return;
    this.connected = connected;
    this.options.onState?.(connected, error);
  }

  /** Lists every matching object (paged) and hands the set over as a relist. */
  private async relist(): Promise<void> {
    const { info, labelSelector } = this.options;
    const apiVersion = info.group ? `${info.group}/${info.version}` : info.version;
    const objects: KubeObject[] = [];
    let cont = "";
    let rv = "";
    do {
      const query = new URLSearchParams({ limit: "500", labelSelector });
      if (cont) query.set("continue", cont);
      const page = (await this.client.request(
        "list",
        "GET",
        `${this.client.collectionPath(info, this.options.namespace ?? "")}?${query}`,
      )) as { items?: KubeObject[]; metadata?: { continue?: string; resourceVersion?: string } };
      for (const item of page.items ?? []) objects.push({ ...item, apiVersion, kind: info.kind });
      cont = page.metadata?.continue ?? "";
      rv = page.metadata?.resourceVersion ?? rv;
    } while (cont);
    this.resourceVersion = rv;
    this.relists++;
    this.options.onUpdate({ type: "relist", objects });
    this.resolveSynced?.();
  }

  /** One watch request from the current resourceVersion; returns when the server ends it, throws on a stall. */
  private async watchOnce(signal: AbortSignal): Promise<void> {
    const { info, labelSelector } = this.options;
    const apiVersion = info.group ? `${info.group}/${info.version}` : info.version;
    const timeoutSeconds = this.options.timeoutSeconds ?? WATCH_TIMEOUT_SECONDS;
    const idleMs = this.options.idleTimeoutMs ?? timeoutSeconds * 1000 + IDLE_SLACK_MS;
    const query = new URLSearchParams({
      watch: "1",
      allowWatchBookmarks: "true",
      resourceVersion: this.resourceVersion,
      labelSelector,
      timeoutSeconds: String(timeoutSeconds),
    });
    // Its own abort: dropping a stalled request must close its connection, not stop the whole watch.
    const request = new AbortController();
    const stop = () => request.abort();
    signal.addEventListener("abort", stop, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    let rearm = () => {};
    const stalled = new Promise<never>((_, reject) => {
      rearm = () => {
        clearTimeout(timer);
        timer = setTimeout(
          () =>
            reject(
              new StalledWatch(
                `watch of ${info.kind} stalled: nothing received for ${Math.round(idleMs / 1000)}s; relisting`,
              ),
            ),
          idleMs,
        );
      };
    });
    try {
      rearm();
      const body = await Promise.race([
        this.client.stream(
          "watch",
          `${this.client.collectionPath(info, this.options.namespace ?? "")}?${query}`,
          request.signal,
        ),
        stalled,
      ]);
      const chunks = body[Symbol.asyncIterator]();
      const decoder = new TextDecoder();
      let buffered = "";
      for (;;) {
        const next = await Promise.race([chunks.next(), stalled]);
        if (next.done) break;
        rearm();
        const chunk = next.value;
        buffered += typeof chunk === "string" ? chunk : decoder.decode(chunk, { stream: true });
        let nl = buffered.indexOf("\n");
        while (nl !== -1) {
          const line = buffered.slice(0, nl).trim();
          buffered = buffered.slice(nl + 1);
          nl = buffered.indexOf("\n");
          if (!line) continue;
          this.handleEvent(line, apiVersion);
        }
      }
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", stop);
      request.abort();
    }
  }

  /** One line of a watch stream: an event to forward, a bookmark to remember, or an error to throw. */
  private handleEvent(line: string, apiVersion: string): void {
    const event = JSON.parse(line) as { type: string; object: KubeObject & { code?: number } };
    if (event.type === "ERROR") {
      const status = event.object as unknown as { code?: number; reason?: string; message?: string };
      throw new KubeApiError(
        status.message ?? "watch error",
        status.code ?? 500,
        status.reason ?? "",
        undefined,
      );
    }
    const rv = event.object?.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    if (event.type === "ADDED" || event.type === "MODIFIED" || event.type === "DELETED") {
      this.options.onUpdate({
        type: event.type,
        object: { ...event.object, apiVersion, kind: this.options.info.kind },
      });
    }
  }
}

/** A watch connection that stayed open but forwarded nothing. */
class StalledWatch extends Error {}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
