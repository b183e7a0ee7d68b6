/**
 * The compiled `berth run` with more watches open than Bun lets fetch have requests in flight by default (256).
 * Apps on the agent's own client share one watch per kind (test/cluster/shared-watches.test.ts), but an app
 * with a ServiceAccount of its own has its own watches, per kind and namespace: 100 tenant apps of a ConfigMap,
 * a Service and a ServiceAccount each are 300 watches that stay open. Before `berth run` raised the cap
 * (agent/cli/jit.ts), every other request (the Git poll, dry-runs, applies) queued behind the watches until one
 * re-opened: a commit reaching 100 apps took 95 s at 10,000 objects, 4 apps every 3.4 s (scripts/bench/README.md,
 * "Scale"). Here a commit that changes one app, asked for every app at once, must be applied by all of them
 * well inside that: the bound (60 s) is far above what the agent needs (a few seconds) and far below what
 * queued requests cost. Run with BUN_CONFIG_MAX_HTTP_REQUESTS=256 (a value the user sets is kept), the 300
 * watches never were all open at once, and the first sync alone took about a minute.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, startBerth } from "../support/binary.ts";
import { eventually, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { deployerRbacYaml } from "../support/manifests.ts";
import { freePort } from "../support/ports.ts";

const APPS = 100;
const suffix = Math.random().toString(16).slice(2, 8);
const TOKEN = "many-watches-token";
const names = Array.from({ length: APPS }, (_, i) => `mw-${suffix}-${i}`);

let cluster: TestCluster;
let git: GitFixture;
let base: string;
let run: ReturnType<typeof startBerth>;

/** One app's files: a ConfigMap holding `value`, a Service and a ServiceAccount, in the app's namespace. */
function appFiles(name: string, value: string): Record<string, string> {
  return {
    [`${name}/cm.yaml`]: `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: ${name}\ndata:\n  value: "${value}"\n`,
    [`${name}/svc.yaml`]: `apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: ${name}\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n`,
    [`${name}/sa.yaml`]: `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n  namespace: ${name}\n`,
  };
}

/** The tenant's namespace and its ServiceAccount `deployer`, allowed the app's three kinds there. */
const tenantYaml = (ns: string) =>
  `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}, labels: {berth.dev/test: "true"}}\n---\n${deployerRbacYaml(ns, ["configmaps", "services", "serviceaccounts"])}`;

interface AppView {
  name: string;
  syncStatus: string;
  healthStatus: string;
  revision: { applied?: string };
}
const views = async (): Promise<AppView[]> =>
  ((await (await fetch(`${base}/api/v1/apps`)).json()) as { apps: AppView[] }).apps;

beforeAll(async () => {
  berthBinary();
  cluster = await useCluster();
  const rbac = join(mkdtempSync(join(tmpdir(), "berth-many-")), "tenants.yaml");
  writeFileSync(rbac, names.map(tenantYaml).join("---\n"));
  kubectl(cluster, "apply", "-f", rbac);
  git = await GitFixture.start();
  const url = git.createRepo("many");
  const files: Record<string, string> = {};
  for (const name of names) Object.assign(files, appFiles(name, "one"));
  git.commit("many", files);
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const config = writeConfig(
    [
      "apiVersion: berth.dev/v1alpha1",
      "kind: Agent",
      `source: {url: "${url}", interval: 1h}`,
      "apps:",
      ...names.map(
        (name) =>
          `  - {name: ${name}, path: ${name}, namespace: ${name}, serviceAccountName: deployer, interval: 1h}`,
      ),
      "ledger: {path: $DIR/ledger.db}",
      "api:",
      `  listen: 127.0.0.1:${port}`,
      "  anonymousRead: true",
      "  tokens: [{file: $DIR/token, scope: operate, name: ops}]",
      "",
    ].join("\n"),
  );
  writeFileSync(join(dirname(config), "token"), `${TOKEN}\n`, { mode: 0o600 });
  run = startBerth(["run", "--config", config, "--kubeconfig", cluster.kubeconfigPath]);
}, 600_000);

afterAll(async () => {
  run?.child.kill("SIGKILL");
  await git?.close();
  try {
    kubectl(cluster, "delete", "namespace", ...names, "--wait=false", "--ignore-not-found");
  } catch {}
}, 120_000);

test("with 300 watches open, a commit asked for every app is applied by all of them within 60 s", async () => {
  await eventually("every app synced and healthy", 300_000, async () => {
    const vs = await views().catch(() => []);
    return vs.length === APPS && vs.every((v) => v.syncStatus === "Synced" && v.healthStatus === "Current")
      ? true
      : undefined;
  }).catch((err) => {
    throw new Error(`${(err as Error).message}\n${run.output().slice(-3000)}`);
  });
  // The tenants' watches are open, each its own connection: more than the 256 requests Bun lets fetch have.
  const pid = run.child.pid as number;
  const sockets = () =>
    readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:");
      } catch {
        return false;
      }
    }).length;
  await eventually("300 watches open", 60_000, async () => (sockets() > 300 ? true : undefined));

  const sha = git.commit("many", appFiles(names[0] as string, "two"));
  const t0 = Date.now();
  await Promise.all(
    names.map(async (name) => {
      const r = await fetch(`${base}/api/v1/apps/${name}/sync`, {
        method: "POST",
        headers: { Authorization: `Bearer ${TOKEN}` },
      });
      expect(r.status).toBe(202);
    }),
  );
  await eventually("every app applied the new commit", 120_000, async () => {
    const vs = await views();
    return vs.every((v) => v.syncStatus === "Synced" && v.revision.applied?.includes(sha.slice(0, 12)))
      ? true
      : undefined;
  });
  const seconds = (Date.now() - t0) / 1000;
  const live = await cluster.core.readNamespacedConfigMap({
    name: "settings",
    namespace: names[0] as string,
  });
  expect(live.data?.value).toBe("two");
  expect(seconds).toBeLessThan(60);
}, 600_000);
