/** What the API says about an app: the loop's state joined with the ledger's newest entries. */

import type { AppState } from "../engine/loop.ts";
import type { DriftEvent } from "../ledger/entry.ts";
import type { Approval, EntrySummary, LedgerEntry } from "../ledger/ledger.ts";
import { capMessage } from "../object/message.ts";
import { chartOfMessage } from "../object/records.ts";

/** The loop facts one view needs. */
export interface GitView {
  seenRevision: string | undefined;
  gitUnreachableSince: string | undefined;
  gitError: string | undefined;
}

/** The ledger reads the API needs. */
export interface LedgerView {
  list(query?: { app?: string; limit?: number; before?: number }): EntrySummary[];
  /** Why the ledger cannot record right now (disk full, I/O error); optional for fakes. */
  writeProblem?(): string | undefined;
  get(id: number): LedgerEntry | undefined;
  /** Operator writes (the Ledger has them; read-only fakes may not: those routes then answer 503). */
  approve?(
    app: string,
    revision: string,
    by: string,
    expiresAt: Date,
    options?: { overrideWindow?: boolean },
  ): Approval;
  pin?(app: string, entry: number): { app: string; entry: number; pinnedAt: string };
  unpin?(app: string): boolean;
  pinOf?(app: string): { entry: number; pinnedAt: string; pendingRevision?: string } | undefined;
  /** Recorded drift, newest first (optional for fakes: the view then has no drift block). */
  driftEvents?(query?: { app?: string; limit?: number }): DriftEvent[];
}

/** Drift of one app over the last DRIFT_WINDOW_MS: counts by action, the newest time, and (detail) the events. */
export interface DriftSummary {
  recent: number;
  healed: number;
  alerted: number;
  failed: number;
  lastAt?: string;
  events?: Array<{
    id: number;
    subject: string;
    manager: string;
    fields: string[];
    action: string;
    message?: string;
    detectedAt: string;
  }>;
}

/** One app as GET /api/v1/apps returns it (schemas/api/app.json). */
export interface AppView {
  name: string;
  path: string;
  /** The source the app reads (`git` and `revision.seen` are this source's). */
  source?: string;
  /** The generator and directory a generated app was made from; `gone` once the directory left. */
  generated?: { index: number; dir: string; gone?: boolean };
  dependsOn: string[];
  syncStatus: "Synced" | "OutOfSync" | "Failed" | "Suspended" | "WaitingOnDependency";
  healthStatus: string;
  /** `chart`: the remote Helm chart of the last successful sync (`chart name version sha256:…`). */
  revision: { applied?: string; seen?: string; chart?: string };
  lastAttemptAt?: string;
  nextAttemptAt?: string;
  lastEntry?: number;
  lastError?: { entry: number; reason: string; message: string; at?: string };
  git: { reachable: boolean; unreachableSince?: string; error?: string };
  /** Set while the app is held at a ledger entry (berth pin). */
  pinned?: { entry: number; pinnedAt: string; pendingRevision?: string };
  objects?: Array<{ subject: string; action: string; status?: string; health?: string; message?: string }>;
  drift?: DriftSummary;
}

/** "Recent" drift: what an operator glancing at the status wants to know about (a day). */
export const DRIFT_WINDOW_MS = 24 * 3600_000;
/** At most this many events are counted, and DRIFT_DETAIL of them listed in the detail view. */
const DRIFT_LOOKBACK = 500;
const DRIFT_DETAIL = 20;

/** Counts an app's drift events of the last day; `detail` lists the newest of them. */
export function driftSummary(
  ledger: LedgerView,
  app: string,
  detail: boolean,
  now = Date.now(),
): DriftSummary | undefined {
  if (!ledger.driftEvents) return undefined;
  const events = ledger
    .driftEvents({ app, limit: DRIFT_LOOKBACK })
    .filter((e) => now - Date.parse(e.detectedAt) <= DRIFT_WINDOW_MS);
  const summary: DriftSummary = {
    recent: events.length,
    healed: events.filter((e) => e.action === "healed").length,
    alerted: events.filter((e) => e.action === "alerted").length,
    failed: events.filter((e) => e.action === "heal-failed").length,
  };
  if (events[0]) summary.lastAt = events[0].detectedAt;
  if (detail) {
    summary.events = events.slice(0, DRIFT_DETAIL).map((e) => ({
      id: e.id,
      subject: `${e.ref.kind}/${e.ref.namespace ? `${e.ref.namespace}/` : ""}${e.ref.name}`,
      manager: e.manager,
      fields: e.fields,
      action: e.action,
      ...(e.message ? { message: e.message } : {}),
      detectedAt: e.detectedAt,
    }));
  }
  return summary;
}

/** The app settings a view shows. */
export interface AppSpecView {
  name: string;
  path: string;
  dependsOn: readonly string[];
  source?: string;
  generated?: { index: number; dir: string };
  gone?: boolean;
}

/** How many recent entries are searched for the last successful one. */
const LOOKBACK = 50;
/** Read first: a synced app's newest entries hold what a view needs (no-op resyncs fold into one). */
const FIRST_LOOK = 4;

/** The app's newest entries, enough to find its newest finished and newest successful one (or LOOKBACK). */
function recentOf(ledger: LedgerView, app: string): EntrySummary[] {
  const first = ledger.list({ app, limit: FIRST_LOOK });
  const found = first.some((e) => e.outcome === "Succeeded");
  return found || first.length < FIRST_LOOK ? first : ledger.list({ app, limit: LOOKBACK });
}

/** The few figures /metrics reports per app: the same as the app's view says, from fewer ledger reads. */
export interface AppStatusView {
  name: string;
  syncStatus: AppView["syncStatus"];
  healthStatus: string;
  applied?: string;
}

/** What an app's view says of its sync and health, without its drift, errors or history. */
export function appStatus(
  spec: AppSpecView,
  state: AppState | undefined,
  git: GitView,
  ledger: LedgerView,
): AppStatusView {
  return statusParts(spec.name, state, git, recentOf(ledger, spec.name)).status;
}

function statusParts(name: string, state: AppState | undefined, git: GitView, recent: EntrySummary[]) {
  const finished = recent.find((e) => e.outcome !== "Running");
  const applied = recent.find((e) => e.outcome === "Succeeded");
  const status: AppStatusView = {
    name,
    syncStatus: syncStatusOf(state, applied?.revision, git.seenRevision, finished),
    healthStatus: finished?.health ?? (finished ? "Unknown" : "NotFound"),
  };
  if (applied) status.applied = applied.revision;
  return { status, finished, applied };
}

/** Builds the view of one app; `detail` adds per-object actions and health of the newest entry. */
export function appView(
  spec: AppSpecView,
  state: AppState | undefined,
  git: GitView,
  ledger: LedgerView,
  detail: boolean,
): AppView {
  const recent = recentOf(ledger, spec.name);
  const { status, finished, applied } = statusParts(spec.name, state, git, recent);
  const seen = git.seenRevision;
  const view: AppView = {
    name: spec.name,
    path: spec.path,
    ...(spec.source !== undefined ? { source: spec.source } : {}),
    ...(spec.generated
      ? {
          generated: {
            index: spec.generated.index,
            dir: spec.generated.dir,
            ...(spec.gone ? { gone: true } : {}),
          },
        }
      : {}),
    dependsOn: [...spec.dependsOn],
    syncStatus: status.syncStatus,
    healthStatus: status.healthStatus,
    revision: {},
    git: { reachable: git.gitUnreachableSince === undefined },
  };
  if (applied) view.revision.applied = applied.revision;
  const chart = chartOfMessage(applied?.message);
  if (chart) view.revision.chart = chart;
  if (seen) view.revision.seen = seen;
  const lastAttempt = state?.lastAttemptAt ?? recent[0]?.verified?.lastAt ?? recent[0]?.startedAt;
  if (lastAttempt) view.lastAttemptAt = lastAttempt;
  if (state?.nextAttemptAt && !state.suspended) view.nextAttemptAt = state.nextAttemptAt;
  if (recent[0]) view.lastEntry = recent[0].id;
  if (finished?.outcome === "Failed") {
    view.lastError = {
      entry: finished.id,
      reason: finished.reason ?? "Unknown",
      // Entries written before messages were bounded may be huge.
      message: capMessage(finished.message ?? ""),
    };
    if (finished.finishedAt) view.lastError.at = finished.finishedAt;
  }
  if (state?.pinned) {
    const { entry, pinnedAt, pendingRevision } = state.pinned;
    view.pinned = { entry, pinnedAt, ...(pendingRevision ? { pendingRevision } : {}) };
  }
  if (git.gitUnreachableSince) view.git.unreachableSince = git.gitUnreachableSince;
  if (git.gitError) view.git.error = git.gitError;
  const drift = driftSummary(ledger, spec.name, detail);
  if (drift) view.drift = drift;
  if (detail && recent[0]) {
    const entry = ledger.get(recent[0].id);
    view.objects = (entry?.objects ?? []).map((o) => {
      const out: { subject: string; action: string; status?: string; health?: string; message?: string } = {
        subject: `${o.ref.kind}/${o.ref.namespace ? `${o.ref.namespace}/` : ""}${o.ref.name}`,
        action: o.action,
      };
      if (o.status) out.status = o.status;
      if (o.health) out.health = o.health;
      if (o.message) out.message = o.message;
      return out;
    });
  }
  return view;
}

/** Synced only when the newest success is at the revision Git points at; a stale success is OutOfSync. */
function syncStatusOf(
  state: AppState | undefined,
  applied: string | undefined,
  seen: string | undefined,
  finished: EntrySummary | undefined,
): AppView["syncStatus"] {
  if (state?.suspended) return "Suspended";
  if (state?.status === "WaitingOnDependency") return "WaitingOnDependency";
  if (state?.status === "Failed" || (!state?.lastResult && finished?.outcome === "Failed")) return "Failed";
  if (applied && (seen === undefined || applied === seen) && finished?.outcome === "Succeeded")
    return "Synced";
  return "OutOfSync";
}
