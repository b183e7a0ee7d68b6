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
      for (const d of c.diff.slice(0, 20)) {
        if ("before" in d) lines.push(`      - ${d.path}: ${short(d.before)}`);
        if ("after" in d) lines.push(`      + ${d.path}: ${short(d.after)}`);
      }
      if (c.diff.length > 20) lines.push(`      … ${c.diff.length - 20} more fields`);
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

/** One line per sync result. */
export function formatResult(r: ReconcileResult): string {
  const mark = r.outcome === "Succeeded" ? "✓" : "✗";
  const t = Object.entries(r.timings)
    .map(([k, v]) => `${k} ${v}ms`)
    .join(", ");
  return `${mark} ${r.app} ${r.revision}: ${r.reason} — ${r.message}  [entry ${r.entry}; ${t}]\n`;
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
