/**
 * The previews lane of `berth run`: on its own timer, apart from the sync loop (a slow render or a flood of
 * pull requests never delays a sync), it lists the refs matching `previews.refs`/`branches`, and for each ref
 * whose head it has not previewed yet, previews every listed app at that head (agent/engine/preview.ts: reads
 * and dry-runs only) and hands the result to the reporters (forge commit status and comment). Each ref's last
 * previewed head is kept (and saved), so a head is previewed once.
 */
import { messageOf } from "../object/errors.ts";
import { capMessage } from "../object/message.ts";
import { mapLimit } from "../object/pool.ts";
import type { Logger } from "./log.ts";
import type { AppSpec, PreviewReporter, PreviewSourcePort, RefPreview } from "./ports.ts";
import { type PreviewDeps, previewApp } from "./preview.ts";

/** Saves and restores what the lane has previewed, so a restart neither forgets nor repeats (optional). */
export interface PreviewStore {
  load(): RefPreview[];
  save(previews: readonly RefPreview[]): void;
}

export interface PreviewLaneOptions {
  source: PreviewSourcePort;
  /** Which matching refs to preview: the newest `maxRefs` of them (agent/source/refs.ts matchRefs). */
  match: (refs: Array<{ ref: string; sha: string }>) => Array<{ ref: string; sha: string }>;
  deps: PreviewDeps;
  apps: readonly AppSpec[];
  /** Between polls, ms. */
  interval: number;
  /** Refs previewed at once (default 1): previews share the cluster and the render tools with syncs. */
  concurrency?: number;
  /** The pull or merge request number of a ref, when it has one. */
  pullRequestOf?: (ref: string) => number | undefined;
  reporters?: readonly PreviewReporter[];
  store?: PreviewStore;
  /** False on an HA standby: only the Lease holder previews and reports, so a forge hears one voice. */
  active?: () => boolean;
  log: Logger;
}

/** Previews of unmerged heads, polled on their own timer. */
export class PreviewLane {
  /** The latest preview of each followed ref, by ref name. */
  private readonly previews = new Map<string, RefPreview>();
  /** Refs whose latest preview some reporter has not taken yet: retried each poll, without planning again. */
  private readonly unreported = new Map<string, Set<string>>();
  private readonly abort = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private polling: Promise<void> | undefined;
  private stopped = false;
  /** The followed refs in the order the last poll matched them: newest first. */
  private order: string[] = [];
  /** Why the last poll could not list the refs, if it could not. */
  error: string | undefined;

  constructor(private readonly options: PreviewLaneOptions) {
    for (const p of options.store?.load() ?? []) this.previews.set(p.ref, p);
  }

  /** Polls now and then every interval until stop(). */
  start(): void {
    if (this.stopped || this.timer || this.polling) return;
    const tick = () => {
      this.timer = undefined;
      this.polling = this.poll().finally(() => {
        this.polling = undefined;
        if (!this.stopped) this.timer = setTimeout(tick, this.options.interval);
      });
    };
    tick();
  }

  /** Stops polling; a preview in flight sees the abort (its render stops) and the lane waits for it. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    if (this.timer) clearTimeout(this.timer);
    await this.polling;
  }

  /** Every followed ref's latest preview, newest ref first. */
  list(): RefPreview[] {
    const rank = new Map(this.order.map((ref, i) => [ref, i]));
    const last = this.order.length;
    return [...this.previews.values()].sort((a, b) => (rank.get(a.ref) ?? last) - (rank.get(b.ref) ?? last));
  }

  /** One ref's latest preview (`refs/pull/7/head`, or a branch name for `refs/heads/…`). */
  get(ref: string): RefPreview | undefined {
    return this.previews.get(ref) ?? this.previews.get(`refs/heads/${ref}`);
  }

  /** One poll: list the refs, preview every new head, report. Never throws. */
  async poll(): Promise<void> {
    const { source, log } = this.options;
    if (this.options.active && !this.options.active()) return;
    let matched: Array<{ ref: string; sha: string }>;
    try {
      matched = this.options.match(await source.refs());
      this.error = undefined;
    } catch (err) {
      const message = capMessage(messageOf(err));
      if (message !== this.error) log.log("warn", "previews: cannot list the refs", { error: message });
      this.error = message;
      return;
    }
    // Refs that left the window (deleted, or older than the newest maxRefs) are forgotten.
    this.order = matched.map((m) => m.ref);
    const followed = new Set(this.order);
    let forgot = false;
    for (const ref of [...this.previews.keys()])
      if (!followed.has(ref)) {
        this.previews.delete(ref);
        this.unreported.delete(ref);
        forgot = true;
      }
    // A new head, or one that could not be fetched last time.
    const fresh = matched.filter((m) => {
      const last = this.previews.get(m.ref);
      return last?.sha !== m.sha || last.error !== undefined;
    });
    await mapLimit(fresh, Math.max(1, this.options.concurrency ?? 1), async (m) => {
      if (this.stopped) return;
      const preview = await this.previewRef(m.ref, m.sha);
      if (this.stopped) return; // cut short by stop(): not a result
      this.previews.set(m.ref, preview);
      if (preview.error === undefined)
        this.unreported.set(m.ref, new Set((this.options.reporters ?? []).map((r) => r.name)));
      log.log(preview.error ? "warn" : "info", "previewed a ref", {
        ref: m.ref,
        sha: m.sha,
        apps: preview.apps.map((a) => `${a.app}: ${a.summary}`),
        ...(preview.error ? { error: preview.error } : {}),
      });
    });
    if (fresh.length > 0 || forgot) this.save();
    await this.report();
  }

  /** Previews every listed app at one head; fetch problems become the result's `error`. */
  async previewRef(ref: string, sha: string): Promise<RefPreview> {
    const pr = this.options.pullRequestOf?.(ref);
    const base = { ref, sha, ...(pr !== undefined ? { pr } : {}) };
    let snapshot: Awaited<ReturnType<PreviewSourcePort["snapshot"]>>;
    try {
      snapshot = await this.options.source.snapshot(ref, sha);
    } catch (err) {
      return {
        ...base,
        revision: sha,
        at: new Date().toISOString(),
        apps: [],
        error: capMessage(messageOf(err)),
      };
    }
    const apps = [];
    // One app at a time: the lane's concurrency is over refs, and render limits apply per tool run.
    for (const app of this.options.apps) {
      if (this.abort.signal.aborted) break;
      apps.push(await previewApp(this.options.deps, app, snapshot, this.abort.signal));
    }
    return {
      ...base,
      revision: snapshot.revision,
      commit: snapshot.commit,
      at: new Date().toISOString(),
      apps,
    };
  }

  /** Hands each unreported preview to the reporters that have not taken it; a failing reporter is retried. */
  private async report(): Promise<void> {
    for (const [ref, pending] of this.unreported) {
      const preview = this.previews.get(ref);
      if (!preview || preview.error !== undefined) {
        this.unreported.delete(ref);
        continue;
      }
      for (const reporter of this.options.reporters ?? []) {
        if (!pending.has(reporter.name) || this.stopped) continue;
        try {
          await reporter.report(preview);
          pending.delete(reporter.name);
        } catch (err) {
          this.options.log.log("warn", "previews: could not report; retrying next poll", {
            ref,
            reporter: reporter.name,
            error: messageOf(err),
          });
        }
      }
      if (pending.size === 0) this.unreported.delete(ref);
    }
  }

  private save(): void {
    try {
      this.options.store?.save([...this.previews.values()]);
    } catch (err) {
      this.options.log.log("warn", "previews: could not save what was previewed", { error: messageOf(err) });
    }
  }
}
