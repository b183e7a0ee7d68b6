/**
 * Leader election over a Lease, as client-go does it: the holder renews every duration/3; a standby takes
 * over only after it has seen the same lease record unchanged for a whole duration (measured on its own
 * clock, so clock skew between machines does not matter); every write quotes the resourceVersion it read, so
 * of two instances taking over at once exactly one wins. The leader stops calling itself leader when it has
 * not renewed for 2/3 of the duration — before any standby may take over — so two never apply at once.
 */
import { hostname } from "node:os";
import { messageOf } from "../object/errors.ts";
import type { LeaseRecord } from "../object/lease.ts";
import type { Logger } from "./log.ts";
import type { LeasePort } from "./ports.ts";

/** Settings of one elector. */
export interface LeaderOptions {
  identity: string;
  /** Lease duration, ms (whole seconds are written to the Lease). */
  duration: number;
  log: Logger;
  /** Called when this instance becomes leader (true) or stops being leader (false). */
  onChange?: (leader: boolean) => void;
  now?: () => number;
}

/** Kubernetes MicroTime: RFC 3339 with exactly six fractional digits. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/** Elects one leader among instances sharing a Lease; `isLeader()` gates writes. */
export class LeaderElector {
  private renewedAt = Number.NEGATIVE_INFINITY;
  private observed: { key: string; at: number } | undefined;
  private leader = false;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private stopped = false;
  private readonly now: () => number;

  constructor(
    private readonly lease: LeasePort,
    private readonly options: LeaderOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  /** True while this instance holds the Lease and renewed it within 2/3 of its duration. */
  isLeader(): boolean {
    const fresh = this.now() - this.renewedAt < (this.options.duration * 2) / 3;
    if (this.leader && !fresh) this.setLeader(false);
    return this.leader;
  }

  /** Starts trying to acquire and renew, every duration/3, until stop(). */
  start(): void {
    const round = async () => {
      if (this.stopped) return;
      await this.tryAcquireOrRenew().catch((err) =>
        this.options.log.log("warn", "leader election: cannot reach the Lease", { error: messageOf(err) }),
      );
      this.isLeader();
      if (!this.stopped) this.timer = setTimeout(round, this.options.duration / 3);
    };
    void round();
  }

  /** Stops renewing; a leader releases the Lease so a standby need not wait out the duration. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (!this.leader) return;
    this.setLeader(false);
    const current = await this.lease.get().catch(() => undefined);
    if (current?.spec.holderIdentity !== this.options.identity) return;
    await this.lease
      .update(
        { ...current.spec, holderIdentity: "", renewTime: microTime(this.now()), leaseDurationSeconds: 1 },
        current.resourceVersion,
      )
      .catch(() => false);
  }

  /** One election round: create, renew or take over the Lease; resolves to whether this instance leads. */
  async tryAcquireOrRenew(): Promise<boolean> {
    const me = this.options.identity;
    const now = this.now();
    const seconds = Math.max(1, Math.round(this.options.duration / 1000));
    const current = await this.lease.get();
    if (!current) {
      const ok = await this.lease.create({
        holderIdentity: me,
        leaseDurationSeconds: seconds,
        acquireTime: microTime(now),
        renewTime: microTime(now),
        leaseTransitions: 0,
      });
      return this.after(ok, now);
    }
    const spec = current.spec;
    const key = `${spec.holderIdentity}|${spec.renewTime}|${current.resourceVersion}`;
    if (this.observed?.key !== key) this.observed = { key, at: now };
    const held = spec.holderIdentity && spec.holderIdentity !== me;
    const leaseMs = (spec.leaseDurationSeconds ?? seconds) * 1000;
    if (held && now - this.observed.at < leaseMs) return this.after(false, now);
    const next: LeaseRecord =
      spec.holderIdentity === me
        ? { ...spec, leaseDurationSeconds: seconds, renewTime: microTime(now) }
        : {
            holderIdentity: me,
            leaseDurationSeconds: seconds,
            acquireTime: microTime(now),
            renewTime: microTime(now),
            leaseTransitions: (spec.leaseTransitions ?? 0) + 1,
          };
    return this.after(await this.lease.update(next, current.resourceVersion), now);
  }

  private after(ok: boolean, at: number): boolean {
    if (ok) this.renewedAt = at;
    this.setLeader(ok);
    return ok;
  }

  private setLeader(leader: boolean): void {
    if (leader === this.leader) return;
    this.leader = leader;
    this.options.log.log("info", leader ? "became the leader" : "no longer the leader; standing by", {
      identity: this.options.identity,
    });
    this.options.onChange?.(leader);
  }
}

/** This instance's name in the Lease: the pod name in a cluster, else host name and process id. */
export function leaderIdentity(env: NodeJS.ProcessEnv = process.env): string {
  return env.POD_NAME || `${hostname()}-${process.pid}`;
}
