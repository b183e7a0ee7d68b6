/**
 * The drift watcher of `berth run`: fed every change the live view sees, it finds drift on managed
 * fields, asks the app's drift policy, re-applies only the affected objects (heal) or leaves them
 * (alert), and records every event in the ledger and the metrics. While an app's sync is in flight
 * its changes wait, and are judged after the sync against its new inventory (a prune is not drift).
 */
import { messageOf } from "../object/errors.ts";
import { type KubeObject, type ObjectRef, objectId, subject } from "../object/object.ts";
import type { DriftRecord } from "../object/records.ts";
import { type DriftFinding, detectDrift } from "./detect.ts";
import type { DriftPolicy } from "./policy.ts";

/** A change seen by the live view (agent/kube/view.ts ViewChange). */
export interface DriftChange {
  app: string;
  ref: ObjectRef;
  before?: KubeObject;
  after?: KubeObject;
}

/** What the watcher needs from the cluster, the ledger and the rest of the agent. */
export interface DriftDeps {
  /** Reads and heals go out as the app's identity (its ServiceAccount), as its syncs do. */
  get(ref: ObjectRef, app: string): Promise<KubeObject | undefined>;
  apply(obj: KubeObject, options: { force?: boolean }, app: string): Promise<KubeObject>;
  /** The object in the app's inventory (the ledger's row for it), if the app owns it. */
  owned(app: string, ref: ObjectRef): { ref: ObjectRef; digest: string } | undefined;
  getManifest(digest: string): Promise<KubeObject | undefined>;
  recordDrift(event: DriftRecord): number;
  policyOf(app: string): DriftPolicy | undefined;
  onDrift?: (event: DriftReport) => void;
  log?: (level: "info" | "warn" | "error", message: string, fields: Record<string, unknown>) => void;
}

/** One recorded drift, as reported to listeners. */
export interface DriftReport {
  id: number;
  app: string;
  subject: string;
  manager: string;
  fields: string[];
  action: "healed" | "alerted" | "heal-failed";
  message?: string;
  /** When the change was seen, and when berth finished acting on it (performance.now(), ms). */
  seenAt: number;
  doneAt: number;
}

/** Finds, decides on and records drift; one instance per agent. */
export class DriftWatcher {
  private readonly busy = new Set<string>();
  private readonly pending = new Map<string, Map<string, DriftChange & { seenAt: number }>>();
  private readonly inflight = new Set<Promise<void>>();

  constructor(private readonly deps: DriftDeps) {}

  /** Marks an app's sync as started: its changes wait until `syncFinished`. */
  syncStarted(app: string): void {
    this.busy.add(app);
  }

  /** Marks an app's sync as finished and judges the changes that waited. */
  syncFinished(app: string): void {
    this.busy.delete(app);
    const waiting = this.pending.get(app);
    this.pending.delete(app);
    for (const c of waiting?.values() ?? []) this.track(this.handle(c, c.seenAt));
  }

  /** Feeds one change of the live view. */
  observe(change: DriftChange): void {
    const seenAt = performance.now();
    if (!this.deps.policyOf(change.app)) return;
    if (this.busy.has(change.app)) {
      const queue = this.pending.get(change.app) ?? new Map();
      const id = objectId(change.ref);
      const first = queue.get(id);
      // Keep the oldest "before" so a burst of changes compares with berth's last known state.
      queue.set(id, {
        ...change,
        ...(first?.before ? { before: first.before } : {}),
        seenAt: first?.seenAt ?? seenAt,
      });
      this.pending.set(change.app, queue);
      return;
    }
    this.track(this.handle(change, seenAt));
  }

  /** Resolves when every drift being handled is done (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
  }

  private track(p: Promise<void>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private async handle(change: DriftChange, seenAt: number): Promise<void> {
    const { app, ref } = change;
    try {
      const inInventory = () => this.deps.owned(app, ref);
      let owned: ReturnType<typeof inInventory>;
      let after = change.after;
      // Gone from the watch: deleted, or relabelled out of berth's selector (then its fields tell who). Asked
      // only of an owned object: a prune's deletion (or a same-named app's elsewhere) costs no request.
      if (!after && change.before) {
        owned = inInventory();
        if (!owned) return;
        after = await this.deps.get(ref, app);
      }
      const finding = detectDrift(ref, change.before, after);
      if (!finding) return;
      owned ??= inInventory();
      if (!owned) return; // pruned or no longer desired: not drift
      await this.act(app, finding, owned.digest, seenAt);
    } catch (err) {
      this.deps.log?.("error", "drift handling failed", { app, object: subject(ref), error: messageOf(err) });
    }
  }

  private async act(app: string, finding: DriftFinding, digest: string, seenAt: number): Promise<void> {
    const policy = this.deps.policyOf(app);
    if (!policy) return;
    const decision = policy.decide(finding);
    if (decision.action === "ignore") return;
    let action: DriftReport["action"] = "alerted";
    let message = decision.rule ? `decided by ${decision.rule}` : undefined;
    if (decision.action === "heal") {
      try {
        const manifest = await this.deps.getManifest(digest);
        if (!manifest) throw new Error(`manifest ${digest} is not in the ledger`);
        if (manifest.kind === "Secret" && manifest.apiVersion === "v1" && isRedacted(manifest)) {
          throw new Error("the ledger holds this Secret redacted (no ledger key), so it cannot be restored");
        }
        // Reclaim with force: the object is berth's, and the fields were taken out of band.
        await this.deps.apply(manifest, { force: true }, app);
        action = "healed";
      } catch (err) {
        action = "heal-failed";
        message = messageOf(err);
      }
    }
    const fields = decision.fields;
    const id = this.deps.recordDrift({
      app,
      ref: finding.ref,
      manager: finding.manager,
      fields,
      action,
      ...(message ? { message } : {}),
    });
    const report: DriftReport = {
      id,
      app,
      subject: subject(finding.ref),
      manager: finding.manager,
      fields,
      action,
      seenAt,
      doneAt: performance.now(),
      ...(message ? { message } : {}),
    };
    this.deps.log?.(action === "heal-failed" ? "warn" : "info", `drift ${action}`, {
      app,
      object: report.subject,
      manager: finding.manager,
      fields,
    });
    this.deps.onDrift?.(report);
  }
}

/** True when a stored Secret manifest had its values replaced by digests (a ledger without a key). */
function isRedacted(secret: KubeObject): boolean {
  const values = [
    ...Object.values((secret.data as Record<string, string> | undefined) ?? {}),
    ...Object.values((secret.stringData as Record<string, string> | undefined) ?? {}),
  ];
  // hmac-sha256: under the ledger's digest key; sha256: in ledgers written before it.
  return values.some((v) => typeof v === "string" && /^(hmac-sha256|sha256):/.test(v));
}
