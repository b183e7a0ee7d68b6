/** coordination.k8s.io/v1 Lease calls for leader election, over KubeClient's counted raw-JSON requests. */
import { KubeApiError, type KubeClient } from "./client.ts";

/** The part of a Lease leader election reads and writes. */
export interface LeaseRecord {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** A Lease as read: its spec and the resourceVersion an update must quote (optimistic concurrency). */
export interface LeaseState {
  spec: LeaseRecord;
  resourceVersion: string;
}

/** What the leader elector needs; KubeLeases implements it against the API server. */
export interface LeasePort {
  /** The Lease, or undefined when it does not exist. */
  get(): Promise<LeaseState | undefined>;
  /** Creates it; false when someone else created it first. */
  create(spec: LeaseRecord): Promise<boolean>;
  /** Replaces it if still at `resourceVersion`; false when someone else changed it first. */
  update(spec: LeaseRecord, resourceVersion: string): Promise<boolean>;
}

/** Lease calls for one Lease: namespace/name. */
export class KubeLeases implements LeasePort {
  constructor(
    private readonly kube: KubeClient,
    private readonly namespace: string,
    private readonly name: string,
  ) {}

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases`;
  }

  /** Reads the Lease. */
  async get(): Promise<LeaseState | undefined> {
    try {
      const lease = (await this.kube.request(
        "lease-get",
        "GET",
        `${this.path}/${encodeURIComponent(this.name)}`,
      )) as {
        metadata: { resourceVersion: string };
        spec?: LeaseRecord;
      };
      return { spec: lease.spec ?? {}, resourceVersion: lease.metadata.resourceVersion };
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** Creates the Lease. */
  async create(spec: LeaseRecord): Promise<boolean> {
    return this.conflictIsFalse(() =>
      this.kube.request("lease-create", "POST", this.path, JSON.stringify(this.body(spec)), {
        "Content-Type": "application/json",
      }),
    );
  }

  /** Updates the Lease at a resourceVersion. */
  async update(spec: LeaseRecord, resourceVersion: string): Promise<boolean> {
    return this.conflictIsFalse(() =>
      this.kube.request(
        "lease-update",
        "PUT",
        `${this.path}/${encodeURIComponent(this.name)}`,
        JSON.stringify(this.body(spec, resourceVersion)),
        { "Content-Type": "application/json" },
      ),
    );
  }

  private body(spec: LeaseRecord, resourceVersion?: string): object {
    return {
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: {
        name: this.name,
        namespace: this.namespace,
        ...(resourceVersion ? { resourceVersion } : {}),
      },
      spec,
    };
  }

  private async conflictIsFalse(call: () => Promise<unknown>): Promise<boolean> {
    try {
      await call();
      return true;
    } catch (err) {
      // 409: another instance created or updated the Lease between our read and write.
      if (err instanceof KubeApiError && err.status === 409) return false;
      throw err;
    }
  }
}
