/** Human-readable output of plans, sync results and ledger entries. */
import type { ReconcileResult } from "../engine/reconcile.ts";
import type { GcReport, VerifiedRun } from "../ledger/ledger.ts";
import type { VerdictRecord } from "../object/object.ts";
import type { Plan } from "../plan/plan.ts";

const SIGN: Record<string, string> = {
  created: "+",
  configured: "~",
  deleted: "-",
  unchanged: "=",
  skipped: "!",
};

/** A plan as a readable diff: one line per object, changed fields under it. */
export function formatPlan(plan: Plan, verbose = false): string {
  const lines = [`plan for app ${plan.app} at ${plan.revision}`];
  for (const c of plan.changes) {
    if (c.action === "unchanged" && !verbose) continue;
    lines.push(`  ${SIGN[c.action] ?? "?"} ${c.subject}  ${c.action}${c.note ? `  (${c.note})` : ""}`);
    if (c.action === "configured") {
      // berth's own labels and annotations (the applied digest) change with every manifest: not news.
      const diff = c.diff.filter((d) => !bookkeeping(d.path));
      for (const d of diff.slice(0, 20)) {
        if ("before" in d) lines.push(`      - ${d.path}: ${short(d.before)}`);
        if ("after" in d) lines.push(`      + ${d.path}: ${short(d.after)}`);
      }
      if (diff.length > 20) lines.push(`      … ${diff.length - 20} more fields`);
    }
  }
  for (const e of plan.errors)
    lines.push(`  ✗ ${e.subject}${e.source ? ` (${e.source})` : ""}: ${e.message}`);
  const s = plan.summary;
  lines.push(
    `  ${s.created} to create, ${s.configured} to configure, ${s.deleted} to delete, ${s.unchanged} unchanged${s.skipped ? `, ${s.skipped} skipped` : ""}`,
  );
  return `${lines.join("\n")}\n`;
}

/** Documents the render left out (not Kubernetes objects), one line each: the plan shows every one. */
export function formatSkipped(skipped: ReadonlyArray<{ path: string; message: string }>): string {
  return skipped.map((s) => `  ${SIGN.skipped} skipped ${s.path}: ${s.message}\n`).join("");
}

/** Sync rule verdicts, one line each: verdict, rule, where it is written, subject and message. */
export function formatVerdicts(verdicts: ReadonlyArray<VerdictRecord>): string {
  if (verdicts.length === 0) return "";
  const lines = verdicts.map(
    (v) =>
      `  ${v.verdict.padEnd(7)} rule ${v.rule} (${v.at})${v.subject ? ` on ${v.subject}` : ""}: ${v.message}${v.approvedBy && !v.message.includes(v.approvedBy) ? ` [approved by ${v.approvedBy}]` : ""}`,
  );
  return `verdicts:\n${lines.join("\n")}\n`;
}

/** ANSI colour for a symbol, only when asked (a terminal without NO_COLOR). */
export function paint(s: string, colour: "green" | "red" | "yellow" | "cyan", on: boolean): string {
  if (!on) return s;
  const code = { green: 32, red: 31, yellow: 33, cyan: 36 }[colour];
  return `\x1b[${code}m${s}\x1b[0m`;
}

/** One line per sync result: ✓ synced, ✗ failed, ⏸ held for approval or deferred by a window. */
export function formatResult(r: ReconcileResult, color = false): string {
  const mark =
    r.outcome === "Succeeded"
      ? paint("✓", "green", color)
      : r.held
        ? paint("⏸", "yellow", color)
        : paint("✗", "red", color);
  const t = Object.entries(r.timings)
    .map(([k, v]) => `${k} ${v}ms`)
    .join(", ");
  return `${mark} ${r.app} ${r.revision}: ${r.reason} — ${r.message}  [entry ${r.entry}; ${t}]\n`;
}

/** A diff path in berth's bookkeeping: its `berth.dev/…` labels and annotations. */
export function bookkeeping(path: string): boolean {
  return /^\/metadata\/(labels|annotations)\/berth\.dev~1/.test(path);
}

function short(v: unknown): string {
  const s = JSON.stringify(v);
  return s.length > 100 ? `${s.slice(0, 97)}...` : s;
}

/** A fixed-width table. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join("\n")}\n`;
}

/** A table at most `width` columns wide: the last column is cut (with …) to what the others leave. */
export function tableFitting(headers: string[], rows: string[][], width: number): string {
  const last = headers.length - 1;
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const used = widths.slice(0, last).reduce((a, b) => a + b + 2, 0);
  const room = Math.max(headers[last]?.length ?? 0, width - used);
  const cut = (s: string) => {
    const one = s.replace(/\s+/g, " ");
    return one.length > room ? `${one.slice(0, room - 1)}…` : one;
  };
  return table(
    headers,
    rows.map((r) => r.map((c, i) => (i === last ? cut(c) : c))),
  );
}

/** "main@sha1:0123456789abcdef…" → "main@0123456": a revision short enough for a table. */
export function shortRevision(revision: string): string {
  return revision.replace(/@(?:sha1:|sha256:)?([0-9a-f]{7})[0-9a-f]{33,57}\b/, "@$1");
}

/** How long ago an ISO time was: "42s", "5m", "3h", "2d" ("" when unknown). */
export function ago(iso: string | undefined, now: number): string {
  if (!iso) return "";
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (Number.isNaN(s)) return "";
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172_800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86_400)}d`;
}

/**
 * One line for the no-op resyncs folded into an entry: "verified 1,440× since 09:00, healthy" (the date
 * too when the run started on another day than it last ran; times in UTC).
 */
export function describeVerified(v: VerifiedRun, outcome: string): string {
  const first =
    v.firstAt.slice(0, 10) === v.lastAt.slice(0, 10)
      ? v.firstAt.slice(11, 16)
      : `${v.firstAt.slice(0, 10)} ${v.firstAt.slice(11, 16)}`;
  const health = v.health === undefined ? "" : v.health === "Current" ? ", healthy" : `, ${v.health}`;
  const what = outcome === "Succeeded" ? "verified" : "repeated";
  return `${what} ${v.count.toLocaleString("en-US")}× since ${first}${outcome === "Succeeded" ? health : ", failed"}`;
}

/** What `ledger gc` did (or would do). */
export function formatGc(r: GcReport): string {
  const verb = r.dryRun ? "would drop" : "dropped";
  const lines = [
    `${verb} ${r.entriesDropped} entries (${r.entriesKept} kept, ${r.protectedKept} old ones kept as last healthy, pinned or approved)`,
    r.blobsSkipped
      ? "blobs not collected: a sync is running (try again later)"
      : `${verb} ${r.blobsDropped} manifests and ${r.snapshotsDropped} inventory snapshots no entry uses`,
    `${verb} ${r.driftEventsDropped} drift events`,
  ];
  if (r.checkpoint > 0) lines.push(`chain checkpoint at position ${r.checkpoint}`);
  return `${lines.join("\n")}\n`;
}
