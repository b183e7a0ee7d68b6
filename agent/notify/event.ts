/** What a notification is about: the event `when` sees and every receiver's message is written from. */
import type { LedgerEntry } from "../ledger/entry.ts";
import { subject as subjectOf } from "../object/object.ts";

export type NotifyReason =
  | "SyncFailed"
  | "SyncRecovered"
  | "HealthDegraded"
  | "HealthRecovered"
  | "HeldForApproval"
  | "DeniedByRule"
  | "DriftHealed"
  | "DriftAlerted"
  | "DriftHealFailed"
  | "ReplayDone"
  | "Approved"
  | "SourceUnreachable"
  | "SourceRecovered";

export type Severity = "error" | "warning" | "info";

/** One event, as JSON (stored in the outbox, bound to `event` in `when`, sent as is by the webhook type). */
export interface NotifyEvent {
  reason: NotifyReason;
  severity: Severity;
  app: string;
  /** `<branch>@sha1:<hash>`, or "" when unknown. */
  revision: string;
  commit: { sha: string; subject: string; author: string };
  /** What happened, in one sentence. */
  summary: string;
  /** The engine's or drift watcher's message (the failure, the verdict, the fields). */
  message: string;
  /** The ledger entry, when there is one. */
  entry?: number;
  /** Objects concerned: the entry's objects, or the drifted object. */
  objects: Array<{ subject: string; kind: string; namespace: string; name: string; action: string }>;
  /** The status page of the app. */
  link: string;
  /** When the event happened, and when the condition it reports started (ISO 8601). */
  at: string;
  since: string;
  /** A reminder of a failure already notified (repeatInterval passed). */
  repeat: boolean;
  /** The source of a SourceUnreachable/SourceRecovered event. */
  source?: SourceRef;
}

/** A source berth reads: a Git or OCI source of berth.yaml (by its name), or a chart repository of an app. */
export interface SourceRef {
  /** The name in `sources:` (`default` for `source:`); for a chart source, where it is (`helm repository …`). */
  name: string;
  kind: "git" | "oci" | "chart";
  url: string;
}

/** Failure reasons whose recovery is notified, and what the recovery is called. */
export const RECOVERY: Partial<Record<NotifyReason, NotifyReason>> = {
  SyncFailed: "SyncRecovered",
  HeldForApproval: "SyncRecovered",
  DeniedByRule: "SyncRecovered",
  HealthDegraded: "HealthRecovered",
};

const SEVERITY: Record<NotifyReason, Severity> = {
  SyncFailed: "error",
  DeniedByRule: "error",
  HeldForApproval: "warning",
  HealthDegraded: "error",
  DriftHealFailed: "error",
  DriftAlerted: "warning",
  DriftHealed: "info",
  SyncRecovered: "info",
  HealthRecovered: "info",
  ReplayDone: "info",
  Approved: "info",
  SourceUnreachable: "warning",
  SourceRecovered: "info",
};

export function severityOf(reason: NotifyReason): Severity {
  return SEVERITY[reason];
}

/** The notification reason of a finished ledger entry, or undefined when it is routine (a good sync, an interruption). */
export function reasonOfEntry(e: LedgerEntry): NotifyReason | undefined {
  if (e.outcome === "Succeeded")
    return e.trigger === "replay" || e.trigger === "pin" ? "ReplayDone" : undefined;
  if (e.outcome !== "Failed" || e.reason === "Interrupted") return undefined;
  if (e.reason === "HealthCheckFailed") return "HealthDegraded";
  if (e.reason === "PlanRejected") {
    const verdicts = e.verdicts ?? [];
    if (verdicts.some((v) => v.verdict === "deny")) return "DeniedByRule";
    if (verdicts.some((v) => v.verdict === "hold") || /held by the prune guard/.test(e.message ?? ""))
      return "HeldForApproval";
  }
  return "SyncFailed";
}

const SUMMARY: Record<NotifyReason, string> = {
  SyncFailed: "sync failed",
  SyncRecovered: "sync recovered",
  HealthDegraded: "health degraded",
  HealthRecovered: "health recovered",
  HeldForApproval: "held for approval",
  DeniedByRule: "denied by a sync rule",
  DriftHealed: "drift healed",
  DriftAlerted: "drift detected (alert only)",
  DriftHealFailed: "drift detected; healing failed",
  ReplayDone: "replay done",
  Approved: "approved",
  SourceUnreachable: "unreachable",
  SourceRecovered: "reachable again",
};

/** Builds the event of a ledger entry (reason chosen by the caller: a failure, a recovery or a replay). */
export function entryEvent(
  e: LedgerEntry,
  reason: NotifyReason,
  link: string,
  since: string,
  repeat: boolean,
): NotifyEvent {
  const commitSubject = (e.commit?.message ?? "").split("\n")[0] ?? "";
  return {
    reason,
    severity: severityOf(reason),
    app: e.app,
    revision: e.revision,
    commit: {
      sha: e.commit?.sha ?? e.commitSha ?? "",
      subject: commitSubject,
      author: e.commit?.author ?? "",
    },
    summary: `${e.app}: ${SUMMARY[reason]}${repeat ? " (reminder: still failing)" : ""}`,
    message: e.message ?? "",
    entry: e.id,
    objects: e.objects.slice(0, 50).map((o) => ({
      subject: subjectOf(o.ref),
      kind: o.ref.kind,
      namespace: o.ref.namespace ?? "",
      name: o.ref.name,
      action: o.action,
    })),
    link,
    at: e.finishedAt ?? new Date().toISOString(),
    since,
    repeat,
  };
}

/** Builds the event of a drift report. */
export function driftEvent(
  d: { app: string; subject: string; fields: string[]; action: string; message?: string; manager: string },
  revision: string,
  commit: NotifyEvent["commit"],
  link: string,
): NotifyEvent {
  const reason: NotifyReason =
    d.action === "healed" ? "DriftHealed" : d.action === "alerted" ? "DriftAlerted" : "DriftHealFailed";
  const [kind = "", ...rest] = d.subject.split("/");
  const name = rest.pop() ?? "";
  const at = new Date().toISOString();
  return {
    reason,
    severity: severityOf(reason),
    app: d.app,
    revision,
    commit,
    summary: `${d.app}: ${SUMMARY[reason]} on ${d.subject}`,
    message: `${d.manager} changed ${d.fields.join(", ")}${d.message ? `: ${d.message}` : ""}`,
    objects: [{ subject: d.subject, kind, namespace: rest.join("/"), name, action: d.action }],
    link,
    at,
    since: at,
    repeat: false,
  };
}

/** An operator approved a held sync (through the API or `berth approve`). */
export function approvedEvent(
  a: { app: string; revision: string; by: string; expiresAt: string },
  link: string,
): NotifyEvent {
  const at = new Date().toISOString();
  return {
    reason: "Approved",
    severity: severityOf("Approved"),
    app: a.app,
    revision: a.revision,
    commit: { sha: a.revision.split("sha1:")[1] ?? "", subject: "", author: "" },
    summary: `${a.app}: ${SUMMARY.Approved} by ${a.by}`,
    message: `${a.by} approved ${a.revision} until ${a.expiresAt}; the held sync runs at its next attempt`,
    objects: [],
    link,
    at,
    since: at,
    repeat: false,
  };
}

const SOURCE_KIND: Record<SourceRef["kind"], string> = {
  git: "Git source",
  oci: "OCI source",
  chart: "chart source",
};

/** How a message names a source: `Git source https://…`, `OCI source "charts" oci://…`, `chart source helm repository https://…`. */
export function sourceLabel(s: SourceRef): string {
  if (s.kind === "chart") return `${SOURCE_KIND.chart} ${s.name}`;
  return `${SOURCE_KIND[s.kind]}${s.name === "default" ? "" : ` "${s.name}"`} ${s.url}`;
}

/** A source has not answered since `since` (SourceUnreachable), or answers again (SourceRecovered). */
export function sourceEvent(
  reason: "SourceUnreachable" | "SourceRecovered",
  s: SourceRef & { since: string; error: string },
  link: string,
  now = Date.now(),
): NotifyEvent {
  const minutes = Math.max(1, Math.round((now - Date.parse(s.since)) / 60_000));
  const reached =
    s.kind === "chart"
      ? "its apps render the last chart pulled, from the cache (or fail without one)"
      : "every app keeps its last good commit applied";
  return {
    reason,
    severity: severityOf(reason),
    app: "",
    revision: "",
    commit: { sha: "", subject: "", author: "" },
    summary:
      reason === "SourceUnreachable"
        ? `${sourceLabel(s)} ${SUMMARY[reason]} for ${minutes}m`
        : `${sourceLabel(s)} ${SUMMARY[reason]} after ${minutes}m`,
    message: reason === "SourceUnreachable" ? `${s.error}; ${reached}` : `unreachable since ${s.since}`,
    objects: [],
    link,
    at: new Date(now).toISOString(),
    since: s.since,
    repeat: false,
    source: { name: s.name, kind: s.kind, url: s.url },
  };
}
