/**
 * The continuous loop behind `berth run`: polls Git (one ref request when
 * nothing changed), re-plans every app each interval so drift is corrected,
 * respects dependsOn, backs off with jitter on failure, runs independent apps
 * in parallel but one attempt per app at a time (single-flight), and stops
 * gracefully. `syncPass` is the same for one pass (`berth sync`).
 */

import { dependencyOrder } from "../object/dependency-order.ts";
import { messageOf } from "../object/errors.ts";
import { capMessage } from "../object/message.ts";
import type { Snapshot } from "../object/snapshot.ts";
import { Bus } from "./events.ts";
import {
  type AppSpec,
  DEFAULT_SOURCE_NAME,
  type EngineDeps,
  type PinState,
  type SourcePort,
} from "./ports.ts";
import { type ReconcileResult, reconcile } from "./reconcile.ts";
import { replayPinned } from "./replay.ts";

/** What the loop knows about one app, for `status` and the API. */
export interface AppState {
  name: string;
  suspended: boolean;
  /** Synced, Failed, Suspended, WaitingOnDependency, Pending */
  status: string;
  /**
   * How the last attempt ended. Without its plan and per-object health: they hold every desired and live
   * object of the app (a second copy of the watch view's once those change), and the ledger keeps both.
   */
  lastResult?: Omit<ReconcileResult, "plan" | "health">;
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
      reason:
        | "Suspended"
        | "WaitingOnDependency"
        | "FetchFailed"
        | "Stopped"
        | "Standby"
        | "LedgerUnavailable";
      message: string;
    };

export interface LoopOptions {
  /** Poll and resync interval, ms (of every source without its own in `sourceIntervals`). */
  interval: number;
  /** Each named source's poll interval, ms. */
  sourceIntervals?: Record<string, number>;
  /**
   * The generated apps (berth.yaml `generate:`) over the sources' current snapshots; called after a source
   * brings a new revision. Throws (a ConfigError naming generator, directory and field) to keep the last set.
   */
  expand?: (snapshotOf: (source: string) => Snapshot | undefined) => Promise<AppSpec[]>;
  /** First retry delay after a failure, ms (doubles up to the interval). */
  backoffBase?: number;
  /** Per-app intervals override the source interval. */
  appIntervals?: Record<string, number>;
  /**
   * Apps re-applied only on a new commit or a trigger, never on the interval: their drift is judged by the
   * drift watcher's policy (alert, or rules), which a periodic re-apply would silently overrule.
   */
  commitOnly?: { has(app: string): boolean };
  /** False while another instance holds the HA Lease: this one stands by and applies nothing. */
  mayApply?: () => boolean;
  /** Attempts of different apps at once (default 4); one app never has two at once. */
  concurrency?: number;
}

/** What the loop knows about one source: its port, when it was last asked, the newest snapshot it gave. */
interface SourceState {
  name: string;
  port: SourcePort;
  interval: number;
  /** When the last poll started (ms). */
  lastPoll: number;
  /** The poll in flight: a source is asked once at a time, in the background, so a slow one holds back no other. */
  polling?: Promise<void> | undefined;
  lastSha?: string;
  snapshot?: Snapshot;
  unreachableSince?: string | undefined;
  error?: string | undefined;
}

/** One source as status and the API show it. */
export interface SourceView {
  name: string;
  seenRevision: string | undefined;
  gitUnreachableSince: string | undefined;
  gitError: string | undefined;
}

/** Why a standby starts nothing. */
const STANDBY_MESSAGE = "this instance is a standby: the HA Lease holder applies";

/** Attempts of different apps at once unless the config says otherwise. */
export const DEFAULT_CONCURRENCY = 4;

/**
 * Runs reconcile for every app, forever, until stop(). Independent apps run in parallel (up to
 * `concurrency`), so one app's health wait or slow API never holds back another app's fetch, plan or apply;
 * an app starts only when its dependencies are healthy at the same revision and not mid-attempt.
 */
export class SyncLoop {
  private readonly states = new Map<string, AppState>();
  private readonly due = new Map<string, number>();
  private order: AppSpec[];
  private readonly apps: AppSpec[];
  private readonly sources = new Map<string, SourceState>();
  /** Names of the apps the generators made last (gone ones included until they are pruned). */
  private generated = new Set<string>();
  /**
   * Generated apps the ledger remembers from before a restart, until the first expansion says which are still
   * there: one whose directory went while the agent was down is known only from here, and must still be pruned.
   */
  private remembered: AppSpec[];
  /** The generated apps as last written to the ledger. */
  private rememberedText: string | undefined;
  /** When each app was last asked for (trigger), so a poll begun before that does not serve it. */
  private readonly askedAt = new Map<string, number>();
  /** Generator expansions run one at a time (two sources may bring revisions at once). */
  private generating: Promise<void> = Promise.resolve();
  /** Why the last expansion of the generators failed (the last good set stays). */
  generateError: string | undefined;
  private readonly concurrency: number;
  /** Attempts in flight, by app: one per app at most (single-flight), `concurrency` in all. */
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Apps asked for another attempt (a trigger, a new commit) while one was in flight. */
  private readonly again = new Set<string>();
  /** Who asked for an app's next attempt (the entry's trigger); absent: the loop itself. */
  private readonly requestedBy = new Map<string, string>();
  /** Apps whose first attempt has ended or been held back, for readiness. */
  private readonly settled = new Set<string>();
  private passes = 0;
  /** Wakes the loop's sleep: a trigger, an attempt or a poll ending (stop() aborts it instead). */
  private readonly wakeups = new Bus<void>();
  private stopping = false;
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  /** Why the ledger cannot record (disk full, I/O error); no app syncs until it can. */
  ledgerError: string | undefined;
  /** Callers of triggerAndWait, per app, resolved when the next attempt starts (or cannot). */
  private readonly waiters = new Map<string, Array<(o: TriggerOutcome) => void>>();

  constructor(
    private readonly deps: EngineDeps,
    apps: AppSpec[],
    private readonly options: LoopOptions,
  ) {
    this.apps = [...apps];
    this.order = dependencyOrder(this.apps);
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? DEFAULT_CONCURRENCY));
    for (const app of this.order) this.addState(app);
    this.remembered = options.expand ? rememberedApps(deps.ledger, this.apps) : [];
    const ports = deps.sources ?? new Map([[DEFAULT_SOURCE_NAME, deps.source]]);
    for (const [name, port] of ports)
      this.sources.set(name, {
        name,
        port,
        interval: options.sourceIntervals?.[name] ?? options.interval,
        lastPoll: Number.NEGATIVE_INFINITY,
      });
  }

  private addState(app: AppSpec): void {
    this.states.set(app.name, {
      name: app.name,
      suspended: app.suspend,
      status: app.suspend ? "Suspended" : "Pending",
      failures: 0,
    });
    this.due.set(app.name, 0);
  }

  /** The apps the loop runs now: the configured ones and the generated ones (removed directories until pruned). */
  appSpecs(): AppSpec[] {
    return [...this.apps];
  }

  /** The names of the apps reading `source`. */
  appsOf(source: string): string[] {
    return this.apps.filter((a) => srcOf(a) === source).map((a) => a.name);
  }

  /** The source an app reads, as status shows it (the app's own newest revision, reachability). */
  sourceView(name: string): SourceView | undefined {
    const s = this.sources.get(name);
    if (!s) return undefined;
    return {
      name,
      seenRevision: s.snapshot?.revision,
      gitUnreachableSince: s.unreachableSince,
      gitError: s.error,
    };
  }

  /** The source of one app by app name. */
  sourceOfApp(app: string): string | undefined {
    const spec = this.apps.find((a) => a.name === app);
    return spec ? srcOf(spec) : undefined;
  }

  /** The `default` source (or else the first): what a single-source view shows. */
  private get primary(): SourceState | undefined {
    return this.sources.get(DEFAULT_SOURCE_NAME) ?? this.sources.values().next().value;
  }

  /** Since when the default source is unreachable (undefined while it answers). */
  get gitUnreachableSince(): string | undefined {
    return this.primary?.unreachableSince;
  }

  /** Why the default source could not be fetched last time. */
  get gitError(): string | undefined {
    return this.primary?.error;
  }

  /** Passes over the apps so far; 0 until every app's first attempt has ended or been held (readiness). */
  get ticks(): number {
    const first = [...this.states.values()].every((s) => s.suspended || this.settled.has(s.name));
    return first ? Math.max(1, this.passes) : 0;
  }

  /** Starts the loop; resolves when it has stopped. */
  start(): Promise<void> {
    this.running ??= this.run();
    return this.running;
  }

  /**
   * Asks for an immediate attempt of one app (or all); `by` names who asked (`api:<token>`, `webhook:github`)
   * and is recorded as that attempt's trigger. An app mid-attempt gets one more attempt after it.
   */
  trigger(app?: string, by?: string): void {
    for (const name of app ? [app] : this.states.keys()) {
      if (!this.states.has(name)) continue;
      this.due.set(name, 0);
      this.askedAt.set(name, Date.now());
      if (this.inFlight.has(name)) this.again.add(name);
      // The first unanswered request names the attempt; more requests before it starts share it.
      if (by && !this.requestedBy.has(name)) this.requestedBy.set(name, by);
    }
    this.wakeups.emit();
  }

  /** Triggers one app now; resolves with the ledger entry of the attempt once it starts, or why it did not. */
  triggerAndWait(app: string, by?: string): Promise<TriggerOutcome> {
    const refused = this.refusal(app);
    if (refused) return Promise.resolve(refused);
    return new Promise((resolve) => {
      this.waiters.set(app, [...(this.waiters.get(app) ?? []), resolve]);
      this.trigger(app, by);
    });
  }

  /**
   * Why a trigger of `app` would start no attempt, as far as is known now (unknown app, suspended, stopping, a
   * standby); undefined: it would be queued. For callers that answer at once instead of waiting (the API).
   */
  refusal(app: string): Extract<TriggerOutcome, { started: false }> | undefined {
    const state = this.states.get(app);
    if (!state) return { started: false, reason: "Stopped", message: `no app ${app}` };
    if (state.suspended) return { started: false, reason: "Suspended", message: `${app} is suspended` };
    if (this.stopping) return { started: false, reason: "Stopped", message: "stopping" };
    if (this.options.mayApply && !this.options.mayApply())
      return { started: false, reason: "Standby", message: STANDBY_MESSAGE };
    return undefined;
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
  resume(app: string, by?: string): boolean {
    const state = this.states.get(app);
    if (!state) return false;
    if (state.suspended) {
      state.suspended = false;
      state.status = "Pending";
    }
    this.trigger(app, by);
    return true;
  }

  /** The revision last seen in the default source (undefined before the first successful fetch). */
  get seenRevision(): string | undefined {
    return this.primary?.snapshot?.revision;
  }

  /** Tells an app's waiting callers that no attempt starts for them; their request lapses. */
  private settle(app: string, outcome: TriggerOutcome): void {
    const waiting = this.waiters.get(app);
    this.waiters.delete(app);
    this.requestedBy.delete(app);
    for (const resolve of waiting ?? []) resolve(outcome);
  }

  /** Stops after the current step: every attempt in flight is recorded, then the loop exits. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    await this.running;
    for (const app of [...this.waiters.keys()])
      this.settle(app, { started: false, reason: "Stopped", message: "the agent is stopping" });
  }

  /** A copy of every app's state, or only of app `only` (one pin read, not one per app). */
  status(only?: string): AppState[] {
    const states = only === undefined ? [...this.states.values()] : [this.states.get(only)];
    // Read live: `berth pin`/`unpin` may change the ledger from another process between attempts. Every
    // app's in one read when the ledger can (the API's list and /metrics ask for all apps, often).
    const ledger = this.deps.ledger;
    const all = only === undefined ? ledger.pinsByApp?.() : undefined;
    const pinOf = (app: string) => (all ? all.get(app) : ledger.pinOf?.(app));
    return states.flatMap((s) => {
      if (!s) return [];
      const { pinned: _stale, ...state } = s;
      const pin = pinOf(s.name);
      return [pin ? { ...state, pinned: pin } : state];
    });
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      await this.pass();
      this.passes++;
      if (this.stopping) break;
      await this.sleep(Math.max(0, this.nextWake() - Date.now()));
    }
    // Attempts in flight see the abort (a health wait ends as Interrupted) and record their entry first.
    const polls = () => [...this.sources.values()].flatMap((s) => (s.polling ? [s.polling] : []));
    while (this.inFlight.size > 0 || polls().length > 0)
      await Promise.all([...this.inFlight.values(), ...polls()]);
  }

  /** When the next pass is needed; an attempt or a poll ending, a trigger or stop() wakes the loop sooner. */
  private nextWake(): number {
    let next = Date.now() + 2 ** 30;
    for (const s of this.sources.values()) if (!s.polling) next = Math.min(next, s.lastPoll + s.interval);
    if (this.inFlight.size >= this.concurrency) return next;
    for (const app of this.order) {
      if (this.inFlight.has(app.name) || this.states.get(app.name)?.suspended) continue;
      // An app whose source is being asked starts when the answer comes (the poll wakes the loop).
      if (this.sources.get(srcOf(app))?.polling) continue;
      next = Math.min(next, this.due.get(app.name) ?? next);
    }
    return next;
  }

  private isDue(app: string, now: number): boolean {
    return !this.states.get(app)?.suspended && !this.inFlight.has(app) && (this.due.get(app) ?? 0) <= now;
  }

  /**
   * One pass: ask each source that is due (its interval passed) or has an app due, in the background; the
   * answer starts that source's due apps whose dependencies allow it. Sources never wait for each other.
   */
  private async pass(): Promise<void> {
    const now = Date.now();
    const dueApps = this.order.filter((a) => this.isDue(a.name, now));
    // Git is polled every source interval even when no app is due (app intervals are longer, commit-only
    // apps, every app mid-attempt): a new commit must not wait for some app's resync.
    const pollDue = [...this.sources.values()].some((s) => !s.polling && now >= s.lastPoll + s.interval);
    if (dueApps.length === 0 && !pollDue) return;
    if (this.options.mayApply && !this.options.mayApply()) {
      // A standby checks again each second; becoming leader calls trigger() to start at once.
      for (const a of dueApps) {
        (this.states.get(a.name) as AppState).status = "Standby";
        this.due.set(a.name, now + Math.min(1000, this.options.interval));
        this.settled.add(a.name);
        this.settle(a.name, {
          started: false,
          reason: "Standby",
          message: STANDBY_MESSAGE,
        });
      }
      return;
    }
    // The ledger first: a sync it cannot record must not start (and a full disk is the ledger's, not Git's).
    try {
      // A write in the last 30 s proves the file writable; free space is checked every pass. The apply step
      // checks again with a real write before anything is applied.
      this.deps.ledger.preflight?.({ writeCheckAgeMs: 30_000 });
      if (this.ledgerError)
        this.deps.log.log("info", "the ledger can record again", { was: this.ledgerError });
      this.ledgerError = undefined;
    } catch (err) {
      const message = messageOf(err);
      if (message !== this.ledgerError)
        this.deps.log.log("error", "the ledger cannot record; no app syncs until it can", { error: message });
      this.ledgerError = message;
      for (const a of dueApps) {
        this.due.set(a.name, Date.now() + this.backoff(a.name));
        this.settle(a.name, { started: false, reason: "LedgerUnavailable", message });
      }
      return;
    }
    // A due app asks its source first (a webhook's push must be fetched), unless no attempt could start now.
    const room = this.inFlight.size < this.concurrency;
    for (const s of this.sources.values()) {
      if (s.polling) continue;
      if (now >= s.lastPoll + s.interval || (room && dueApps.some((a) => srcOf(a) === s.name))) this.poll(s);
    }
  }

  /**
   * Asks one source for its ref (one request when nothing changed; a snapshot only for a new commit), then
   * starts its due apps. Attempts in flight keep their snapshot: the object cache only grows.
   */
  private poll(s: SourceState): void {
    const started = Date.now();
    s.lastPoll = started;
    const fields = this.sources.size > 1 ? { source: s.name } : {};
    s.polling = (async () => {
      try {
        const sha = await s.port.resolve();
        if (sha !== s.lastSha || !s.snapshot) {
          s.snapshot = await s.port.snapshot(sha);
          s.lastSha = sha;
          for (const a of this.apps) {
            if (srcOf(a) !== s.name) continue;
            this.due.set(a.name, 0);
            if (this.inFlight.has(a.name)) this.again.add(a.name);
          }
          if (this.options.expand) await this.regenerate();
        }
        if (s.unreachableSince)
          this.deps.log.log("info", "source reachable again", { ...fields, since: s.unreachableSince });
        s.unreachableSince = undefined;
        s.error = undefined;
      } catch (err) {
        s.error = capMessage(messageOf(err));
        if (!s.unreachableSince) {
          s.unreachableSince = new Date().toISOString();
          // A source is a Git repository or an OCI artifact: the words fit both.
          this.deps.log.log("warn", "source unreachable; the last good revision stays applied", {
            ...fields,
            error: s.error,
          });
        }
        if (!s.snapshot) {
          const now = Date.now();
          for (const a of this.order) {
            if (srcOf(a) !== s.name || !this.isDue(a.name, now)) continue;
            this.due.set(a.name, Date.now() + this.backoff(a.name));
            this.settled.add(a.name);
            this.settle(a.name, { started: false, reason: "FetchFailed", message: s.error });
          }
          return;
        }
      }
      this.launchDue(s, started);
    })().finally(() => {
      s.polling = undefined;
      this.wakeups.emit();
    });
  }

  /** Starts every due app of a source whose dependencies allow it, with the source's newest snapshot. */
  private launchDue(s: SourceState, polledAt: number): void {
    const snapshot = s.snapshot;
    if (!snapshot) return;
    for (const app of this.order) {
      if (this.stopping) return;
      if (srcOf(app) !== s.name || !this.isDue(app.name, Date.now())) continue;
      // Asked for after this poll began (a webhook for a newer push): the next poll serves it.
      if ((this.askedAt.get(app.name) ?? 0) > polledAt) continue;
      const state = this.states.get(app.name) as AppState;
      const blocker = app.dependsOn.find((d) => this.inFlight.has(d) || !this.healthyAt(d));
      if (blocker) {
        const at = this.revisionOf(blocker) ?? snapshot.revision;
        state.status = "WaitingOnDependency";
        // The dependency's attempt ending makes this app due again; the timer covers pins changed elsewhere.
        this.due.set(app.name, Date.now() + Math.min(2000, this.options.interval));
        // A dependency that is about to run (mid-attempt, or due) may yet become healthy: callers keep waiting.
        const coming = this.inFlight.has(blocker) || this.isDue(blocker, Date.now());
        if (!coming) {
          this.settled.add(app.name);
          this.settle(app.name, {
            started: false,
            reason: "WaitingOnDependency",
            message: `${app.name} waits for ${blocker} to be healthy at ${at}`,
          });
        }
        continue;
      }
      if (this.inFlight.size >= this.concurrency) continue;
      this.launch(app, snapshot);
    }
  }

  /** Expands the generators over the current snapshots and adds, updates or retires generated apps. */
  private regenerate(): Promise<void> {
    const expand = this.options.expand;
    if (!expand) return Promise.resolve();
    this.generating = this.generating.then(async () => {
      let apps: AppSpec[];
      try {
        apps = await expand((name) => this.sources.get(name)?.snapshot);
      } catch (err) {
        const message = messageOf(err);
        if (message !== this.generateError)
          this.deps.log.log("error", "generate: cannot expand; the generated apps stay as they were", {
            error: message,
          });
        this.generateError = message;
        return;
      }
      this.generateError = undefined;
      const now = new Set(apps.map((a) => a.name));
      for (const spec of this.remembered.splice(0)) {
        if (now.has(spec.name) || this.apps.some((a) => a.name === spec.name)) continue;
        this.apps.push(spec);
        this.addState(spec);
        this.generated.add(spec.name);
      }
      for (const app of apps) {
        const i = this.apps.findIndex((a) => a.name === app.name);
        if (i < 0) {
          this.apps.push(app);
          this.addState(app);
          this.deps.log.log("info", "generate: a new app", { app: app.name, source: srcOf(app) });
        } else {
          const before = this.apps[i] as AppSpec;
          this.apps[i] = app;
          if (JSON.stringify(before) !== JSON.stringify(app)) this.due.set(app.name, 0);
        }
      }
      for (const name of this.generated) {
        if (now.has(name)) continue;
        const i = this.apps.findIndex((a) => a.name === name);
        const spec = this.apps[i];
        if (!spec) continue;
        // Only a source that answered can say a directory is gone.
        if (!this.sources.get(srcOf(spec))?.snapshot) {
          now.add(name);
          continue;
        }
        if (this.deps.ledger.inventory(name).length === 0) {
          this.retire(name);
          continue;
        }
        now.add(name);
        if (!spec.gone) {
          this.apps[i] = { ...spec, gone: true };
          this.due.set(name, 0);
          this.deps.log.log("warn", "generate: the app's directory is gone; pruning what it owns", {
            app: name,
          });
        }
      }
      this.generated = now;
      this.order = dependencyOrder(this.apps);
      this.rememberGenerated();
    });
    return this.generating;
  }

  /** Drops an app the loop no longer runs (a generated app whose directory is gone and which owns nothing). */
  private retire(name: string): void {
    const i = this.apps.findIndex((a) => a.name === name);
    if (i >= 0) this.apps.splice(i, 1);
    this.generated.delete(name);
    this.states.delete(name);
    this.due.delete(name);
    this.askedAt.delete(name);
    this.order = dependencyOrder(this.apps);
    this.settle(name, { started: false, reason: "Stopped", message: `${name}: its directory is gone` });
    this.deps.log.log("info", "generate: retired an app whose directory is gone", { app: name });
    this.rememberGenerated();
  }

  /** Keeps the generated apps in the ledger, so a restart still prunes one whose directory went meanwhile. */
  private rememberGenerated(): void {
    if (!this.deps.ledger.setState) return;
    // What a prune of a gone app needs (identity, namespace, guards), not what only rendering reads (values).
    const specs = this.apps.filter((a) => this.generated.has(a.name)).map(prunableSpec);
    const text = JSON.stringify(specs);
    if (text === this.rememberedText) return;
    try {
      this.deps.ledger.setState(GENERATED_STATE, text);
      this.rememberedText = text;
    } catch (err) {
      this.deps.log.log("warn", "generate: cannot remember the generated apps in the ledger", {
        error: messageOf(err),
      });
    }
  }

  /** Starts one attempt in the background; the loop is woken when it ends. */
  private launch(app: AppSpec, snapshot: Snapshot): void {
    const state = this.states.get(app.name) as AppState;
    state.lastAttemptAt = new Date().toISOString();
    this.again.delete(app.name);
    const trigger = this.requestedBy.get(app.name) ?? "loop";
    this.requestedBy.delete(app.name);
    // Callers waiting now learn the entry of this attempt; later triggers wait for the next one.
    const waiting = this.waiters.get(app.name) ?? [];
    this.waiters.delete(app.name);
    const attempt = this.attempt(app, snapshot, trigger, waiting).finally(() => {
      this.inFlight.delete(app.name);
      this.wakeups.emit();
    });
    this.inFlight.set(app.name, attempt);
  }

  private async attempt(
    app: AppSpec,
    snapshot: Snapshot,
    trigger: string,
    waiting: Array<(o: TriggerOutcome) => void>,
  ): Promise<void> {
    const state = this.states.get(app.name) as AppState;
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
    let result: ReconcileResult | undefined;
    try {
      // A pinned app replays its pinned entry instead of Git; the revision it skips is recorded as pending.
      const pin = this.deps.ledger.pinOf?.(app.name);
      const replayed = pin
        ? await replayPinned(deps, app, pin, snapshot.revision, this.abort.signal)
        : undefined;
      result =
        replayed ??
        (await reconcile(deps, {
          app,
          trigger,
          snapshot,
          signal: this.abort.signal,
          // Whoever waits holds this attempt's entry id: it must stay an entry, not fold into the last one.
          ...(waiting.length > 0 ? { requested: true } : {}),
        }));
    } catch (err) {
      // reconcile records every failure itself; this is a bug or a broken ledger, and must not end the loop.
      this.deps.log.log("error", "sync attempt failed before it could be recorded", {
        app: app.name,
        error: messageOf(err),
      });
    }
    this.settled.add(app.name);
    if (result) {
      const { plan: _plan, health: _health, ...ended } = result;
      state.lastResult = ended;
    }
    // A generated app whose directory is gone leaves once it owns nothing any more.
    const spec = this.apps.find((a) => a.name === app.name);
    if (spec?.gone && result?.outcome === "Succeeded" && this.deps.ledger.inventory(app.name).length === 0) {
      for (const resolve of waiting.splice(0))
        resolve({ started: true, entry: result.entry, revision: result.revision });
      this.retire(app.name);
      return;
    }
    if (result?.outcome === "Succeeded") {
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
      resolve(
        result
          ? { started: true, entry: result.entry, revision: result.revision }
          : { started: false, reason: "Stopped", message: `${app.name}: the attempt failed unrecorded` },
      );
    // A trigger or a new commit that arrived during this attempt gets an attempt of its own.
    if (this.again.has(app.name) || this.waiters.has(app.name)) this.due.set(app.name, 0);
    // Dependants held back by this attempt may start now rather than at their next check.
    for (const other of this.order)
      if (other.dependsOn.includes(app.name) && this.states.get(other.name)?.status === "WaitingOnDependency")
        this.due.set(other.name, 0);
    const due = this.due.get(app.name) ?? Date.now();
    // A commit-only app has no scheduled attempt until the next commit or trigger.
    if (Number.isFinite(due)) state.nextAttemptAt = new Date(due).toISOString();
    else delete state.nextAttemptAt;
  }

  /** The revision an app's source is at now. */
  private revisionOf(app: string): string | undefined {
    const spec = this.apps.find((a) => a.name === app);
    return spec ? this.sources.get(srcOf(spec))?.snapshot?.revision : undefined;
  }

  /** Whether an app's last attempt succeeded at its own source's newest revision (sources differ by app). */
  private healthyAt(app: string): boolean {
    const r = this.states.get(app)?.lastResult;
    // A pinned dependency is healthy at the revision it is held at, not Git's.
    const pinned = this.deps.ledger.pinOf?.(app) !== undefined;
    return r?.outcome === "Succeeded" && (r.revision === this.revisionOf(app) || pinned);
  }

  /** The app's own interval, else (a generated app) its spec's, else its source's. */
  private intervalOf(app: string): number {
    const own = this.options.appIntervals?.[app];
    if (own !== undefined) return own;
    const spec = this.apps.find((a) => a.name === app) as (AppSpec & { interval?: number }) | undefined;
    return spec?.interval ?? this.sources.get(spec ? srcOf(spec) : "")?.interval ?? this.options.interval;
  }

  /** Exponential backoff with ±20% jitter, capped at the app's interval. */
  private backoff(app: string): number {
    const failures = Math.max(1, this.states.get(app)?.failures ?? 1);
    const base = (this.options.backoffBase ?? 2000) * 2 ** (failures - 1);
    const capped = Math.min(base, this.intervalOf(app));
    return Math.round(capped * (0.8 + Math.random() * 0.4));
  }

  private sleep(ms: number): Promise<void> {
    return this.wakeups.next(ms, this.abort.signal);
  }
}

/** What one pass of `berth sync` runs with. */
export interface PassOptions {
  /** Attempts at once. */
  concurrency: number;
  /** Recorded as each entry's trigger. */
  trigger: string;
  /** The commit to sync (fetched once for every app); absent: each attempt fetches and records why not. */
  snapshot?: Snapshot;
  /** Per source (by name), the commit to sync; wins over `snapshot` for the apps of that source. */
  snapshots?: ReadonlyMap<string, Snapshot>;
  /** Aborting ends health waits (Interrupted) and starts nothing more. */
  signal?: AbortSignal;
  /** An app not attempted, and why. */
  onSkip?: (app: string, why: string) => void;
}

/**
 * One pass over the apps (`berth sync`): each non-suspended app once, independent apps in parallel, an app
 * only after the dependencies in the pass succeeded (skipped if one did not). Results in dependsOn order.
 */
export async function syncPass(
  deps: EngineDeps,
  apps: readonly AppSpec[],
  options: PassOptions,
): Promise<ReconcileResult[]> {
  const order = dependencyOrder(apps).filter((a) => !a.suspend);
  const inPass = new Set(order.map((a) => a.name));
  const done = new Map<string, ReconcileResult | undefined>();
  const running = new Map<string, Promise<void>>();
  const limit = Math.max(1, Math.floor(options.concurrency));
  while (done.size < order.length) {
    // Dependencies come first in `order`, so a skip reaches every dependant within one sweep.
    for (const app of order) {
      if (done.has(app.name) || running.has(app.name)) continue;
      const needs = app.dependsOn.filter((d) => inPass.has(d));
      const failed = needs.find((d) => done.has(d) && done.get(d)?.outcome !== "Succeeded");
      if (failed || options.signal?.aborted) {
        done.set(app.name, undefined);
        options.onSkip?.(
          app.name,
          options.signal?.aborted
            ? "the sync was stopped before it started"
            : `its dependency ${failed} did not sync`,
        );
        continue;
      }
      if (needs.some((d) => !done.has(d)) || running.size >= limit) continue;
      const snapshot = options.snapshots?.get(srcOf(app)) ?? options.snapshot;
      const attempt = reconcile(deps, {
        app,
        trigger: options.trigger,
        ...(snapshot ? { snapshot } : {}),
        ...(options.signal ? { signal: options.signal } : {}),
      }).then((r) => {
        done.set(app.name, r);
        running.delete(app.name);
      });
      running.set(app.name, attempt);
    }
    if (running.size === 0) break;
    await Promise.race(running.values());
  }
  return order.flatMap((a) => {
    const r = done.get(a.name);
    return r ? [r] : [];
  });
}

/** The name of the source an app reads. */
function srcOf(app: AppSpec): string {
  return app.source ?? DEFAULT_SOURCE_NAME;
}

/** The ledger state key of the generated apps. */
const GENERATED_STATE = "generated-apps";

/** An app spec without what only its render reads (values, chart settings): enough to prune what it owns. */
function prunableSpec(app: AppSpec & { generated?: unknown }): AppSpec {
  const keep: Array<keyof AppSpec | "generated"> = [
    "name",
    "path",
    "source",
    "namespace",
    "prune",
    "pruneSafety",
    "allowEmpty",
    "force",
    "timeout",
    "dependsOn",
    "suspend",
    "serviceAccountName",
    "allowedNamespaces",
    "clusterScoped",
    "generated",
  ];
  const record = app as unknown as Record<string, unknown>;
  return Object.fromEntries(
    keep.filter((k) => record[k] !== undefined).map((k) => [k, record[k]]),
  ) as unknown as AppSpec;
}

/** The generated apps the ledger remembers that are not configured apps (a name now static is not pruned). */
function rememberedApps(ledger: EngineDeps["ledger"], configured: readonly AppSpec[]): AppSpec[] {
  const text = ledger.state?.(GENERATED_STATE);
  if (!text) return [];
  try {
    const specs = JSON.parse(text) as AppSpec[];
    if (!Array.isArray(specs)) return [];
    return specs.filter((s) => typeof s?.name === "string" && !configured.some((a) => a.name === s.name));
  } catch {
    return [];
  }
}
