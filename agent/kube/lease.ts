/** coordination.k8s.io/v1 Lease calls for leader election, over KubeClient's counted raw-JSON requests. */
import type { LeaseRecord, LeaseState } from "../object/lease.ts";
import { KubeApiError, type KubeClient } from "./client.ts";

/** Lease calls for one Lease: namespace/name; the engine's `LeasePort`. */
export class KubeLeases {
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
