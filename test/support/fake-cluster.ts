/**
 * The one fake cluster of the unit tests (test/unit/apply-stage.test.ts, prune-stage.test.ts, apply-record.test.ts,
 * reconcile-reasons.test.ts): the engine's ClusterPort over a Map, storing what it acknowledges, with hooks to
 * fail, observe or hold writes. Integration tests use the real control plane instead (test/support/cluster.ts).
 */
import type { ClusterPort } from "../../agent/engine/ports.ts";
import { type KubeObject, type ObjectRef, refOf } from "../../agent/object/object.ts";
import { stageOf } from "../../agent/object/order.ts";

/** `Kind/namespace/name`, the fake's key for an object. */
export const key = (ref: Pick<ObjectRef, "kind" | "namespace" | "name">) =>
  `${ref.kind}/${ref.namespace}/${ref.name}`;

/** A minimal object of any kind, namespaced when `namespace` is given. */
export function objectOf(apiVersion: string, kind: string, name: string, namespace?: string): KubeObject {
  return { apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } };
}

/** A planned change of `obj` as apply and prune read it: its stage, and no desired object when deleted. */
export function changeOf(obj: KubeObject, action = "created") {
  const ref = refOf(obj);
  return {
    ref,
    subject: key(ref),
    action,
    stage: stageOf(ref),
    owned: false,
    ...(action === "deleted" ? {} : { desired: obj }),
  };
}

const tick = () => new Promise((r) => setTimeout(r, 1));

/**
 * A cluster that stores what it acknowledges. `onWrite` sees each write arrive; `fault` decides, per write about to
 * be answered, whether it fails (and how); `onAck` sees each acknowledgement (a test may stop the sync there);
 * `hold` keeps writes unanswered.
 */
export class FakeCluster implements ClusterPort {
  readonly live = new Map<string, KubeObject>();
  /** Writes the server acknowledged, in order (apply and delete). */
  readonly acked: string[] = [];
  /** Every write that reached the server, answered or not. */
  readonly received: string[] = [];
  fault: ((obj: { kind: string; namespace: string; name: string }) => Error | undefined) | undefined;
  /** Sees each write (not dry-runs) as it arrives, with its options. */
  onWrite: ((obj: KubeObject, options: { force?: boolean }) => void) | undefined;
  onAck: ((n: number) => void) | undefined;
  hold = false;

  resource(_group: string, _version: string, kind: string) {
    return { namespaced: kind !== "Namespace" };
  }
  async discover(_force?: boolean): Promise<void> {}
  async get(ref: ObjectRef): Promise<KubeObject | undefined> {
    return this.live.get(key(ref));
  }
  async apply(
    obj: KubeObject,
    options: { dryRun?: boolean; force?: boolean; signal?: AbortSignal },
  ): Promise<KubeObject> {
    const k = key(refOf(obj));
    if (options.dryRun) {
      // As the server answers: an existing object comes back with its resourceVersion.
      const rv = this.live.get(k)?.metadata.resourceVersion;
      return rv ? { ...obj, metadata: { ...obj.metadata, resourceVersion: rv } } : obj;
    }
    this.onWrite?.(obj, options);
    await tick();
    const err = this.fault?.({
      kind: obj.kind,
      namespace: obj.metadata.namespace ?? "",
      name: obj.metadata.name,
    });
    if (err) throw err;
    this.received.push(k);
    if (this.hold) {
      await new Promise((_r, reject) =>
        options.signal?.addEventListener("abort", () => reject(new Error("The operation timed out."))),
      );
    }
    const stored = { ...obj, metadata: { ...obj.metadata, resourceVersion: String(this.acked.length + 1) } };
    this.live.set(k, stored);
    this.acked.push(k);
    this.onAck?.(this.acked.length);
    return stored;
  }
  async delete(ref: ObjectRef, _options?: { signal?: AbortSignal }): Promise<boolean> {
    await tick();
    const err = this.fault?.(ref);
    if (err) throw err;
    this.acked.push(`delete ${key(ref)}`);
    return this.live.delete(key(ref));
  }
}
