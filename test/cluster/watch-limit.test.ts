/**
 * The live view's watches per app are bounded (agent/kube/view.ts, MAX_WATCHES_PER_APP): an app whose objects
 * need more (one watch per kind and namespace, with a ServiceAccount of its own) keeps the limit's worth; the
 * view answers "ask the server" for the rest, so its syncs still succeed, reading those objects with a request
 * each; the limit is reported once per change of what the app needs.
 */
import { beforeAll, expect, test } from "bun:test";
import type { Wired } from "../../agent/cli/wire.ts";
import { LiveView } from "../../agent/kube/view.ts";
import { syncApp } from "../support/berth.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { configMapYaml, secretYaml } from "../support/manifests.ts";

const t = useClusterTest({ prefix: "wlimit", createNamespace: true });
const ns = t.ns;
const app = ns;
const ref = (kind: string, name: string) => ({ group: "", version: "v1", kind, namespace: ns, name });
const refs = [ref("ConfigMap", "settings"), ref("ServiceAccount", "runner"), ref("Secret", "token")];
let w: Wired;

beforeAll(async () => {
  t.commit({
    "app/cm.yaml": configMapYaml("settings", "one"),
    "app/sa.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: runner\n",
    "app/secret.yaml": secretYaml("token", { t: "x" }),
  });
  w = await t.wire(t.writeConfig([{ name: app, path: "app", namespace: ns }], { source: "interval: 1h" }));
  expect((await syncApp(w, app)).outcome).toBe("Succeeded");
}, 600_000);

test("past its limit an app's other kinds go unwatched: read from the server, its syncs unchanged, reported once", async () => {
  const reported: Array<[string, number, number]> = [];
  const view = new LiveView(w.kube, {
    maxWatchesPerApp: 2,
    onWatchLimit: (a, wanted, limit) => reported.push([a, wanted, limit]),
  });
  t.onTeardown(() => view.close());
  await view.track(app, refs);
  expect(view.watches).toBe(2);
  expect(view.lookup(app, refs[0] as (typeof refs)[0])?.metadata.name).toBe("settings");
  expect(view.lookup(app, refs[1] as (typeof refs)[0])?.metadata.name).toBe("runner");
  // The Secret exists, but its kind is not watched: "not known here".
  expect(t.inNs("get", "secret", "token", "-o", "name").trim()).toBe("secret/token");
  expect(view.lookup(app, refs[2] as (typeof refs)[0])).toBeUndefined();
  await view.track(app, refs);
  expect(reported).toEqual([[app, 3, 2]]);
  // A sync through the view still plans every object (the Secret with requests) and succeeds.
  w.deps.live = view;
  const result = await syncApp(w, app);
  delete w.deps.live;
  expect(result.outcome).toBe("Succeeded");
  expect(view.watches).toBe(2);
  expect(reported).toEqual([[app, 3, 2]]);
}, 120_000);

test("an app's watches follow its objects: a kind it no longer has is let go, and frees its place", async () => {
  const view = new LiveView(w.kube, { maxWatchesPerApp: 2 });
  t.onTeardown(() => view.close());
  const [cm, sa, secret] = refs as [(typeof refs)[0], (typeof refs)[0], (typeof refs)[0]];
  await view.track(app, [cm, sa]);
  expect(view.lookup(app, secret)).toBeUndefined();
  // The ServiceAccount left the app (say, pruned): its watch stops, and the Secret's takes the place.
  await view.track(app, [cm, secret]);
  expect(view.watches).toBe(2);
  expect(view.lookup(app, secret)?.metadata.name).toBe("token");
  expect(view.lookup(app, sa)).toBeUndefined();
  await view.track(app, [cm]);
  expect(view.watches).toBe(1);
  expect(view.lookup(app, cm)?.metadata.name).toBe("settings");
}, 120_000);
