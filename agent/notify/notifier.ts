/**
 * Notifications of `berth run`: events chosen per receiver by its `when`, written to an outbox in the ledger
 * database and delivered from there with retries and backoff, so a receiver that is down (or an agent that
 * is killed) loses nothing. The tables live in this module, created on their own connection with
 * CREATE TABLE IF NOT EXISTS (the ledger's migrations do not know them), like the replica's change log.
 *
 * De-duplication: per receiver and app, the failure last notified (its reason and revision) and when. The
 * same failure again is dropped until `repeatInterval` has passed (then one reminder); the first good sync
 * after it sends the recovery to that receiver, whatever its `when` says, and resolves the Alertmanager alert.
 * Delivery problems are a metric and a log line, never a sync failure.
 */
import { randomUUID } from "node:crypto";
import type { CelProgram } from "../cel/cel.ts";
import { toCel } from "../cel/cel.ts";
import type { ReceiverConfig } from "../config/notify.ts";
import { type Driver, openDriver } from "../ledger/driver.ts";
import type { LedgerEntry } from "../ledger/entry.ts";
import { messageOf } from "../object/errors.ts";
import { entryEvent, type NotifyEvent, RECOVERY, reasonOfEntry } from "./event.ts";
import { requestFor } from "./formats.ts";
import { DeliveryError, postJson } from "./http.ts";

const OUTBOX = "notify_outbox";
const STATE = "notify_state";
/** Backoff between delivery attempts: doubling from 1 s to 5 min. */
const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 300_000;
/** A notification undeliverable for this long is dropped (and counted). */
const GIVE_UP_MS = 24 * 3600_000;
/** Delivered rows are kept this long, for inspection. */
const KEEP_DELIVERED_MS = 7 * 24 * 3600_000;

/** A receiver ready to send: its settings, compiled `when` and resolved URL and secret. */
export interface Receiver {
  config: ReceiverConfig;
  when?: CelProgram;
  url: string;
  secret?: string;
}

export interface NotifierOptions {
  /** The status page's base URL (api.externalURL, or the listen address). */
  externalURL: string;
  log: (level: "info" | "warn" | "error", message: string, fields: Record<string, unknown>) => void;
  /** Counts deliveries: delivered, failed (an attempt), dropped (gave up). */
  count?: (receiver: string, result: "delivered" | "failed" | "dropped") => void;
  /** Milliseconds between looks at the outbox when idle (default 1000). */
  pollMs?: number;
  now?: () => number;
}

interface StateRow {
  reason: string;
  fingerprint: string;
  since: string;
  last_sent: number;
}

interface OutboxRow {
  id: number;
  receiver: string;
  delivery_id: string;
  event_json: string;
  created_at: number;
  attempts: number;
  next_at: number;
}

/** The notifier of one agent: `onEntry`/`onEvent` enqueue, a timer delivers. */
export class Notifier {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<void> | undefined;
  private closed = false;
  private readonly tokens = new Map<string, { tokens: number; at: number }>();
  private readonly now: () => number;

  private constructor(
    private readonly db: Driver,
    private readonly receivers: Receiver[],
    private readonly options: NotifierOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** Opens its own connection to the ledger file, creates the tables if needed and starts delivering. */
  static async open(ledgerPath: string, receivers: Receiver[], options: NotifierOptions): Promise<Notifier> {
    const db = await openDriver(ledgerPath);
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec(
      `CREATE TABLE IF NOT EXISTS ${OUTBOX} (
         id INTEGER PRIMARY KEY AUTOINCREMENT, receiver TEXT NOT NULL, delivery_id TEXT NOT NULL,
         event_json TEXT NOT NULL, created_at INTEGER NOT NULL, next_at INTEGER NOT NULL,
         attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, delivered_at INTEGER, dropped_at INTEGER);
       CREATE INDEX IF NOT EXISTS ${OUTBOX}_pending ON ${OUTBOX} (receiver, delivered_at, dropped_at, id);
       CREATE TABLE IF NOT EXISTS ${STATE} (
         receiver TEXT NOT NULL, app TEXT NOT NULL, reason TEXT NOT NULL, fingerprint TEXT NOT NULL,
         since TEXT NOT NULL, last_sent INTEGER NOT NULL, PRIMARY KEY (receiver, app));`,
    );
    const n = new Notifier(db, receivers, options);
    n.db.run(`DELETE FROM ${OUTBOX} WHERE delivered_at IS NOT NULL AND delivered_at < ?`, [
      n.now() - KEEP_DELIVERED_MS,
    ]);
    n.schedule(0);
    return n;
  }

  /** Notifications waiting for delivery. */
  pending(): number {
    return (
      this.db.get<{ n: number }>(
        `SELECT COUNT(*) AS n FROM ${OUTBOX} WHERE delivered_at IS NULL AND dropped_at IS NULL`,
      )?.n ?? 0
    );
  }

  /** Feeds a finished ledger entry: a failure, a recovery, a replay — or nothing worth telling. */
  onEntry(e: LedgerEntry): void {
    const reason = reasonOfEntry(e);
    const link = this.link(e.app);
    const now = this.now();
    this.db.transaction(() => {
      for (const r of this.receivers) {
        const name = r.config.name;
        const state = this.db.get<StateRow>(`SELECT * FROM ${STATE} WHERE receiver = ? AND app = ?`, [
          name,
          e.app,
        ]);
        if (reason && RECOVERY[reason]) {
          const fingerprint = `${reason}|${e.revision}`;
          if (state?.fingerprint === fingerprint && now - state.last_sent < r.config.repeatInterval) continue;
          const since = state?.since ?? e.startedAt;
          const event = entryEvent(e, reason, link, since, state?.fingerprint === fingerprint);
          if (!this.matches(r, event)) continue;
          this.db.run(
            `INSERT INTO ${STATE} (receiver, app, reason, fingerprint, since, last_sent) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT (receiver, app) DO UPDATE SET reason = excluded.reason, fingerprint = excluded.fingerprint, last_sent = excluded.last_sent`,
            [name, e.app, reason, fingerprint, since, now],
          );
          this.enqueue(r, event);
          continue;
        }
        if (e.outcome === "Succeeded" && state) {
          // The receiver was told of the failure, so it hears of the recovery (and the alert resolves).
          const recovery = RECOVERY[state.reason as keyof typeof RECOVERY] ?? "SyncRecovered";
          this.db.run(`DELETE FROM ${STATE} WHERE receiver = ? AND app = ?`, [name, e.app]);
          this.enqueue(r, entryEvent(e, recovery, link, state.since, false));
        }
        if (reason === "ReplayDone") {
          const event = entryEvent(e, reason, link, e.startedAt, false);
          if (this.matches(r, event)) this.enqueue(r, event);
        }
      }
    });
    this.kick();
  }

  /** Feeds an event without de-duplication state (drift: each report is its own). */
  onEvent(event: NotifyEvent): void {
    this.db.transaction(() => {
      for (const r of this.receivers) if (this.matches(r, event)) this.enqueue(r, event);
    });
    this.kick();
  }

  /** The status page link of an app. */
  link(app: string): string {
    return `${this.options.externalURL}/#app=${encodeURIComponent(app)}`;
  }

  /** Stops delivering (after the attempt in progress) and closes the connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    this.db.close();
  }

  private matches(r: Receiver, event: NotifyEvent): boolean {
    // Alertmanager takes alerts: routine news (drift healed, replay done) is not one.
    if (r.config.type === "alertmanager" && event.severity === "info" && !/Recovered$/.test(event.reason))
      return false;
    if (!r.when) return true;
    try {
      return r.when.evaluate({ event: toCel(event) }) === true;
    } catch (err) {
      this.options.log("warn", "notify: `when` failed to evaluate; the receiver skips this event", {
        receiver: r.config.name,
        reason: event.reason,
        error: messageOf(err),
      });
      return false;
    }
  }

  private enqueue(r: Receiver, event: NotifyEvent): void {
    const now = this.now();
    this.db.run(
      `INSERT INTO ${OUTBOX} (receiver, delivery_id, event_json, created_at, next_at) VALUES (?, ?, ?, ?, ?)`,
      [r.config.name, randomUUID(), JSON.stringify(event), now, now],
    );
  }

  private kick(): void {
    if (this.closed || this.running) return;
    if (this.timer) clearTimeout(this.timer);
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.deliverDue()
        .catch((err) => this.options.log("error", "notify: outbox failed", { error: messageOf(err) }))
        .finally(() => {
          this.running = undefined;
          this.schedule(this.options.pollMs ?? 1000);
        });
    }, ms);
  }

  /** One pass: per receiver, its oldest pending notification if due and the rate limit allows (order kept). */
  private async deliverDue(): Promise<void> {
    await Promise.all(
      this.receivers.map(async (r) => {
        for (;;) {
          if (this.closed) return;
          const row = this.db.get<OutboxRow>(
            `SELECT id, receiver, delivery_id, event_json, created_at, attempts, next_at FROM ${OUTBOX}
             WHERE receiver = ? AND delivered_at IS NULL AND dropped_at IS NULL ORDER BY id LIMIT 1`,
            [r.config.name],
          );
          if (!row || row.next_at > this.now() || !this.takeToken(r)) return;
          if (!(await this.deliver(r, row))) return;
        }
      }),
    );
  }

  /** Sends one row; true when it was delivered (or dropped) and the next may go. */
  private async deliver(r: Receiver, row: OutboxRow): Promise<boolean> {
    const name = r.config.name;
    const event = JSON.parse(row.event_json) as NotifyEvent;
    const req = requestFor(
      {
        type: r.config.type,
        url: r.url,
        ...(r.secret !== undefined ? { secret: r.secret } : {}),
        deliveryId: row.delivery_id,
        alertTtlMs: 2 * r.config.repeatInterval,
      },
      event,
      this.now(),
    );
    try {
      await postJson(req.url, req.body, { headers: req.headers, timeoutMs: r.config.timeout });
      this.db.run(
        `UPDATE ${OUTBOX} SET delivered_at = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?`,
        [this.now(), row.id],
      );
      this.options.count?.(name, "delivered");
      if (row.attempts > 0)
        this.options.log("info", "notify: delivered after retries", {
          receiver: name,
          attempts: row.attempts + 1,
        });
      return true;
    } catch (err) {
      const error = messageOf(err);
      const attempts = row.attempts + 1;
      this.options.count?.(name, "failed");
      const permanent = err instanceof DeliveryError && !err.retryable;
      if (permanent || this.now() - row.created_at > GIVE_UP_MS) {
        this.db.run(`UPDATE ${OUTBOX} SET dropped_at = ?, attempts = ?, last_error = ? WHERE id = ?`, [
          this.now(),
          attempts,
          error,
          row.id,
        ]);
        this.options.count?.(name, "dropped");
        this.options.log("error", "notify: notification dropped", {
          receiver: name,
          reason: event.reason,
          app: event.app,
          attempts,
          error,
        });
        return true;
      }
      const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(attempts - 1, 20));
      const delay = Math.round(ceiling * (0.75 + Math.random() * 0.25));
      this.db.run(`UPDATE ${OUTBOX} SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?`, [
        attempts,
        this.now() + delay,
        error,
        row.id,
      ]);
      this.options.log("warn", "notify: delivery failed; will retry", {
        receiver: name,
        reason: event.reason,
        app: event.app,
        attempts,
        retryInMs: delay,
        error,
      });
      return false;
    }
  }

  /** A token bucket per receiver: `rateLimit` per minute, bursts up to the same number. */
  private takeToken(r: Receiver): boolean {
    const now = this.now();
    const cap = r.config.rateLimit;
    const b = this.tokens.get(r.config.name) ?? { tokens: cap, at: now };
    b.tokens = Math.min(cap, b.tokens + ((now - b.at) * cap) / 60_000);
    b.at = now;
    this.tokens.set(r.config.name, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
