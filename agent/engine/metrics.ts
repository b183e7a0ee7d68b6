/**
 * Prometheus metrics of the engine: fed by engine events and the Git/Kubernetes clients' counters,
 * rendered in the Prometheus text exposition format (version 0.0.4).
 */
import type { EngineEvent } from "./ports.ts";

/** Upper bounds of the reconcile duration histogram, seconds. */
export const DURATION_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300] as const;

/** What `render` needs besides the counters kept here. */
export interface MetricsSnapshot {
  apps: ReadonlyArray<{ app: string; revision: string; syncStatus: string; healthStatus: string }>;
  /** Kubernetes request counts keyed "verb code". */
  kube: Readonly<Record<string, number>>;
}

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

/** Counters and histograms of one agent process. */
export class Metrics {
  private readonly started = new Map<string, number>();
  private readonly durations = new Map<string, Histogram>();
  private readonly syncs = new Map<string, number>();
  private readonly git = new Map<string, number>();
  private readonly drift = new Map<string, number>();
  private readonly notify = new Map<string, number>();
  private readonly startTime = Date.now() / 1000;

  /** Feeds one engine event: an attempt's start and finish make a duration and a sync count. */
  observe(event: EngineEvent): void {
    if (event.type === "started") this.started.set(event.app, performance.now());
    if (event.type !== "finished") return;
    const t0 = this.started.get(event.app);
    this.started.delete(event.app);
    const key = `${event.app}\u0000${event.outcome}`;
    this.syncs.set(key, (this.syncs.get(key) ?? 0) + 1);
    if (t0 === undefined) return;
    const seconds = (performance.now() - t0) / 1000;
    const h = this.durations.get(event.app) ?? {
      counts: DURATION_BUCKETS.map(() => 0),
      sum: 0,
      count: 0,
    };
    DURATION_BUCKETS.forEach((le, i) => {
      if (seconds <= le) h.counts[i] = (h.counts[i] ?? 0) + 1;
    });
    h.sum += seconds;
    h.count++;
    this.durations.set(event.app, h);
  }

  /** Counts one request to the Git server. */
  gitRequest(ok: boolean): void {
    const result = ok ? "success" : "error";
    this.git.set(result, (this.git.get(result) ?? 0) + 1);
  }

  /** The replica's lag in seconds, when `ledger.replica` is set. */
  replicaLag: (() => number) | undefined;

  /** Counts one drift correction of an app (fed by drift detection once it exists). */
  driftCorrected(app: string): void {
    this.drift.set(app, (this.drift.get(app) ?? 0) + 1);
  }

  /** Counts one notification delivery attempt's result: delivered, failed (will retry) or dropped. */
  notification(receiver: string, result: "delivered" | "failed" | "dropped"): void {
    const key = `${receiver}\u0000${result}`;
    this.notify.set(key, (this.notify.get(key) ?? 0) + 1);
  }

  /** Notifications waiting in the outbox, when `notify:` is set. */
  notifyPending: (() => number) | undefined;

  /** Receivers (and the forge's status outlet) whose oldest waiting delivery has failed, with how many wait. */
  notifyFailing: (() => ReadonlyArray<{ receiver: string; pending: number }>) | undefined;

  /** The exposition text: engine metrics, then process metrics. */
  render(snap: MetricsSnapshot): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) =>
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    const appNames = snap.apps.map((a) => a.app);

    family("berth_reconcile_duration_seconds", "histogram", "Duration of sync attempts, per app.");
    for (const [app, h] of this.durations) {
      DURATION_BUCKETS.forEach((le, i) => {
        out.push(`berth_reconcile_duration_seconds_bucket${labels({ app, le: String(le) })} ${h.counts[i]}`);
      });
      out.push(`berth_reconcile_duration_seconds_bucket${labels({ app, le: "+Inf" })} ${h.count}`);
      out.push(`berth_reconcile_duration_seconds_sum${labels({ app })} ${h.sum}`);
      out.push(`berth_reconcile_duration_seconds_count${labels({ app })} ${h.count}`);
    }

    family("berth_sync_total", "counter", "Finished sync attempts, per app and result.");
    for (const app of appNames)
      for (const result of ["Succeeded", "Failed"])
        out.push(
          `berth_sync_total${labels({ app, result })} ${this.syncs.get(`${app}\u0000${result}`) ?? 0}`,
        );

    family("berth_app_info", "gauge", "Always 1: each app's applied revision, sync status and health.");
    for (const a of snap.apps)
      out.push(
        `berth_app_info${labels({ app: a.app, revision: a.revision, sync_status: a.syncStatus, health_status: a.healthStatus })} 1`,
      );

    family(
      "berth_drift_total",
      "counter",
      "Out-of-band changes of fields berth owns (healed or alerted), per app.",
    );
    for (const app of appNames) out.push(`berth_drift_total${labels({ app })} ${this.drift.get(app) ?? 0}`);

    family("berth_git_requests_total", "counter", "Requests to the Git server, by result.");
    for (const result of ["success", "error"])
      out.push(`berth_git_requests_total${labels({ result })} ${this.git.get(result) ?? 0}`);

    family(
      "berth_kube_requests_total",
      "counter",
      "Requests to the Kubernetes API server, by verb and HTTP code.",
    );
    for (const [key, n] of Object.entries(snap.kube).sort()) {
      const [verb = "", code = ""] = key.split(" ");
      out.push(`berth_kube_requests_total${labels({ verb, code })} ${n}`);
    }

    if (this.replicaLag) {
      family(
        "berth_ledger_replica_lag_seconds",
        "gauge",
        "Age of the oldest ledger change not yet in the off-box replica (0: caught up).",
      );
      out.push(`berth_ledger_replica_lag_seconds ${this.replicaLag()}`);
    }

    if (this.notifyPending) {
      family(
        "berth_notifications_total",
        "counter",
        "Notification delivery attempts, per receiver and result (delivered, failed: will retry, dropped).",
      );
      for (const [key, n] of [...this.notify].sort()) {
        const [receiver = "", result = ""] = key.split("\u0000");
        out.push(`berth_notifications_total${labels({ receiver, result })} ${n}`);
      }
      family("berth_notifications_pending", "gauge", "Notifications waiting in the outbox for delivery.");
      out.push(`berth_notifications_pending ${this.notifyPending()}`);
      if (this.notifyFailing) {
        family(
          "berth_notifications_failing",
          "gauge",
          "Per receiver (status:<provider> for commit statuses) whose deliveries keep failing: how many wait.",
        );
        for (const f of this.notifyFailing())
          out.push(`berth_notifications_failing${labels({ receiver: f.receiver })} ${f.pending}`);
      }
    }

    const mem = process.memoryUsage();
    const cpu = process.cpuUsage();
    family("process_cpu_seconds_total", "counter", "User and system CPU time, seconds.");
    out.push(`process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`);
    family("process_resident_memory_bytes", "gauge", "Resident memory, bytes.");
    out.push(`process_resident_memory_bytes ${mem.rss}`);
    family("process_heap_bytes", "gauge", "JavaScript heap in use, bytes.");
    out.push(`process_heap_bytes ${mem.heapUsed}`);
    family("process_start_time_seconds", "gauge", "Start time of the process, seconds since the epoch.");
    out.push(`process_start_time_seconds ${this.startTime}`);
    return `${out.join("\n")}\n`;
  }
}

/** `{a="x",b="y"}` with label values escaped as the text format requires. */
function labels(values: Record<string, string>): string {
  const parts = Object.entries(values).map(
    ([k, v]) => `${k}="${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n")}"`,
  );
  return `{${parts.join(",")}}`;
}
