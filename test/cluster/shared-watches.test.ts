/**
 * `berth run`'s live view shares one watch per kind among the apps on the agent's own client (agent/kube/view.ts):
 * two apps of ConfigMaps are one ConfigMap watch, not two. Each app still sees only the objects labelled with
 * its name; drift is reported to, and healed for, the app that owns the object; an object relabelled to the other
 * app leaves the first app's view (which then heals it back, as it would any object that left its selector).
 * Objects of apps the agent does not run (another agent's) are neither listed nor held; an app that joins later
 * is watched with the others.
 */
import { beforeAll, expect, test } from "bun:test";
import { type DriftWiring, type Wired, wireDrift } from "../../agent/cli/wire.ts";
import type { DriftReport } from "../../agent/drift/drift.ts";
import { silentLogger } from "../../agent/engine/log.ts";
import { syncApp } from "../support/berth.ts";
import { eventually } from "../support/cluster.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { configMapYaml } from "../support/manifests.ts";

const t = useClusterTest({ prefix: "shared", createNamespace: true });
const ns = t.ns;
const A = `${ns}-a`;
const B = `${ns}-b`;
const OTHER = `${ns}-other`; // another agent's app
const LATE = `${ns}-late`; // an app that joins after the watch started
const ref = (name: string) => ({ group: "", version: "v1", kind: "ConfigMap", namespace: ns, name });
let w: Wired;
let drift: DriftWiring;
const reports: DriftReport[] = [];

/** A ConfigMap labelled as berth's, of `app`, made outside this agent. */
function labelled(name: string, app: string) {
  t.inNs("create", "configmap", name, "--from-literal=greeting=elsewhere");
  t.inNs("label", "configmap", name, `berth.dev/app=${app}`, "app.kubernetes.io/managed-by=berth");
}

beforeAll(async () => {
  labelled("other-settings", OTHER);
  labelled("late-settings", LATE);
  t.commit({
    "a/cm.yaml": configMapYaml("a-settings", "one"),
    "b/cm.yaml": configMapYaml("b-settings", "two"),
  });
  const config = t.writeConfig(
    [
      { name: A, path: "a", namespace: ns, drift: "heal" },
      { name: B, path: "b", namespace: ns, drift: "heal" },
    ],
    { source: "ref: main, interval: 1h" },
  );
  w = await t.wire(config);
  drift = wireDrift(w, silentLogger, (r) => reports.push(r));
  t.onTeardown(() => drift.close());
  expect((await syncApp(w, A)).outcome).toBe("Succeeded");
  expect((await syncApp(w, B)).outcome).toBe("Succeeded");
}, 600_000);

test("two apps of one kind share one watch; each sees only its own objects", async () => {
  await eventually("both apps' views connected", 15_000, async () =>
    drift.view.connected(A) && drift.view.connected(B) ? true : undefined,
  );
  expect(drift.view.watches).toBe(1);
  expect(drift.view.lookup(A, ref("a-settings"))?.data).toEqual({ greeting: "one" });
  expect(drift.view.lookup(A, ref("b-settings"))).toBeUndefined();
  expect(drift.view.lookup(B, ref("b-settings"))?.data).toEqual({ greeting: "two" });
  expect(drift.view.objectsOf(A).map((o) => o.metadata.name)).toEqual(["a-settings"]);
  expect(drift.view.objectsOf(B).map((o) => o.metadata.name)).toEqual(["b-settings"]);
  // Nothing else is held: not another agent's app's objects, nor those of any other test on this cluster.
  expect(drift.view.size).toBe(2);
});

test("an app that joins later is watched with the others, in the same one watch", async () => {
  await drift.view.track(LATE, [ref("late-settings")]);
  await eventually("the joined app's view connected", 15_000, async () =>
    drift.view.connected(LATE) && drift.view.connected(A) ? true : undefined,
  );
  expect(drift.view.watches).toBe(1);
  expect(drift.view.lookup(LATE, ref("late-settings"))?.data).toEqual({ greeting: "elsewhere" });
  expect(drift.view.lookup(A, ref("a-settings"))?.data).toEqual({ greeting: "one" });
  expect(drift.view.lookup(OTHER, ref("other-settings"))).toBeUndefined();
  expect(drift.view.size).toBe(3);
}, 60_000);

test("drift is reported to and healed for the app that owns the object", async () => {
  const t0 = performance.now();
  t.inNs("patch", "configmap", "b-settings", "-p", '{"data":{"greeting":"tampered"}}');
  const healed = await eventually("b's drift healed", 30_000, async () =>
    reports.find((r) => r.subject === `ConfigMap/${ns}/b-settings` && r.seenAt >= t0),
  );
  expect(healed).toMatchObject({ app: B, action: "healed", fields: ["/data/greeting"] });
  expect(reports.filter((r) => r.app === A && r.seenAt >= t0)).toEqual([]);
  await eventually("b's value back", 15_000, async () =>
    (drift.view.lookup(B, ref("b-settings"))?.data as { greeting?: string } | undefined)?.greeting === "two"
      ? true
      : undefined,
  );
}, 60_000);

test("an object relabelled to the other app leaves the first app's view, which heals it back", async () => {
  const t0 = performance.now();
  t.inNs("label", "configmap", "a-settings", `berth.dev/app=${B}`, "--overwrite");
  const report = await eventually("a's object seen gone", 30_000, async () =>
    reports.find((r) => r.subject === `ConfigMap/${ns}/a-settings` && r.seenAt >= t0),
  );
  expect(report.app).toBe(A);
  await eventually("the label healed back to a", 30_000, async () =>
    drift.view.lookup(A, ref("a-settings"))?.metadata.labels?.["berth.dev/app"] === A ? true : undefined,
  );
  expect(drift.view.objectsOf(B).map((o) => o.metadata.name)).toEqual(["b-settings"]);
  expect(drift.view.watches).toBe(1);
}, 60_000);
