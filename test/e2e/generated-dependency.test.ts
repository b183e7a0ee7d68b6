/**
 * A static app depending on a generated one (berth.yaml `generate:`): the compiled binary's `berth sync` syncs the
 * generated app first, and skips the static one while the generated one fails; `berth run` starts the static app
 * only once the generated one synced at the same revision, and holds it while that fails. Checked in the cluster,
 * the ledger and the API.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { apiAddress, type LedgerRow, ledgerRows, runBerth, untilReady } from "../support/binary.ts";
import { eventually } from "../support/cluster.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { configMapYaml } from "../support/manifests.ts";

const t = useClusterTest({ prefix: "gendep", binary: true, createNamespace: true });
let config: string;
const greeting = (name: string) => t.inNs("get", "configmap", name, "-o", "jsonpath={.data.greeting}");

beforeAll(() => {
  t.commit({ "gen/web/cm.yaml": configMapYaml("web", "v1"), "after/cm.yaml": configMapYaml("after", "v1") });
  config = t.writeConfig([{ name: "after", path: "after", namespace: t.ns, dependsOn: ["gen-web"] }], {
    extra: `generate:\n  - {dirs: "gen/*", template: {name: "gen-{{dir}}", path: "{{path}}", namespace: ${t.ns}}}\n`,
  });
});

describe("a static app that depends on a generated app", () => {
  test("berth sync syncs the generated app first, then the static one", async () => {
    const r = await runBerth(["sync", "--config", config], t.env());
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/✓ gen-web main@sha1:[0-9a-f]{40}: Succeeded — 1 created/);
    expect(r.stdout).toMatch(/✓ after main@sha1:[0-9a-f]{40}: Succeeded — 1 created/);
    expect(r.stdout.indexOf("✓ gen-web")).toBeLessThan(r.stdout.indexOf("✓ after"));
    expect([greeting("web"), greeting("after")]).toEqual(["v1", "v1"]);
  }, 180_000);

  test("while the generated app fails, the static one is skipped and not applied", async () => {
    t.commit({
      "gen/web/cm.yaml": "apiVersion: v1\nKind: ConfigMap\nmetadata:\n  name: web\n",
      "after/cm.yaml": configMapYaml("after", "v2"),
    });
    const r = await runBerth(["sync", "--config", config], t.env());
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("gen-web");
    expect(r.stderr).toContain("skipped after: its dependency gen-web did not sync");
    expect([greeting("web"), greeting("after")]).toEqual(["v1", "v1"]);
  }, 180_000);

  test("berth run starts the static app only after the generated one synced, and holds it while that fails", async () => {
    const sha = t.commit({
      "gen/web/cm.yaml": configMapYaml("web", "v3"),
      "after/cm.yaml": configMapYaml("after", "v3"),
    });
    const api = await apiAddress();
    // A ledger of its own: the entries below are this agent's only.
    const runConfig = t.writeConfig(
      [{ name: "after", path: "after", namespace: t.ns, dependsOn: ["gen-web"] }],
      {
        source: "interval: 1s",
        extra: `generate:\n  - {dirs: "gen/*", template: {name: "gen-{{dir}}", path: "{{path}}", namespace: ${t.ns}}}\napi: {listen: "127.0.0.1:${api.port}", anonymousRead: true}\n`,
      },
    );
    const run = t.startRun(runConfig);
    await untilReady(api.base, "berth run's first pass", 90_000);
    const success = async (app: string): Promise<LedgerRow & { startedAt: string; finishedAt: string }> => {
      const rows = (await ledgerRows(runConfig, app)) as Array<
        LedgerRow & { startedAt: string; finishedAt: string }
      >;
      const found = rows.filter((r) => r.outcome === "Succeeded" && r.revision.endsWith(sha)).at(-1);
      if (!found) throw new Error(`${app}: no success at ${sha} in ${JSON.stringify(rows)}\n${run.output()}`);
      return found;
    };
    await eventually("both apps synced at the commit", 60_000, async () =>
      greeting("after") === "v3" ? true : undefined,
    );
    const generated = await success("gen-web");
    const dependent = await success("after");
    // Its first attempt at this revision began once the generated app's had ended: it waited, not raced.
    expect(Date.parse(dependent.startedAt)).toBeGreaterThanOrEqual(Date.parse(generated.finishedAt));
    expect([greeting("web"), greeting("after")]).toEqual(["v3", "v3"]);

    // The generated app breaks: the static app's change waits, unapplied, and says why.
    t.commit({
      "gen/web/cm.yaml": "apiVersion: v1\nKind: ConfigMap\nmetadata:\n  name: web\n",
      "after/cm.yaml": configMapYaml("after", "v4"),
    });
    await eventually("the static app waits on the failed generated app", 60_000, async () => {
      const view = (await (await fetch(`${api.base}/api/v1/apps/after`)).json()) as { syncStatus?: string };
      return view.syncStatus === "WaitingOnDependency" ? true : undefined;
    });
    expect([greeting("web"), greeting("after")]).toEqual(["v3", "v3"]);
  }, 240_000);
});
