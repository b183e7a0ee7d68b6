/**
 * Drives the Ledger API the way the engine records syncs, without a cluster: an app of N ConfigMaps, no-op
 * resyncs and one-object changes, with a pinned clock. Shared by the ledger tests and
 * scripts/bench/ledger-growth.ts.
 */
import type { Ledger } from "../../agent/ledger/ledger.ts";
import { type KubeObject, objectId, refOf } from "../../agent/object/object.ts";
import { compareApplyOrder } from "../../agent/object/order.ts";
import type { ObjectRecord } from "../../agent/object/records.ts";

/** An app of `size` ConfigMaps whose values can be changed one at a time. */
export class SimApp {
  readonly name: string;
  private readonly values: string[];
  private revision = 1;
  private cached: KubeObject[] | undefined;
  /** Digests of the last sync's manifests, by object id. */
  digests = new Map<string, string>();

  constructor(name: string, size: number) {
    this.name = name;
    this.values = Array.from({ length: size }, () => "v0");
  }

  /** The desired objects, in apply order (as a plan records them). */
  objects(): KubeObject[] {
    this.cached ??= this.values
      .map(
        (value, i): KubeObject => ({
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: {
            name: `cm-${String(i).padStart(5, "0")}`,
            namespace: "default",
            labels: { app: this.name },
          },
          // ~300 bytes of data, roughly a small ConfigMap.
          data: { value, padding: "x".repeat(300) },
        }),
      )
      .sort((a, b) => compareApplyOrder(refOf(a), refOf(b)));
    return this.cached;
  }

  /** Changes object i; returns its id. */
  change(i: number): string {
    this.values[i] = `v${this.revision + 1}-${i}`;
    this.revision++;
    this.cached = undefined;
    return objectId(refOf(this.objects()[i] as KubeObject));
  }

  get rev(): string {
    return `main@sha1:${this.revision.toString(16).padStart(40, "0")}`;
  }
}

/** What a simulated sync recorded. */
export interface SimSync {
  /** The id the attempt was recorded under (a folded no-op: the entry it verified). */
  entry: number;
  /** The records handed to finish, exactly. */
  records: ObjectRecord[];
}

/**
 * One sync of the app as the engine records it: begin, putManifests, finish with a record per object
 * ("configured" for the changed ids, "created" on the first sync, else "unchanged"), health Current.
 */
export async function simSync(
  ledger: Ledger,
  app: SimApp,
  options: {
    changed?: ReadonlySet<string>;
    first?: boolean;
    /**
     * Store only the changed manifests, reusing the others' digests from the last sync. The engine stores all
     * of them every sync, but storing an existing blob writes nothing (INSERT OR IGNORE): this only saves
     * hashing time in long simulations.
     */
    storeChangedOnly?: boolean;
    /** The attempt's trigger (default "loop", the agent's own resync). */
    trigger?: string;
  } = {},
): Promise<SimSync> {
  const objects = app.objects();
  const begun = ledger.begin({
    app: app.name,
    revision: app.rev,
    commit: {
      sha: app.rev.slice(-40),
      author: "dev <dev@x>",
      message: "change",
      time: "2026-01-01T00:00:00Z",
    },
    trigger: options.trigger ?? "loop",
  });
  const known = app.digests;
  const toStore =
    options.storeChangedOnly && known.size > 0
      ? objects.filter((o) => options.changed?.has(objectId(refOf(o))))
      : objects;
  const digests = new Map([
    ...(options.storeChangedOnly ? known : []),
    ...(await ledger.putManifests(toStore)),
  ]);
  app.digests = digests;
  const records: ObjectRecord[] = objects.map((o) => {
    const id = objectId(refOf(o));
    const action = options.first ? "created" : options.changed?.has(id) ? "configured" : "unchanged";
    return { ref: refOf(o), action, health: "Current", digest: digests.get(id) ?? "" };
  });
  const s = records.filter((r) => r.action !== "unchanged").length;
  const entry = ledger.finish(begun, {
    outcome: "Succeeded",
    reason: "Succeeded",
    message: `${options.first ? s : 0} created, ${options.first ? 0 : s} configured`,
    renderedDigest: `sha256:${app.rev.slice(-40).padStart(64, "0")}`,
    objects: records,
    health: "Current",
    timings: { render: 3, plan: 40, apply: s, health: 2 },
    inventory: records.map((r) => ({ ref: r.ref, digest: r.digest ?? "" })),
  });
  return { entry, records };
}

/** A clock that moves only when told. */
export class SimClock {
  private t: number;
  constructor(start = Date.parse("2026-01-01T09:00:00Z")) {
    this.t = start;
  }
  now = (): Date => new Date(this.t);
  advance(ms: number): void {
    this.t += ms;
  }
}
