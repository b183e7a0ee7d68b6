/**
 * HA with a ledger replica (compiled binaries, real control plane, versitygw): the standby follows the leader's
 * replica; after `kill -9` of the leader it takes over, its ledger continues the same hash chain (the old
 * leader's entries first, `ledger verify` passes), and an object only the old leader applied is pruned when it
 * leaves Git — the inventory came along.
 */
import { Database } from "bun:sqlite";
import { beforeAll, describe, expect, test } from "bun:test";
import { dirname, join } from "node:path";
import { writeConfig } from "../support/berth.ts";
import { runBerth, startBerth } from "../support/binary.ts";
import { eventually, leaseHolder } from "../support/cluster.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { type S3Server, startS3 } from "../support/s3.ts";

const LEASE_S = 4;
// The app's namespace is the fixture's; the Lease lives in one of its own.
const t = useClusterTest({ prefix: "har-app", createNamespace: true, repo: "ha", binary: true });
const appNs = t.ns;
const leaseNs = `${appNs.replace("har-app", "har-lease")}`;
t.removeAtTeardown(`namespace/${leaseNs}`);
let s3: S3Server;
let template = "";
const instances: Record<string, { run: ReturnType<typeof startBerth>; config: string }> = {};

const cm = (name: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  value: "${value}"\n`;

beforeAll(async () => {
  s3 = await startS3();
  t.onTeardown(() => s3.close());
  t.onTeardown(() => {
    for (const i of Object.values(instances)) i.run.child.kill("SIGKILL");
  });
  await t.cluster.core.createNamespace({
    body: { metadata: { name: leaseNs, labels: { "berth.dev/test": "true" } } },
  });
  t.commit({
    "app/a.yaml": cm("a", "one"),
    "app/b.yaml": cm("b", "one"),
    "app/extra.yaml": cm("extra", "x"),
  });
  template = `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${t.url}", interval: 1s}\napps:\n  - {name: app, path: app, namespace: ${appNs}, timeout: 30s}\nledger:\n  path: $DIR/ledger.db\n  replica: {url: "s3://${s3.bucket}/ha", endpoint: "${s3.endpoint}", accessKeyId: ${s3.accessKeyId}, secretAccessKeyEnv: S3_SECRET, interval: 300ms}\napi: {listen: "127.0.0.1:0"}\nha: {lease: berth-ha, namespace: ${leaseNs}, duration: ${LEASE_S}s}\n`;
}, 600_000);

function start(name: string): void {
  const config = writeConfig(template);
  const run = startBerth(["run", "--config", config, "--kubeconfig", t.cluster.kubeconfigPath], {
    POD_NAME: name,
    S3_SECRET: s3.secretAccessKey,
  });
  instances[name] = { run, config };
}

const holder = () => leaseHolder(t.cluster, leaseNs);
const live = () =>
  t
    .kubectl(
      "get",
      "configmaps",
      "-n",
      appNs,
      "-l",
      "berth.dev/app=app",
      "-o",
      "jsonpath={range .items[*]}{.metadata.name}={.data.value} {end}",
    )
    .trim();

/** Revisions of the app's finished entries in an instance's ledger file, oldest first, with their chain positions. */
function chain(config: string): Array<{ revision: string; seq: number | null }> {
  const db = new Database(join(dirname(config), "ledger.db"), { readonly: true });
  try {
    return db
      .query<{ revision: string; seq: number | null }, []>(
        "SELECT revision, chain_seq AS seq FROM entries WHERE outcome <> 'Running' ORDER BY id",
      )
      .all();
  } finally {
    db.close();
  }
}

describe("HA with a ledger replica", () => {
  test("the standby follows, takes over after kill -9, continues the chain and prunes what the old leader applied", async () => {
    start("har-a");
    start("har-b");
    const first = await eventually("a Lease holder", 30_000, async () => holder() || undefined);
    const second = first === "har-a" ? "har-b" : "har-a";
    await eventually("the leader's first sync", 60_000, async () =>
      live() === "a=one b=one extra=x" ? true : undefined,
    );
    t.git.commit("ha", { "app/a.yaml": cm("a", "two") });
    await eventually("the leader's second sync", 60_000, async () =>
      live() === "a=two b=one extra=x" ? true : undefined,
    );
    const old = instances[first] as { config: string; run: ReturnType<typeof startBerth> };
    const standby = instances[second] as { config: string; run: ReturnType<typeof startBerth> };
    // The standby's own ledger holds the leader's history, through the replica alone.
    await eventually("the standby to follow the leader's entries", 30_000, async () => {
      const mine = chain(standby.config).map((e) => e.revision);
      const theirs = chain(old.config).map((e) => e.revision);
      return theirs.length >= 2 && JSON.stringify(mine) === JSON.stringify(theirs) ? true : undefined;
    }).catch((err) => {
      throw new Error(
        `${err}\nstandby: ${JSON.stringify(chain(standby.config))}\nleader: ${JSON.stringify(chain(old.config))}\n${standby.run.output().slice(-3000)}`,
      );
    });
    const before = chain(old.config);

    old.run.child.kill("SIGKILL");
    await old.run.exited;
    await eventually("the standby to take the Lease", 30_000, async () =>
      holder() === second ? true : undefined,
    );
    // "extra" leaves Git: only the old leader ever applied it, yet the new leader prunes it.
    t.git.commit("ha", { "app/extra.yaml": null, "app/b.yaml": cm("b", "three") });
    await eventually("the new leader's sync with the prune", 60_000, async () =>
      live() === "a=two b=three" ? true : undefined,
    );
    const after = chain(standby.config);
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.length).toBeGreaterThan(before.length);
    const seqs = after.map((e) => e.seq).filter((s) => s !== null);
    expect(seqs).toEqual([...seqs].sort((a, b) => (a as number) - (b as number)));
    const verify = await runBerth(["ledger", "verify", "--config", standby.config]);
    expect({ code: verify.code, err: verify.stderr }).toEqual({ code: 0, err: "" });
  }, 300_000);
});
