/**
 * The compiled binary's `berth run` against the real control plane: once an app of several kinds (a Secret among
 * them) is synced and healthy, its resyncs are a walk over the watch view — the API server's audit log holds no request of theirs
 * (watch requests, which re-open every 20 s per kind to keep the view, aside) — and pruning an object costs its
 * plan's GET and its DELETE, nothing after (the drift watcher does not ask about an object berth pruned).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, startBerth, untilReady } from "../support/binary.ts";
import {
  type AuditEvent,
  auditTail,
  eventually,
  kubectl,
  type TestCluster,
  useCluster,
} from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";

const id = Math.random().toString(16).slice(2, 8);
const ns = `noop-req-${id}`;
const app = `noop-${id}`;
let cluster: TestCluster;
let git: GitFixture;
let run: ReturnType<typeof startBerth>;
let base: string;
let tail: () => AuditEvent[];

const files: Record<string, string> = {
  "app/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
  "app/cm.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: hello\n`,
  "app/extra.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: "1"\n`,
  // A Secret too: its applied digest is keyed (the ledger's digest key), so the view can vouch for it as well.
  "app/secret.yaml": `apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n`,
  "app/svc.yaml": `apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports: [{port: 80, targetPort: 8080}]\n`,
  "app/deploy.yaml": `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: "nginx:1.27"}]\n`,
  "app/rbac.yaml": `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: read\nrules:\n  - {apiGroups: [""], resources: [configmaps], verbs: [get]}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: web-read\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: read}\nsubjects: [{kind: ServiceAccount, name: web, namespace: ${ns}}]\n`,
};

/** berth's requests about this test's app (its namespace, or its watches' label selector), watches aside. */
const ours = (events: AuditEvent[]) =>
  events.filter(
    (e) =>
      e.userAgent?.startsWith("berth") &&
      e.verb !== "watch" &&
      (e.requestURI.includes(`/namespaces/${ns}`) || e.requestURI.includes(`%3D${app}`)),
  );

/** Finished attempts of the app, from /metrics. */
async function passes(): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text
    .split("\n")
    .find((l) => l.startsWith(`berth_reconcile_duration_seconds_count{app="${app}"`));
  return Number(line?.split(" ").at(-1) ?? 0);
}

/** Waits until `n` more attempts of the app have finished. */
async function morePasses(n: number): Promise<void> {
  const from = await passes();
  await eventually(`${n} more resyncs of ${app}`, 60_000, async () =>
    (await passes()) >= from + n ? true : undefined,
  );
}

beforeAll(async () => {
  berthBinary();
  cluster = await useCluster();
  git = await GitFixture.start();
  const url = git.createRepo("infra");
  git.commit("infra", files, { message: "app" });
  const config = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", interval: 1s}\napps:\n  - {name: ${app}, path: app, namespace: ${ns}, timeout: 60s}\nledger: {path: $DIR/ledger.db}\napi: {listen: "127.0.0.1:0", anonymousRead: true}\n`,
  );
  run = startBerth(["run", "--config", config, "--kubeconfig", cluster.kubeconfigPath]);
  base = await eventually(
    "berth run's API address",
    60_000,
    async () => /"api":"(http:\/\/[^"]+)"/.exec(run.output())?.[1],
  );
  await untilReady(base, "berth run ready", 120_000);
  tail = auditTail(cluster);
}, 600_000);

afterAll(async () => {
  if (run) {
    run.child.kill("SIGTERM");
    await run.exited;
  }
  await git?.close();
  if (cluster) kubectl(cluster, "delete", "namespace", ns, "--wait=false", "--ignore-not-found");
});

test("warm no-op resyncs of an eight-object app, a Secret among them, send no request to the API server", async () => {
  // Past the resyncs that still saw the Pods start (health is read from the view either way).
  await morePasses(2);
  tail();
  await morePasses(3);
  const sent = ours(tail()).map((e) => `${e.verb} ${e.requestURI}`);
  expect(sent).toEqual([]);
  // The Secret's digest is berth's keyed one, not a digest of the manifest anyone could recompute.
  const digest = kubectl(
    cluster,
    "get",
    "secret",
    "db",
    "-n",
    ns,
    "-o",
    "jsonpath={.metadata.annotations.berth\\.dev/applied-digest}",
  );
  expect(digest).toMatch(/^hmac-sha256:[0-9a-f]{64}$/);
}, 120_000);

test("a prune sends its GET and DELETE, and nothing about the pruned object afterwards", async () => {
  tail();
  git.commit("infra", { "app/extra.yaml": null }, { message: "drop extra" });
  const extra = () =>
    kubectl(cluster, "get", "configmap", "extra", "-n", ns, "--ignore-not-found", "-o", "name");
  await eventually("extra pruned", 60_000, async () => (extra().trim() === "" ? true : undefined));
  await morePasses(3);
  const about = ours(tail()).filter((e) => e.requestURI.includes("/configmaps/extra"));
  expect(about.map((e) => e.verb)).toEqual(["get", "delete"]);
}, 120_000);
