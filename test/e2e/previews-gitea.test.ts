/**
 * The preview must-show, with the compiled binary, the real control plane and a real Gitea: a pull
 * request that drops a StatefulSet's PersistentVolumeClaim gets a `berth/preview/db` failure status "held by
 * rule no-pvc-delete" on its head and a comment listing the changes, while berth writes nothing to the cluster
 * (audit log); merging it triggers the real sync, which is held as predicted (the ledger shows the hold) and
 * leaves the claim in place.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, startBerth, untilReady } from "../support/binary.ts";
import {
  auditEvents,
  eventually,
  kubectl,
  quietSince,
  type TestCluster,
  useCluster,
  writesIn,
} from "../support/cluster.ts";
import { git } from "../support/git.ts";
import { type GiteaServer, startGitea } from "../support/gitea.ts";
import { freePort } from "../support/ports.ts";

let cluster: TestCluster;
let gitea: GiteaServer;
let repo: string;
let work: string;
let base: string;
let mainSha = "";
let run: ReturnType<typeof startBerth>;
const id = Math.random().toString(16).slice(2, 8);
const ns = `preview-gitea-${id}`;
const pv = `preview-gitea-pv-${id}`;
const TOKEN = "e2e-read-token";

const RULES = `apiVersion: berth.dev/v1alpha1
kind: Rules
sync:
  - name: no-pvc-delete
    when: change.action == 'deleted' && change.object.kind == 'PersistentVolumeClaim'
    verdict: hold
    message: deleting a claim deletes its data
`;
const settings = (level: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {level: "${level}"}\n`;
const claim = `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  storageClassName: ""
  volumeName: ${pv}
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
`;
const statefulSet = (volume: string) => `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
        - name: db
          image: registry.invalid/db:1
          volumeMounts: [{name: data, mountPath: /var/lib/db}]
      volumes:
        - ${volume}
`;

function commit(files: Record<string, string | null>, message: string): string {
  for (const [path, text] of Object.entries(files)) {
    const full = join(work, path);
    if (text === null) git(work, "rm", "--quiet", path);
    else {
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(full, text);
      git(work, "add", path);
    }
  }
  git(work, "-c", "user.name=Dev", "-c", "user.email=dev@example.test", "commit", "--quiet", "-m", message);
  return git(work, "rev-parse", "HEAD");
}

const get = async <T>(path: string): Promise<T> => {
  const r = await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${TOKEN}` } });
  return (await r.json()) as T;
};

beforeAll(async () => {
  berthBinary();
  cluster = await useCluster();
  gitea = await startGitea();
  repo = await gitea.createRepo("infra");
  const dir = dirname(writeConfig("placeholder: true\n"));
  writeFileSync(
    join(dir, "pv.yaml"),
    `apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: ${pv}}\nspec:\n  capacity: {storage: 1Gi}\n  accessModes: [ReadWriteOnce]\n  storageClassName: ""\n  persistentVolumeReclaimPolicy: Retain\n  hostPath: {path: /tmp/${pv}}\n  claimRef: {namespace: ${ns}, name: data}\n`,
  );
  kubectl(cluster, "apply", "-f", join(dir, "pv.yaml"));
  work = join(dir, "work");
  mkdirSync(work);
  git(work, "init", "--quiet", "--initial-branch=main");
  mainSha = commit(
    {
      "app/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n`,
      "app/settings.yaml": settings("info"),
      "app/claim.yaml": claim,
      "app/db.yaml": statefulSet("{name: data, persistentVolumeClaim: {claimName: data}}"),
    },
    "a database with its claim",
  );
  gitea.push(work, repo, "main");
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const config = writeConfig(
    `apiVersion: berth.dev/v1alpha1
kind: Agent
source: {url: "${repo}.git", ref: main, interval: 2s}
apps:
  - {name: db, path: app, namespace: ${ns}, timeout: 60s}
rules: ["$DIR/rules.yaml"]
ledger: {path: $DIR/ledger.db}
api:
  listen: 127.0.0.1:${port}
  externalURL: http://berth.test
  tokens: [{file: $DIR/read-token, scope: read}]
status: {provider: gitea, url: "${repo}", tokenFile: $DIR/gitea-token}
previews: {refs: ["refs/pull/*/head"], apps: [db], interval: 1s, comment: true}
`,
  );
  const cdir = dirname(config);
  writeFileSync(join(cdir, "rules.yaml"), RULES);
  writeFileSync(join(cdir, "read-token"), `${TOKEN}\n`, { mode: 0o600 });
  writeFileSync(join(cdir, "gitea-token"), `${gitea.token}\n`, { mode: 0o600 });
  run = startBerth(["run", "--config", config, "--kubeconfig", cluster.kubeconfigPath]);
  await untilReady(base, "the first sync", 120_000);
}, 900_000);

afterAll(async () => {
  run?.child.kill("SIGTERM");
  await run?.exited;
  await gitea?.close();
  try {
    kubectl(cluster, "delete", "namespace", ns, "--wait=false");
    kubectl(cluster, "delete", "persistentvolume", pv, "--wait=false");
  } catch {}
});

describe("a Gitea pull request dropping a StatefulSet's claim", () => {
  let pr = 0;
  let head = "";

  test("its head gets a failure status 'held by rule no-pvc-delete' and a comment; berth writes nothing", async () => {
    const since = await quietSince();
    git(work, "checkout", "--quiet", "-b", "drop-claim");
    head = commit(
      {
        "app/claim.yaml": null,
        "app/db.yaml": statefulSet("{name: data, emptyDir: {}}"),
        "app/settings.yaml": settings("debug"),
      },
      "drop the database claim",
    );
    gitea.push(work, repo, "drop-claim");
    pr = await gitea.openPull(repo, "drop-claim", "main", "Drop the database claim");
    const status = await eventually("the preview status on the PR head", 60_000, async () =>
      (await gitea.statuses(repo, head)).find((s) => s.context === "berth/preview/db"),
    );
    expect(status.status).toBe("failure");
    expect(status.description).toBe("2 changed, 1 deleted; held by rule no-pvc-delete, the prune guard");
    const comments = await eventually("the preview comment", 30_000, async () => {
      const c = (await gitea.comments(repo, pr)).filter((x) => x.body.includes("<!-- berth:preview:db -->"));
      return c.length > 0 ? c : undefined;
    });
    expect(comments.length).toBe(1);
    const body = comments[0]?.body ?? "";
    expect(body).toContain(`- deleted \`PersistentVolumeClaim/${ns}/data\``);
    expect(body).toContain(`- configured \`StatefulSet/${ns}/db\``);
    expect(body).toContain(`- configured \`ConfigMap/${ns}/settings\``);
    expect(body).toContain("**hold**");
    expect(body).toContain("no-pvc-delete");
    await quietSince(1500); // the audit log is written in batches
    const berth = auditEvents(cluster, since, "berth", ns);
    expect(berth.some((e) => /[?&]dryRun=All/.test(e.requestURI))).toBe(true);
    expect(writesIn(berth)).toEqual([]);
  }, 120_000);

  test("merging it triggers the real sync, held as predicted; the claim stays", async () => {
    await gitea.api("POST", `/repos/${gitea.user}/infra/pulls/${pr}/merge`, { Do: "merge" });
    const held = await eventually("the merged revision's sync held", 60_000, async () => {
      const { entries } = await get<{
        entries: Array<{ id: number; revision: string; reason: string; message: string }>;
      }>("/api/v1/ledger?app=db&limit=5");
      return entries.find((e) => e.reason === "PlanRejected");
    });
    // The merge commit's sync (not the first commit's, which applied the claim).
    expect(held.revision).not.toContain(mainSha);
    expect(held.revision).not.toContain(head);
    expect(held.message).toContain("held for approval by rule no-pvc-delete");
    const entry = await get<{ verdicts?: Array<{ rule: string; verdict: string }> }>(
      `/api/v1/ledger/${held.id}`,
    );
    expect(entry.verdicts?.map((v) => `${v.rule} ${v.verdict}`)).toEqual([
      "no-pvc-delete hold",
      "prune-guard hold",
    ]);
    expect(kubectl(cluster, "get", "pvc", "data", "-n", ns, "-o", "name")).toContain("data");
  }, 120_000);
});
