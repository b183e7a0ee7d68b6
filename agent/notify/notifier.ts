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
import {
  approvedEvent,
  entryEvent,
  type NotifyEvent,
  RECOVERY,
  reasonOfEntry,
  type SourceRef,
  sourceEvent,
} from "./event.ts";
import { requestFor } from "./formats.ts";
import { DeliveryError, postJson } from "./http.ts";

const OUTBOX = "notify_outbox";
const STATE = "notify_state";
/** Sources in an outage: since when, and which receivers were told (so a restart neither repeats nor forgets). */
const SOURCES = "notify_source";
/** Where the notifier has read up to in tables others write (the ledger's approvals). */
const CURSOR = "notify_cursor";
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

/**
 * Another destination the outbox delivers to with the same retries, backoff and restart safety: the forge's
 * commit statuses. Its payloads are its own JSON; `app` and `reason` name them in logs.
 */
export interface Outlet {
  /** Its name in the outbox and the metrics (never a receiver's: receiver names are lowercase words). */
  name: string;
  /** Deliveries per minute. */
  rateLimit: number;
  send(payload: OutletPayload, deliveryId: string): Promise<void>;
}

/** What an outlet is given; rows with the same `key` replace older undelivered ones (latest wins). */
export interface OutletPayload {
  app: string;
  reason: string;
  key?: string;
  [field: string]: unknown;
}

/** A destination that keeps failing: the status page's and the metrics' view of it. */
export interface FailingDelivery {
  receiver: string;
  /** Notifications waiting for it. */
  pending: number;
  /** Attempts at the oldest one so far. */
  attempts: number;
  lastError: string;
  /** When the oldest waiting one was queued (ISO 8601). */
  since: string;
  /** When the next attempt is due (ISO 8601). */
  nextAttempt: string;
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
  /** Destinations besides the receivers (the forge's commit statuses). */
  outlets?: Outlet[];
}

/** One lane of the outbox: a receiver or an outlet, delivered in order and rate-limited on its own. */
interface Lane {
  name: string;
  rateLimit: number;
  send(json: string, deliveryId: string): Promise<void>;
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
  private readonly lanes: Lane[];

  private constructor(
    private readonly db: Driver,
    private readonly receivers: Receiver[],
    private readonly options: NotifierOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.lanes = [
      ...receivers.map((r) => ({
        name: r.config.name,
        rateLimit: r.config.rateLimit,
        send: (json: string, deliveryId: string) => this.sendToReceiver(r, json, deliveryId),
      })),
      ...(options.outlets ?? []).map((o) => ({
        name: o.name,
        rateLimit: o.rateLimit,
        send: (json: string, deliveryId: string) => o.send(JSON.parse(json) as OutletPayload, deliveryId),
      })),
    ];
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
         since TEXT NOT NULL, last_sent INTEGER NOT NULL, PRIMARY KEY (receiver, app));
       CREATE TABLE IF NOT EXISTS ${SOURCES} (
         source TEXT PRIMARY KEY, kind TEXT NOT NULL, url TEXT NOT NULL, since TEXT NOT NULL,
         told TEXT NOT NULL DEFAULT '[]');
       CREATE TABLE IF NOT EXISTS ${CURSOR} (name TEXT PRIMARY KEY, value TEXT NOT NULL);`,
    );
    const n = new Notifier(db, receivers, options);
    n.startApprovalCursor();
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

  /**
   * Feeds one source's state (called every few seconds per source: each Git or OCI source of berth.yaml,
   * each chart repository): a receiver hears of an outage once it has lasted its `sourceUnreachableAfter`, and
   * of the recovery if it heard of the outage. The outage (its start, who was told) is kept in the ledger
   * file: after a restart in the middle of one, nobody is told twice and the recovery still goes out.
   */
  onSource(state: SourceRef & { unreachableSince?: string | undefined; error?: string | undefined }): void {
    const now = this.now();
    const link = this.options.externalURL;
    const row = this.db.get<{ since: string; told: string }>(
      `SELECT since, told FROM ${SOURCES} WHERE source = ?`,
      [sourceKey(state)],
    );
    const told = new Set<string>(row ? (JSON.parse(row.told) as string[]) : []);
    if (state.unreachableSince === undefined) {
      if (!row) return;
      const event = sourceEvent("SourceRecovered", { ...state, since: row.since, error: "" }, link, now);
      this.db.transaction(() => {
        this.db.run(`DELETE FROM ${SOURCES} WHERE source = ?`, [sourceKey(state)]);
        for (const r of this.receivers) if (told.has(r.config.name)) this.enqueue(r, event);
      });
      if (told.size > 0) this.kick();
      return;
    }
    // The outage began at the earlier of what was recorded and what the source says (a restart resets the latter).
    const since =
      row && Date.parse(row.since) < Date.parse(state.unreachableSince) ? row.since : state.unreachableSince;
    const due = this.receivers.filter(
      (r) => !told.has(r.config.name) && now - Date.parse(since) >= r.config.sourceUnreachableAfter,
    );
    if (row && due.length === 0) return;
    const event = sourceEvent("SourceUnreachable", { ...state, since, error: state.error ?? "" }, link, now);
    this.db.transaction(() => {
      for (const r of due) {
        if (!this.matches(r, event)) continue;
        told.add(r.config.name);
        this.enqueue(r, event);
      }
      this.db.run(
        `INSERT INTO ${SOURCES} (source, kind, url, since, told) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (source) DO UPDATE SET since = excluded.since, told = excluded.told`,
        [sourceKey(state), state.kind, state.url, since, JSON.stringify([...told])],
      );
    });
    if (due.length > 0) this.kick();
  }

  /**
   * Where the approvals cursor starts: the first run tells approvals from now on, not the ledger's history. A
   * cursor kept by approved_at (before the approvals' seq) becomes the seq of the last approval it had told.
   */
  private startApprovalCursor(): void {
    this.db.transaction(() => {
      if (this.db.get(`SELECT 1 AS one FROM ${CURSOR} WHERE name = 'approvals-seq'`)) return;
      const before = this.db.get<{ value: string }>(`SELECT value FROM ${CURSOR} WHERE name = 'approvals'`);
      // A file the ledger has not opened yet has no approvals: every one to come is new.
      const ledger = this.db.get(
        `SELECT 1 AS one FROM sqlite_master WHERE type = 'table' AND name = 'approvals'`,
      );
      const told = !ledger
        ? { seq: 0 }
        : this.db.get<{ seq: number }>(
            `SELECT coalesce(max(seq), 0) AS seq FROM approvals${before ? " WHERE approved_at <= ?" : ""}`,
            before ? [before.value] : [],
          );
      this.db.run(`INSERT INTO ${CURSOR} (name, value) VALUES ('approvals-seq', ?)`, [
        String(told?.seq ?? 0),
      ]);
      this.db.run(`DELETE FROM ${CURSOR} WHERE name = 'approvals'`);
    });
  }

  /**
   * Notifies the approvals recorded since the last look (`Approved`): made through the API or by `berth
   * approve`, which writes the ledger file while `berth run` runs. It reads the ledger's `approvals` table and
   * keeps its place in the notifier's own cursor, so each approval (an approval renewed is a new one) is told
   * once, across restarts; approvals from before the notifier first ran are not told.
   */
  onApprovals(): void {
    const approvals = this.db.all<{
      app: string;
      revision: string;
      approved_by: string;
      expires_at: string;
      seq: number;
    }>(
      `SELECT app, revision, approved_by, expires_at, seq FROM approvals
       WHERE seq > (SELECT CAST(value AS INTEGER) FROM ${CURSOR} WHERE name = 'approvals-seq')
       ORDER BY seq`,
    );
    if (approvals.length === 0) return;
    this.db.transaction(() => {
      for (const a of approvals) {
        const event = approvedEvent(
          { app: a.app, revision: a.revision, by: a.approved_by, expiresAt: a.expires_at },
          this.link(a.app),
        );
        for (const r of this.receivers) if (this.matches(r, event)) this.enqueue(r, event);
      }
      this.db.run(
        `INSERT INTO ${CURSOR} (name, value) VALUES ('approvals-seq', ?)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value`,
        [String(approvals.at(-1)?.seq ?? 0)],
      );
    });
    this.kick();
  }

  /**
   * Queues a payload for an outlet. A `key` supersedes that outlet's undelivered rows with the same key (a
   * commit status stuck behind a forge outage is replaced by the newer one, not sent after it).
   */
  post(outlet: string, payload: OutletPayload): void {
    const now = this.now();
    this.db.transaction(() => {
      if (payload.key !== undefined)
        this.db.run(
          `UPDATE ${OUTBOX} SET dropped_at = ?, last_error = 'superseded'
           WHERE receiver = ? AND delivered_at IS NULL AND dropped_at IS NULL
             AND json_extract(event_json, '$.key') = ?`,
          [now, outlet, payload.key],
        );
      this.db.run(
        `INSERT INTO ${OUTBOX} (receiver, delivery_id, event_json, created_at, next_at) VALUES (?, ?, ?, ?, ?)`,
        [outlet, randomUUID(), JSON.stringify(payload), now, now],
      );
    });
    this.kick();
  }

  /** Receivers and outlets whose oldest waiting notification has failed at least once. */
  failing(): FailingDelivery[] {
    const rows = this.db.all<{
      receiver: string;
      pending: number;
      attempts: number;
      last_error: string | null;
      created_at: number;
      next_at: number;
    }>(
      `SELECT o.receiver, (SELECT COUNT(*) FROM ${OUTBOX} p WHERE p.receiver = o.receiver
                AND p.delivered_at IS NULL AND p.dropped_at IS NULL) AS pending,
              o.attempts, o.last_error, o.created_at, o.next_at
       FROM ${OUTBOX} o
       WHERE o.id IN (SELECT MIN(id) FROM ${OUTBOX} WHERE delivered_at IS NULL AND dropped_at IS NULL
                      GROUP BY receiver)
         AND o.attempts > 0
       ORDER BY o.receiver`,
    );
    return rows.map((r) => ({
      receiver: r.receiver,
      pending: r.pending,
      attempts: r.attempts,
      lastError: r.last_error ?? "",
      since: new Date(r.created_at).toISOString(),
      nextAttempt: new Date(r.next_at).toISOString(),
    }));
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
      this.lanes.map(async (r) => {
        for (;;) {
          if (this.closed) return;
          const row = this.db.get<OutboxRow>(
            `SELECT id, receiver, delivery_id, event_json, created_at, attempts, next_at FROM ${OUTBOX}
             WHERE receiver = ? AND delivered_at IS NULL AND dropped_at IS NULL ORDER BY id LIMIT 1`,
            [r.name],
          );
          if (!row || row.next_at > this.now() || !this.takeToken(r)) return;
          if (!(await this.deliver(r, row))) return;
        }
      }),
    );
  }

  /** A receiver's delivery: its type's request, POSTed. */
  private async sendToReceiver(r: Receiver, json: string, deliveryId: string): Promise<void> {
    const req = requestFor(
      {
        type: r.config.type,
        url: r.url,
        ...(r.secret !== undefined ? { secret: r.secret } : {}),
        deliveryId,
        alertTtlMs: 2 * r.config.repeatInterval,
      },
      JSON.parse(json) as NotifyEvent,
      this.now(),
    );
    await postJson(req.url, req.body, { headers: req.headers, timeoutMs: r.config.timeout });
  }

  /** Sends one row; true when it was delivered (or dropped) and the next may go. */
  private async deliver(r: Lane, row: OutboxRow): Promise<boolean> {
    const name = r.name;
    const event = JSON.parse(row.event_json) as { app: string; reason: string };
    try {
      await r.send(row.event_json, row.delivery_id);
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
  private takeToken(r: Lane): boolean {
    const now = this.now();
    const cap = r.rateLimit;
    const b = this.tokens.get(r.name) ?? { tokens: cap, at: now };
    b.tokens = Math.min(cap, b.tokens + ((now - b.at) * cap) / 60_000);
    b.at = now;
    this.tokens.set(r.name, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}

/** A source's row: kind and name (two sources may share a URL, a chart repository has no name of its own). */
function sourceKey(s: SourceRef): string {
  return `${s.kind}:${s.name}`;
}
