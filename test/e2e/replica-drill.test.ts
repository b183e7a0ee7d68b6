/**
 * The off-box replica drill with the compiled binary, a real S3-compatible server (versitygw) and two control
 * planes: `berth run` syncs with `ledger.replica` set; the store stops answering for over a minute (the lag grows
 * past it on /metrics, pushed changes are still applied), then comes back (the lag drains). Then the agent's whole state
 * directory is deleted, `berth ledger restore` rebuilds the ledger in a new directory from the store alone
 * (`ledger verify` passes) and `berth replay --all` restores the objects into a second, empty control plane
 * with Git stopped.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { berthBinary, runBerth, startBerth } from "../support/binary.ts";
import {
  eventually,
  freshNamespace,
  kubectl,
  type PrivateCluster,
  privateCluster,
  type TestCluster,
  useCluster,
} from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { type S3Server, startS3 } from "../support/s3.ts";

let cluster: TestCluster;
let second: PrivateCluster | undefined;
let git: GitFixture;
let s3: S3Server;
let ns: string;
let port: number;
const first = mkdtempSync(join(tmpdir(), "berth-replica-first-"));
const fresh = mkdtempSync(join(tmpdir(), "berth-replica-new-"));

const cm = (name: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  value: "${value}"\n`;

function configIn(dir: string, url: string): string {
  writeFileSync(join(dir, "s3-secret"), `${s3.secretAccessKey}\n`);
  const path = join(dir, "berth.yaml");
  writeFileSync(
    path,
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", interval: 1s}\napps:\n  - {name: shop, path: shop, namespace: ${ns}, timeout: 60s}\nledger:\n  path: ${join(dir, "state", "ledger.db")}\n  replica: {url: "s3://${s3.bucket}/drill", endpoint: "${s3.endpoint}", accessKeyId: ${s3.accessKeyId}, secretAccessKeyFile: s3-secret, interval: 500ms}\napi: {listen: "127.0.0.1:${port}"}\n`,
  );
  return path;
}

async function lag(): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const m = /^berth_ledger_replica_lag_seconds (\S+)$/m.exec(text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

const values = (target: TestCluster) =>
  kubectl(
    target,
    "get",
    "configmaps",
    "-n",
    ns,
    "-l",
    "berth.dev/app=shop",
    "-o",
    "jsonpath={range .items[*]}{.metadata.name}={.data.value} {end}",
  ).trim();

beforeAll(async () => {
  berthBinary();
  cluster = await useCluster();
  s3 = await startS3();
  ns = await freshNamespace(cluster, "replica");
  git = await GitFixture.start();
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
}, 600_000);

afterAll(async () => {
  await git?.close();
  await s3?.close();
  second?.down();
  rmSync(first, { recursive: true, force: true });
  rmSync(fresh, { recursive: true, force: true });
  try {
    kubectl(cluster, "delete", "namespace", ns, "--wait=false");
  } catch {}
}, 120_000);

describe("ledger replica drill (binary)", () => {
  test("syncs through a store outage, survives the loss of the state directory, restores into a new cluster", async () => {
    const url = git.createRepo("infra");
    git.commit("infra", { "shop/a.yaml": cm("a", "1"), "shop/b.yaml": cm("b", "1") });
    const config = configIn(first, url);
    const run = startBerth(["run", "--config", config], { KUBECONFIG: cluster.kubeconfigPath });
    try {
      await eventually("the first sync", 60_000, async () =>
        values(cluster) === "a=1 b=1" ? true : undefined,
      );
      await eventually("the replica caught up", 30_000, async () => ((await lag()) === 0 ? true : undefined));

      await s3.stop();
      git.commit("infra", { "shop/a.yaml": cm("a", "2"), "shop/c.yaml": cm("c", "2") });
      // The store being down does not hold the sync back.
      await eventually("the change applied with the store down", 30_000, async () =>
        values(cluster) === "a=2 b=1 c=2" ? true : undefined,
      );
      // A minute without the store: the lag grows past it while the agent keeps syncing.
      await eventually("the lag growing past a minute", 120_000, async () =>
        ((await lag()) ?? 0) > 60 ? true : undefined,
      );
      git.commit("infra", { "shop/b.yaml": cm("b", "3") });
      await eventually("a change applied a minute into the outage", 30_000, async () =>
        values(cluster) === "a=2 b=3 c=2" ? true : undefined,
      );

      await s3.start();
      await eventually("the lag drained", 60_000, async () => (((await lag()) ?? 1) < 1 ? true : undefined));
    } finally {
      run.child.kill("SIGTERM");
      await run.exited;
    }
    expect(run.output()).not.toContain("could not record");

    // The host is lost: nothing of its state directory is left.
    rmSync(join(first, "state"), { recursive: true, force: true });
    const newConfig = configIn(fresh, url);
    const restored = await runBerth(["ledger", "restore", "--config", newConfig]);
    expect({ code: restored.code, err: restored.stderr }).toMatchObject({ code: 0 });
    expect(restored.stderr).toContain(`restored from s3://${s3.bucket}/drill/`);
    const verify = await runBerth(["ledger", "verify", "--config", newConfig]);
    expect(verify.code).toBe(0);

    // A new, empty control plane; Git is down.
    second = privateCluster();
    await git.close();
    kubectl(second, "create", "namespace", ns);
    const replay = await runBerth(
      ["replay", "--all", "--config", newConfig, "--kubeconfig", second.kubeconfigPath],
      {},
      180_000,
    );
    expect({ code: replay.code, out: replay.stdout + replay.stderr }).toMatchObject({ code: 0 });
    expect(values(second)).toBe("a=2 b=3 c=2");
  }, 600_000);
});
