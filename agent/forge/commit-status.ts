/**
 * `status:` in berth.yaml: the commit status `berth/<app>` on the commit each sync applies — pending when the
 * sync starts, success when healthy, failure with the reason (a hold is pending: "held: …"). Statuses go
 * through the notification outbox (agent/notify/notifier.ts), so a forge that is down never fails or stalls a
 * sync: the status is retried with backoff and a newer one for the same commit replaces it.
 *
 * A resync that changes nothing sets nothing: a status is posted only when the commit or what it says
 * changes (forges cap statuses per commit and context — GitHub at 1000).
 */
import type { LedgerEntry } from "../ledger/entry.ts";
import { reasonOfEntry } from "../notify/event.ts";
import type { Outlet, OutletPayload } from "../notify/notifier.ts";
import type { CommitStatus, ForgeClient, StatusState } from "./forge.ts";

/** The context of an app's status. */
export function contextOf(app: string): string {
  return `berth/${app}`;
}

/** The status of a sync that started on `sha`. */
export function startedStatus(app: string, sha: string, link: string): CommitStatus {
  return { sha, context: contextOf(app), state: "pending", description: "syncing", targetUrl: link };
}

/** The status of a finished sync, or undefined when it has no commit (the fetch failed). */
export function finishedStatus(e: LedgerEntry, link: string): CommitStatus | undefined {
  const sha = e.commit?.sha ?? e.commitSha;
  if (!sha) return undefined;
  const msg = (e.message ?? "").replace(/\s+/g, " ").trim();
  let state: StatusState;
  let description: string;
  if (e.outcome === "Succeeded") {
    state = "success";
    description = e.health && e.health !== "Current" ? `synced; health ${e.health}` : "synced and healthy";
  } else if (e.reason === "Interrupted") {
    state = "error";
    description = "interrupted before it finished";
  } else {
    const reason = reasonOfEntry(e);
    if (reason === "HeldForApproval") {
      state = "pending";
      description = `held: ${msg}`;
    } else if (reason === "DeniedByRule") {
      state = "failure";
      description = `denied by rule: ${msg}`;
    } else if (reason === "HealthDegraded") {
      state = "failure";
      description = `health failed: ${msg}`;
    } else {
      state = "failure";
      description = `${(e.reason ?? "Failed").replace(/Failed$/, " failed").toLowerCase()}: ${msg}`;
    }
  }
  return { sha, context: contextOf(e.app), state, description, targetUrl: link };
}

/** The outbox payload of a status: keyed by commit and context, so a newer one replaces an undelivered older. */
export function statusPayload(app: string, s: CommitStatus): OutletPayload {
  return { app, reason: `status ${s.state}`, key: `${s.sha}|${s.context}`, status: s };
}

/**
 * The outlet that delivers statuses to the forge of a source: `status:<provider>` for the default source (the
 * name outbox rows of earlier versions carry), `status:<provider>:<source>` for another.
 */
export function statusOutlet(forge: ForgeClient, source = "default"): Outlet {
  return {
    name: `status:${forge.provider}${source === "default" ? "" : `:${source}`}`,
    // Forges allow thousands of requests an hour; this only keeps a backlog from arriving as a burst.
    rateLimit: 120,
    send: async (payload) => {
      await forge.setStatus(payload.status as CommitStatus);
    },
  };
}

/**
 * Decides which statuses to post as syncs start and finish: remembers what was last posted per app, so a
 * no-op resync of a commit already marked success posts nothing.
 */
export class StatusTracker {
  private readonly last = new Map<string, { sha: string; state: StatusState; description: string }>();

  /** A sync started: pending, unless the commit is already marked (a resync). */
  started(app: string, sha: string, link: string): CommitStatus | undefined {
    const prev = this.last.get(app);
    if (prev?.sha === sha) return undefined;
    return this.remember(app, startedStatus(app, sha, link));
  }

  /** A sync finished: its status, unless the same was posted last. */
  finished(e: LedgerEntry, link: string): CommitStatus | undefined {
    const s = finishedStatus(e, link);
    if (!s) return undefined;
    const prev = this.last.get(e.app);
    if (prev && prev.sha === s.sha && prev.state === s.state && prev.description === s.description)
      return undefined;
    return this.remember(e.app, s);
  }

  private remember(app: string, s: CommitStatus): CommitStatus {
    this.last.set(app, { sha: s.sha, state: s.state, description: s.description });
    return s;
  }
}
