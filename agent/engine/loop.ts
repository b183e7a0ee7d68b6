/**
 * The continuous loop behind `berth run`: polls Git (one ref request when
 * nothing changed), re-plans every app each interval so drift is corrected,
 * respects dependsOn, backs off with jitter on failure, runs one attempt at a
 * time (single-flight), and stops gracefully.
 */
import { messageOf } from "../object/errors.ts";
import type { Snapshot } from "../object/snapshot.ts";
import type { AppSpec, EngineDeps, PinState } from "./ports.ts";
import { type ReconcileResult, reconcile } from "./reconcile.ts";
import { replayPinned } from "./replay.ts";

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
  /** Set while an operator holds the app at a ledger entry (`berth pin`); Git changes wait as pending. */
  pinned?: PinState;
}

/** What a trigger led to: the ledger entry of the attempt it started, or why none started. */
export type TriggerOutcome =
  | { started: true; entry: number; revision: string }
  | {
      started: false;
      reason: "Suspended" | "WaitingOnDependency" | "FetchFailed" | "Stopped" | "Standby";
      message: string;
    };

export interface LoopOptions {
  /** Poll and resync interval, ms. */
  interval: number;
  /** First retry delay after a failure, ms (doubles up to the interval). */
  backoffBase?: number;
  /** Per-app intervals override the source interval. */
  appIntervals?: Record<string, number>;
  /**
   * Apps re-applied only on a new commit or a trigger, never on the interval: their drift is judged by the
   * drift watcher's policy (alert, or rules), which a periodic re-apply would silently overrule.
   */
  commitOnly?: ReadonlySet<string>;
  /** False while another instance holds the HA Lease: this one stands by and applies nothing. */
  mayApply?: () => boolean;
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
  /** Completed passes over the apps; 0 until the first attempt (readiness). */
  ticks = 0;
  /** Callers of triggerAndWait, per app, resolved when the next attempt starts (or cannot). */
  private readonly waiters = new Map<string, Array<(o: TriggerOutcome) => void>>();

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

  /** Triggers one app now; resolves with the ledger entry of the attempt once it starts, or why it did not. */
  triggerAndWait(app: string): Promise<TriggerOutcome> {
    const state = this.states.get(app);
    if (!state) return Promise.resolve({ started: false, reason: "Stopped", message: `no app ${app}` });
    if (state.suspended)
      return Promise.resolve({ started: false, reason: "Suspended", message: `${app} is suspended` });
    if (this.stopping) return Promise.resolve({ started: false, reason: "Stopped", message: "stopping" });
    return new Promise((resolve) => {
      this.waiters.set(app, [...(this.waiters.get(app) ?? []), resolve]);
      this.trigger(app);
    });
  }

  /** Suspends an app at run time (until resume() or a restart; the config's `suspend` is the lasting switch). */
  suspend(app: string): boolean {
    const state = this.states.get(app);
    if (!state) return false;
    state.suspended = true;
    state.status = "Suspended";
    delete state.nextAttemptAt;
    this.settle(app, { started: false, reason: "Suspended", message: `${app} is suspended` });
    return true;
  }

  /** Resumes a suspended app and schedules an attempt now. */
  resume(app: string): boolean {
    const state = this.states.get(app);
    if (!state) return false;
    if (state.suspended) {
      state.suspended = false;
      state.status = "Pending";
    }
    this.trigger(app);
    return true;
  }

  /** The revision last seen in Git (undefined before the first successful fetch). */
  get seenRevision(): string | undefined {
    return this.snapshot?.revision;
  }

  private settle(app: string, outcome: TriggerOutcome): void {
    const waiting = this.waiters.get(app);
    this.waiters.delete(app);
    for (const resolve of waiting ?? []) resolve(outcome);
  }

  /** Stops after the current step: an attempt in flight is recorded, then the loop exits. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    this.wake?.();
    await this.running;
    for (const app of [...this.waiters.keys()])
      this.settle(app, { started: false, reason: "Stopped", message: "the agent is stopping" });
  }

  /** A copy of every app's state. */
  status(): AppState[] {
    return [...this.states.values()].map((s) => {
      // Read live: `berth pin`/`unpin` may change the ledger from another process between attempts.
      const { pinned: _stale, ...state } = s;
      const pin = this.deps.ledger.pinOf?.(s.name);
      return pin ? { ...state, pinned: pin } : state;
    });
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      await this.tick();
      this.ticks++;
      if (this.stopping) break;
      const next = Math.min(...[...this.due.values()], Date.now() + this.options.interval);
      await this.sleep(Math.max(0, next - Date.now()));
    }
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    const dueApps = topoOrder(this.apps).filter(
      (a) => !this.states.get(a.name)?.suspended && (this.due.get(a.name) ?? 0) <= now,
    );
    if (dueApps.length === 0) return;
    if (this.options.mayApply && !this.options.mayApply()) {
      // A standby checks again each second; becoming leader calls trigger() to start at once.
      for (const a of dueApps) {
        (this.states.get(a.name) as AppState).status = "Standby";
        this.due.set(a.name, now + Math.min(1000, this.options.interval));
        this.settle(a.name, {
          started: false,
          reason: "Standby",
          message: "this instance is a standby: the HA Lease holder applies",
        });
      }
      return;
    }
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
        for (const a of dueApps) {
          this.due.set(a.name, Date.now() + this.backoff(a.name));
          this.settle(a.name, { started: false, reason: "FetchFailed", message: this.gitError });
        }
        return;
      }
    }
    const snapshot = this.snapshot;
    for (const app of topoOrder(this.apps)) {
      if (this.stopping) return;
      const state = this.states.get(app.name) as AppState;
      if (state.suspended || (this.due.get(app.name) ?? 0) > Date.now()) continue;
      const blocker = app.dependsOn.find((d) => !this.healthyAt(d, snapshot.revision));
      if (blocker) {
        state.status = "WaitingOnDependency";
        this.due.set(app.name, Date.now() + Math.min(2000, this.options.interval));
        this.settle(app.name, {
          started: false,
          reason: "WaitingOnDependency",
          message: `${app.name} waits for ${blocker} to be healthy at ${snapshot.revision}`,
        });
        continue;
      }
      state.lastAttemptAt = new Date().toISOString();
      // Callers waiting now learn the entry of this attempt; later triggers wait for the next one.
      const waiting = this.waiters.get(app.name) ?? [];
      this.waiters.delete(app.name);
      const emit = this.deps.emit;
      const deps: EngineDeps = {
        ...this.deps,
        emit: (e) => {
          emit?.(e);
          if (e.type === "started" && e.app === app.name)
            for (const resolve of waiting.splice(0))
              resolve({ started: true, entry: e.entry, revision: e.revision });
        },
      };
      // A pinned app replays its pinned entry instead of Git; the revision it skips is recorded as pending.
      const pin = this.deps.ledger.pinOf?.(app.name);
      const replayed = pin
        ? await replayPinned(deps, app, pin, snapshot.revision, this.abort.signal)
        : undefined;
      const result =
        replayed ??
        (await reconcile(deps, {
          app,
          trigger: "loop",
          snapshot,
          signal: this.abort.signal,
        }));
      state.lastResult = result;
      if (result.outcome === "Succeeded") {
        state.failures = 0;
        state.status = "Synced";
        const resync = this.options.commitOnly?.has(app.name)
          ? Number.POSITIVE_INFINITY
          : this.intervalOf(app.name);
        this.due.set(app.name, Date.now() + resync);
      } else {
        state.failures++;
        state.status = "Failed";
        this.due.set(app.name, Date.now() + this.backoff(app.name));
      }
      for (const resolve of waiting.splice(0))
        resolve({ started: true, entry: result.entry, revision: result.revision });
      // A trigger that arrived during this attempt gets an attempt of its own.
      if (this.waiters.has(app.name)) this.due.set(app.name, 0);
      const due = this.due.get(app.name) ?? Date.now();
      // A commit-only app has no scheduled attempt until the next commit or trigger.
      if (Number.isFinite(due)) state.nextAttemptAt = new Date(due).toISOString();
      else delete state.nextAttemptAt;
    }
  }

  private healthyAt(app: string, revision: string): boolean {
    const r = this.states.get(app)?.lastResult;
    // A pinned dependency is healthy at the revision it is held at, not Git's.
    const pinned = this.deps.ledger.pinOf?.(app) !== undefined;
    return r?.outcome === "Succeeded" && (r.revision === revision || pinned);
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
