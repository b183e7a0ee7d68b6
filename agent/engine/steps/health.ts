/** 6. Wait until every desired object is healthy, or the app's timeout passes. */
import { joinMessages } from "../../object/message.ts";
import { type ObjectRef, objectId } from "../../object/object.ts";
import { waitHealthy } from "../../wait/wait.ts";
import { type Planned, type Stop, timed } from "../attempt.ts";
import type { EngineDeps } from "../ports.ts";

/** Waits for the desired objects' health and records it on each; names every object not healthy. */
export async function waitForHealth(deps: EngineDeps, a: Planned): Promise<Stop | undefined> {
  const { app, records } = a;
  // What apply wrote, by object id: the wait must not judge a watch view's older copy.
  const appliedVersions = new Map<string, string>();
  for (const o of a.applied) {
    const version = o.result?.metadata.resourceVersion;
    if (version) appliedVersions.set(objectId(o.ref), version);
  }
  const targets = a.plan.changes
    .filter((c) => c.desired)
    .map((c) => {
      const appliedVersion = appliedVersions.get(c.id);
      return { ref: c.ref, subject: c.subject, ...(appliedVersion ? { appliedVersion } : {}) };
    });
  const live = deps.live;
  const waited = await timed(deps, a, "health", () =>
    waitHealthy(targets, deps.cluster, deps.health, {
      timeoutMs: app.timeout,
      ...(live ? { view: (ref: ObjectRef) => live.lookup(app.name, ref) } : {}),
      ...(a.signal ? { signal: a.signal } : {}),
      onProgress: (pending) =>
        deps.emit?.({
          type: "waiting",
          app: app.name,
          pending: pending.map((p) => ({ subject: p.subject, status: p.status, message: p.message })),
        }),
    }),
  );
  a.health = waited.objects;
  for (const h of waited.objects) {
    const rec = records.get(objectId(h.ref));
    if (rec) {
      rec.health = h.status;
      if (h.status !== "Current") rec.message = h.message;
    }
  }
  if (waited.healthy) return undefined;
  if (a.signal?.aborted) return { reason: "Interrupted", message: "stopped while waiting for health" };
  const bad = waited.objects.filter((o) => o.status !== "Current");
  const why = waited.timedOut ? `not healthy after ${Math.round(app.timeout / 1000)}s` : "failed";
  const message = joinMessages(
    bad.map((o) => ({ subject: `${o.subject} is ${o.status}`, message: o.message })),
    { prefix: `${why}: ` },
  );
  return { reason: "HealthCheckFailed", message };
}
