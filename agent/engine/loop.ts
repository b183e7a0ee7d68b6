/**
 * The continuous loop behind `berth run`: polls Git (one ref request when
 * nothing changed), re-plans every app each interval so drift is corrected,
 * respects dependsOn, backs off with jitter on failure, runs one attempt at a
 * time (single-flight), and stops gracefully.
 */
import { messageOf } from "../object/errors.ts";
import type { Snapshot } from "../object/snapshot.ts";
import type { AppSpec, EngineDeps } from "./ports.ts";
import { type ReconcileResult, reconcile } from "./reconcile.ts";

/** What the loop knows about one app, for `status` and the API. */
export interface AppState {
  name: string;
  suspended: boolean;
  /** Synced, Failed, Suspended, WaitingOnDependency, Pending */
  status: string;
  lastResult?: ReconcileResult;
  lastAttemptAt?: string;
  nextAttemptAt?: string;
  failures: number;
}

export interface LoopOptions {
  /** Poll and resync interval, ms. */
  interval: number;
  /** First retry delay after a failure, ms (doubles up to the interval). */
  backoffBase?: number;
  /** Per-app intervals override the source interval. */
  appIntervals?: Record<string, number>;
}

/** Runs reconcile for every app, forever, until stop(). */
export class SyncLoop {
  private readonly states = new Map<string, AppState>();
  private readonly due = new Map<string, number>();
  private wake: (() => void) | undefined;
  private stopping = false;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private lastSha: string | undefined;
  private snapshot: Snapshot | undefined;
  gitUnreachableSince: string | undefined;
  gitError: string | undefined;

  constructor(
    private readonly deps: EngineDeps,
    private readonly apps: AppSpec[],
    private readonly options: LoopOptions,
  ) {
    for (const app of topoOrder(apps)) {
      this.states.set(app.name, {
        name: app.name,
        suspended: app.suspend,
        status: app.suspend ? "Suspended" : "Pending",
        failures: 0,
      });
      this.due.set(app.name, 0);
    }
  }

  /** Starts the loop; resolves when it has stopped. */
  start(): Promise<void> {
    this.running ??= this.run();
    return this.running;
  }

  /** Asks for an immediate attempt of one app (or all). */
  trigger(app?: string): void {
    for (const name of app ? [app] : this.states.keys()) this.due.set(name, 0);
    this.wake?.();
  }

  /** Stops after the current step: an attempt in flight is recorded, then the loop exits. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.wake?.();
    await this.running;
  }

  /** A copy of every app's state. */
  status(): AppState[] {
    return [...this.states.values()].map((s) => ({ ...s }));
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      await this.tick();
      if (this.stopping) break;
      const next = Math.min(...[...this.due.values()], Date.now() + this.options.interval);
      await this.sleep(Math.max(0, next - Date.now()));
    }
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    const dueApps = topoOrder(this.apps).filter((a) => !a.suspend && (this.due.get(a.name) ?? 0) <= now);
    if (dueApps.length === 0) return;
    // One ref request tells whether anything changed; a snapshot is fetched only for a new commit.
    try {
      const sha = await this.deps.source.resolve();
      if (sha !== this.lastSha || !this.snapshot) {
        this.snapshot = await this.deps.source.snapshot(sha);
        this.lastSha = sha;
        for (const a of this.apps) this.due.set(a.name, 0);
      }
      if (this.gitUnreachableSince)
        this.deps.log.log("info", "Git is reachable again", { since: this.gitUnreachableSince });
      this.gitUnreachableSince = undefined;
      this.gitError = undefined;
    } catch (err) {
      this.gitError = messageOf(err);
      if (!this.gitUnreachableSince) {
        this.gitUnreachableSince = new Date().toISOString();
        this.deps.log.log("warn", "Git unreachable; the last good commit stays applied", {
          error: this.gitError,
        });
      }
      if (!this.snapshot) {
        for (const a of dueApps) this.due.set(a.name, Date.now() + this.backoff(a.name));
        return;
      }
    }
    const snapshot = this.snapshot;
    for (const app of topoOrder(this.apps)) {
      if (this.stopping) return;
      if (app.suspend || (this.due.get(app.name) ?? 0) > Date.now()) continue;
      const state = this.states.get(app.name) as AppState;
      const blocker = app.dependsOn.find((d) => !this.healthyAt(d, snapshot.revision));
      if (blocker) {
        state.status = "WaitingOnDependency";
        this.due.set(app.name, Date.now() + Math.min(2000, this.options.interval));
        continue;
      }
      state.lastAttemptAt = new Date().toISOString();
      const result = await reconcile(this.deps, {
        app,
        trigger: "loop",
        snapshot,
        signal: this.abort.signal,
      });
      state.lastResult = result;
      if (result.outcome === "Succeeded") {
        state.failures = 0;
        state.status = "Synced";
        this.due.set(app.name, Date.now() + this.intervalOf(app.name));
      } else {
        state.failures++;
        state.status = "Failed";
        this.due.set(app.name, Date.now() + this.backoff(app.name));
      }
      state.nextAttemptAt = new Date(this.due.get(app.name) ?? Date.now()).toISOString();
    }
  }

  private healthyAt(app: string, revision: string): boolean {
    const r = this.states.get(app)?.lastResult;
    return r?.outcome === "Succeeded" && r.revision === revision;
  }

  private intervalOf(app: string): number {
    return this.options.appIntervals?.[app] ?? this.options.interval;
  }

  /** Exponential backoff with ±20% jitter, capped at the app's interval. */
  private backoff(app: string): number {
    const failures = Math.max(1, this.states.get(app)?.failures ?? 1);
    const base = (this.options.backoffBase ?? 2000) * 2 ** (failures - 1);
    const capped = Math.min(base, this.intervalOf(app));
    return Math.round(capped * (0.8 + Math.random() * 0.4));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

/** Apps ordered so that every app comes after what it depends on (config validation rejects cycles). */
export function topoOrder(apps: readonly AppSpec[]): AppSpec[] {
  const byName = new Map(apps.map((a) => [a.name, a]));
  const out: AppSpec[] = [];
  const seen = new Set<string>();
  const visit = (a: AppSpec) => {
    if (seen.has(a.name)) return;
    seen.add(a.name);
    for (const d of a.dependsOn) {
      const dep = byName.get(d);
      if (dep) visit(dep);
    }
    out.push(a);
  };
  for (const a of apps) visit(a);
  return out;
}
