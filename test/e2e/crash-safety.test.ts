/**
 * Crash safety of the compiled binary: `berth sync` of a ~50-object app killed with SIGKILL right after its
 * ledger entry begins, during apply, during prune and during the health wait. After each kill the ledger
 * verifies, the next start marks the entry Interrupted, the next sync succeeds and the cluster equals Git —
 * including objects created before the kill that have since left Git (they must be pruned, not orphaned).
 */
import { Database } from "bun:sqlite";
import { beforeAll, describe, expect, test } from "bun:test";
import { dirname, join } from "node:path";
import { runBerth, startBerth } from "../support/binary.ts";
import { type AuditEvent, auditTail } from "../support/cluster.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { type Load, startLoadIfAsked } from "../support/load.ts";

const t = useClusterTest({ prefix: "crash", createNamespace: true, binary: true });
const ns = t.ns;
let config: string;
let load: Load | undefined;
const APP = "crash";
const CONFIGMAPS = 48;

const cm = (name: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  value: "${value}"\n`;
const deployment = (name: string, unschedulable = false) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: ${name}}}\n  template:\n    metadata: {labels: {app: ${name}}}\n    spec:\n${unschedulable ? '      nodeSelector: {nowhere: "true"}\n' : ""}      containers: [{name: c, image: "nginx:1.27"}]\n`;

/** The files of the app's tree: ConfigMaps by name → value, plus Deployments by name. */
function tree(cms: Record<string, string>, deployments: Record<string, boolean>): Record<string, string> {
  const files: Record<string, string> = {};
  for (const [name, value] of Object.entries(cms)) files[`app/${name}.yaml`] = cm(name, value);
  for (const [name, stuck] of Object.entries(deployments))
    files[`app/${name}.yaml`] = deployment(name, stuck);
  return files;
}

/** What Git holds now, kept in step with every commit so the cluster can be compared with it. */
let gitCms: Record<string, string> = {};
let gitDeployments: Record<string, boolean> = {};
function commit(cms: Record<string, string>, deployments: Record<string, boolean>): void {
  gitCms = cms;
  gitDeployments = deployments;
  t.git.commit(t.repo, tree(cms, deployments), { replace: true });
}

const env = () => t.env();
const ledgerPath = () => join(dirname(config), "ledger.db");

/** The newest entry of the app straight from the SQLite file (read-only, beside the running binary). */
function newestEntry(): { id: number; outcome: string } | undefined {
  const db = new Database(ledgerPath(), { readonly: true });
  try {
    return (
      db
        .query<{ id: number; outcome: string }, [string]>(
          "SELECT id, outcome FROM entries WHERE app = ? ORDER BY id DESC LIMIT 1",
        )
        .get(APP) ?? undefined
    );
  } catch {
    return undefined; // not created yet
  } finally {
    db.close();
  }
}

/** Names of the app's objects of one kind in the cluster, with the ConfigMaps' values. */
function live(kind: "configmaps" | "deployments"): Record<string, string> {
  const out = t.kubectl(
    "get",
    kind,
    "-n",
    ns,
    "-l",
    `berth.dev/app=${APP}`,
    "-o",
    'jsonpath={range .items[*]}{.metadata.name}={.data.value}{"\\n"}{end}',
  );
  return Object.fromEntries(
    out
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split("=") as [string, string]),
  );
}

/** Starts `berth sync`, waits for `when` to say the kill point is reached, kills -9; returns the killed entry. */
async function syncKilledWhen(what: string, when: (output: string) => Promise<boolean>): Promise<number> {
  const before = newestEntry()?.id ?? 0;
  const run = startBerth(["sync", "--config", config, "--app", APP], env());
  try {
    // A tight poll: a 50-object apply or prune is over in a few hundred milliseconds.
    const deadline = Date.now() + 60_000;
    while (!(await when(run.output()))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${run.output()}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    run.child.kill("SIGKILL");
  }
  expect(await run.exited).toBeNull(); // killed, not exited on its own
  const killed = newestEntry();
  expect(killed?.id).toBeGreaterThan(before);
  expect(killed?.outcome).toBe("Running");
  return killed?.id ?? 0;
}

/** The checks after every kill: verify, Interrupted at the next start, a complete sync, cluster == Git. */
async function recoverAndCheck(killed: number): Promise<void> {
  const verifyKilled = await runBerth(["ledger", "verify", "--config", config]);
  expect(verifyKilled.stderr).toBe("");
  expect(verifyKilled.code).toBe(0);

  // The runner's limit is past the app's health timeout, so a slow recovery fails with berth's own words.
  const next = await runBerth(["sync", "--config", config, "--app", APP], env(), 180_000);
  if (next.code !== 0)
    throw new Error(`the sync after the kill exited ${next.code}:\n${next.stdout}${next.stderr}`);
  expect(next.stdout).toContain(`✓ ${APP}`);
  const entry = JSON.parse(
    (await runBerth(["ledger", "show", String(killed), "--json", "--config", config])).stdout,
  );
  expect([entry.outcome, entry.reason]).toEqual(["Failed", "Interrupted"]);
  const last = newestEntry();
  expect(last?.id).toBeGreaterThan(killed);
  expect(last?.outcome).toBe("Succeeded");

  const verified = await runBerth(["ledger", "verify", "--config", config]);
  expect(verified.code).toBe(0);
  expect(live("configmaps")).toEqual(gitCms);
  expect(Object.keys(live("deployments")).sort()).toEqual(Object.keys(gitDeployments).sort());
}

const range = (prefix: string, from: number, to: number, value: string) =>
  Object.fromEntries(Array.from({ length: to - from }, (_, i) => [`${prefix}-${from + i}`, value]));

beforeAll(async () => {
  load = await startLoadIfAsked();
  t.onTeardown(() => load?.stop());
  commit(range("cm", 0, CONFIGMAPS, "v1"), { web: false, api: false });
  // "during prune" drops most of the app at once; the mass-prune guard would hold that for an approval.
  config = t.writeConfig([
    { name: APP, path: "app", namespace: ns, timeout: "120s", prune: "{maxFraction: 1}" },
  ]);
  const first = await runBerth(["sync", "--config", config], env());
  if (first.code !== 0) throw new Error(`the first sync failed: ${first.stdout}${first.stderr}`);
}, 1_200_000);

describe("kill -9 during a sync of 50 objects", () => {
  test("the first sync applied all 50 objects", () => {
    expect(Object.keys(live("configmaps")).length).toBe(CONFIGMAPS);
    expect(live("configmaps")).toEqual(gitCms);
  });

  test("right after the ledger entry begins (before anything is written)", async () => {
    commit(range("cm", 0, CONFIGMAPS, "v2"), gitDeployments);
    const before = newestEntry()?.id ?? 0;
    const killed = await syncKilledWhen("a Running entry", async () => {
      const e = newestEntry();
      return e !== undefined && e.id > before && e.outcome === "Running";
    });
    await recoverAndCheck(killed);
  }, 300_000);

  test("during apply; objects created before the kill are pruned once they leave Git", async () => {
    commit({ ...gitCms, ...range("extra", 0, 40, "new") }, gitDeployments);
    const killed = await syncKilledWhen(
      "some objects applied",
      async (out) => (out.match(/applied created {4}ConfigMap\//g) ?? []).length >= 5,
    );
    const created = Object.keys(live("configmaps")).filter((n) => n.startsWith("extra-"));
    expect(created.length).toBeGreaterThan(0); // the kill left some of them in the cluster
    // They leave Git before the next sync: they must not stay behind as orphans.
    commit(range("cm", 0, CONFIGMAPS, "v2"), gitDeployments);
    await recoverAndCheck(killed);
    expect(Object.keys(live("configmaps")).filter((n) => n.startsWith("extra-"))).toEqual([]);
  }, 300_000);

  test("during prune", async () => {
    const before = { cms: Object.keys(live("configmaps")), deployments: Object.keys(live("deployments")) };
    commit({ ...range("cm", 0, 10, "v2"), "cm-0": "v3" }, { web: false });
    const planned =
      before.cms.filter((n) => !(n in gitCms)).length +
      before.deployments.filter((n) => !(n in gitDeployments)).length;
    expect(planned).toBeGreaterThan(30);
    // Killed as soon as the API server's audit log shows berth's first prune DELETE in the namespace.
    const tail = auditTail(t.cluster);
    const deletes: AuditEvent[] = [];
    const collect = () =>
      deletes.push(
        ...tail().filter(
          (e) =>
            e.verb === "delete" && e.userAgent === "berth" && e.requestURI.includes(`/namespaces/${ns}/`),
        ),
      );
    const killed = await syncKilledWhen("berth's first prune DELETE", async () => {
      collect();
      return deletes.length > 0;
    });
    // Requests in flight at the kill still land; then the proof that the kill fell inside the prune: some of
    // the planned deletions were made by the killed process, not all.
    await new Promise((r) => setTimeout(r, 1_000));
    collect();
    expect(deletes.length).toBeGreaterThan(0);
    expect(deletes.length).toBeLessThan(planned);
    await recoverAndCheck(killed);
  }, 300_000);

  test("during the health wait; the stuck Deployment leaves Git and is pruned", async () => {
    commit({ ...gitCms, "cm-0": "v4" }, { ...gitDeployments, stuck: true });
    const killed = await syncKilledWhen("the stuck Deployment applied", async () => {
      if (!("stuck" in live("deployments"))) return false;
      await new Promise((r) => setTimeout(r, 1000)); // well inside the wait (timeout 120 s)
      return true;
    });
    expect(live("configmaps")["cm-0"]).toBe("v4");
    commit(gitCms, { web: false });
    await recoverAndCheck(killed);
  }, 300_000);

  test("a tampered ledger fails verify after all this (the check can fail)", async () => {
    const db = new Database(ledgerPath());
    try {
      db.run("UPDATE entries SET message = 'edited' WHERE id = (SELECT MIN(id) FROM entries)");
    } finally {
      db.close();
    }
    const r = await runBerth(["ledger", "verify", "--config", config]);
    expect(r.code).toBe(1);
  });
});
