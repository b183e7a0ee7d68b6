/**
 * A one-letter typo must never delete live objects (issue 12, item 1), with the compiled binary against the
 * real control plane: an app holds a Namespace and a ServiceAccount, kubectl adds a ConfigMap and a Secret to
 * the namespace; each typo of the Namespace's kind fails the sync naming file and line, writes nothing and
 * prunes nothing. Documents that are clearly not objects are skipped, and the skip is said everywhere.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { runBerth } from "../support/binary.ts";
import { auditEvents, quietSince, writesIn } from "../support/cluster.ts";
import { GIT_TOKEN_ENV, useClusterTest } from "../support/cluster-test.ts";

// team-data as in the issue, made unique: the control plane is shared with other tests.
const t = useClusterTest({ prefix: "team-data", git: { token: "e2e-token" }, binary: true });
const ns = t.ns;
const namespace = (head: string) => `${head}metadata:\n  name: ${ns}\n`;
const env = () => t.env();
let config = "";

beforeAll(() => {
  t.commit({
    "data/ns.yaml": namespace("apiVersion: v1\nkind: Namespace\n"),
    "data/sa.yaml": `apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: loader\n  namespace: ${ns}\n`,
    "data/values.yaml": "replicas: 3\nimage: nginx\n",
  });
  config = t.writeConfig([{ name: "data", path: "data", timeout: "60s" }], {
    source: `interval: 1s, auth: {tokenEnv: ${GIT_TOKEN_ENV}}`,
  });
});

/** What lives in the namespace, as `Kind/name` lines. */
function inNamespace(): string[] {
  const out = t.kubectl("get", "configmap,secret,serviceaccount", "-n", ns, "-o", "name");
  return out
    .split("\n")
    .filter((l) => /(configmap\/extra|secret\/extra|serviceaccount\/loader)$/.test(l))
    .sort();
}

describe("a typo'd kind (compiled binary, real control plane)", () => {
  test("the app syncs; the skipped non-object is said in the sync output, the ledger and the plan", async () => {
    const r = await runBerth(["sync", "--config", config], env());
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/✓ data main@sha1:[0-9a-f]{40}: Succeeded — 2 created/);
    expect(r.stdout).toContain(
      "skipped 1 document(s) that are not Kubernetes objects: data/values.yaml#0 (not a Kubernetes object: no apiVersion, kind or metadata)",
    );
    const [entry] = JSON.parse(
      (await runBerth(["ledger", "list", "--json", "--app", "data", "--limit", "1", "--config", config]))
        .stdout,
    );
    expect(entry.message).toContain("data/values.yaml#0");
    const plan = await runBerth(["plan", "--config", config], env());
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain("! skipped data/values.yaml#0: not a Kubernetes object");
    const json = JSON.parse((await runBerth(["plan", "--json", "--config", config], env())).stdout);
    expect(json[0].skipped).toEqual([
      { path: "data/values.yaml#0", message: "not a Kubernetes object: no apiVersion, kind or metadata" },
    ]);

    t.kubectl("create", "configmap", "extra", "-n", ns, "--from-literal=k=v");
    t.kubectl("create", "secret", "generic", "extra", "-n", ns, "--from-literal=password=s3cret");
    expect(inNamespace()).toEqual(["configmap/extra", "secret/extra", "serviceaccount/loader"]);
  }, 120_000);

  const typos: Array<[string, string, RegExp]> = [
    [
      "Kind: Namespace",
      "apiVersion: v1\nKind: Namespace\n",
      /data\/ns\.yaml:2:1: document 0: "Kind" must be spelled "kind"/,
    ],
    ["apiVersion but no kind", "apiVersion: v1\n", /data\/ns\.yaml:1:1: document 0: no kind/],
    [
      'kind: ""',
      'apiVersion: v1\nkind: ""\n',
      /data\/ns\.yaml:2:1: document 0: kind: expected a non-empty string, got ""/,
    ],
  ];
  for (const [what, head, named] of typos) {
    test(`${what}: sync exits 1 naming file and line, applies and prunes nothing`, async () => {
      t.commit({ "data/ns.yaml": namespace(head) });
      const since = await quietSince();
      const r = await runBerth(["sync", "--config", config], env());
      expect(r.code).toBe(1);
      expect(r.stdout).toContain("✗ data");
      expect(r.stdout).toContain("BuildFailed");
      expect(r.stdout).toMatch(named);
      expect(r.stdout).not.toContain("deleted");
      // Not one write to the namespace or anything in it reached the API server (other tests share the
      // control plane, so only this namespace counts), and everything in it is still there.
      const writes = writesIn(auditEvents(t.cluster, since)).filter(
        (e) =>
          e.requestURI.includes(`/namespaces/${ns}/`) ||
          e.requestURI.split("?")[0]?.endsWith(`/namespaces/${ns}`),
      );
      expect(writes).toEqual([]);
      expect(t.kubectl("get", "namespace", ns, "-o", "jsonpath={.status.phase}")).toBe("Active");
      expect(inNamespace()).toEqual(["configmap/extra", "secret/extra", "serviceaccount/loader"]);
      const [entry] = JSON.parse(
        (await runBerth(["ledger", "list", "--json", "--app", "data", "--limit", "1", "--config", config]))
          .stdout,
      );
      expect([entry.outcome, entry.reason]).toEqual(["Failed", "BuildFailed"]);
      expect(entry.message).toMatch(named);
      const plan = await runBerth(["plan", "--config", config], env());
      expect(plan.code).toBe(1);
      expect(plan.stderr).toMatch(named);
    }, 120_000);
  }

  test("with the typo fixed the next sync succeeds and deletes nothing", async () => {
    t.commit({ "data/ns.yaml": namespace("apiVersion: v1\nkind: Namespace\n") });
    const r = await runBerth(["sync", "--config", config], env());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("0 deleted");
    expect(inNamespace()).toEqual(["configmap/extra", "secret/extra", "serviceaccount/loader"]);
  }, 120_000);
});
