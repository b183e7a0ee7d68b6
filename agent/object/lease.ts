/** A coordination.k8s.io/v1 Lease as leader election sees it. */

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
