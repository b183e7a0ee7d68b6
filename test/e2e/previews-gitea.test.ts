/**
 * The preview must-show, with the compiled binary, the real control plane and a real Gitea: a pull
 * request that drops a StatefulSet's PersistentVolumeClaim gets a `berth/preview/db` failure status "held by
 * rule no-pvc-delete" on its head and a comment listing the changes, while berth writes nothing to the cluster
 * (audit log); merging it triggers the real sync, which is held as predicted (the ledger shows the hold) and
 * leaves the claim in place.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { writeBeside, writeConfig } from "../support/berth.ts";
import { apiAddress, getJson, untilReady } from "../support/binary.ts";
import { auditEvents, eventually, quietSince, writesIn } from "../support/cluster.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { git } from "../support/git.ts";
import { type GiteaServer, startGitea } from "../support/gitea.ts";
import {
  createBoundVolume,
  databaseFiles,
  dropClaimFiles,
  NO_PVC_DELETE_RULES,
  volumeNameFor,
} from "../support/previews.ts";

const t = useClusterTest({ prefix: "preview-gitea", git: false, binary: true });
const ns = t.ns;
const pv = volumeNameFor(t);
let gitea: GiteaServer;
let repo: string;
let work: string;
let base: string;
let mainSha = "";
const TOKEN = "e2e-read-token";

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

const get = async <T>(path: string): Promise<T> => (await getJson<T>(base, path, TOKEN)).body;

beforeAll(async () => {
  gitea = await startGitea();
  t.onTeardown(() => gitea.close());
  repo = await gitea.createRepo("infra");
  const dir = dirname(writeConfig("placeholder: true\n"));
  createBoundVolume(t.cluster, dir, ns, pv);
  work = join(dir, "work");
  mkdirSync(work);
  git(work, "init", "--quiet", "--initial-branch=main");
  mainSha = commit(databaseFiles(ns, pv), "a database with its claim");
  gitea.push(work, repo, "main");
  const api = await apiAddress();
  base = api.base;
  const config = writeConfig(
    `apiVersion: berth.dev/v1alpha1
kind: Agent
source: {url: "${repo}.git", ref: main, interval: 2s}
apps:
  - {name: db, path: app, namespace: ${ns}, timeout: 60s}
rules: ["$DIR/rules.yaml"]
ledger: {path: $DIR/ledger.db}
api:
  listen: 127.0.0.1:${api.port}
  externalURL: http://berth.test
  tokens: [{file: $DIR/read-token, scope: read}]
status: {provider: gitea, url: "${repo}", tokenFile: $DIR/gitea-token}
previews: {refs: ["refs/pull/*/head"], apps: [db], interval: 1s, comment: true}
`,
  );
  writeBeside(config, {
    "rules.yaml": NO_PVC_DELETE_RULES,
    "read-token": `${TOKEN}\n`,
    "gitea-token": `${gitea.token}\n`,
  });
  t.startRun(config);
  await untilReady(base, "the first sync", 120_000);
}, 900_000);

describe("a Gitea pull request dropping a StatefulSet's claim", () => {
  let pr = 0;
  let head = "";

  test("its head gets a failure status 'held by rule no-pvc-delete' and a comment; berth writes nothing", async () => {
    const since = await quietSince();
    git(work, "checkout", "--quiet", "-b", "drop-claim");
    head = commit(dropClaimFiles(), "drop the database claim");
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
    const berth = auditEvents(t.cluster, since, "berth", ns);
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
    expect(t.kubectl("get", "pvc", "data", "-n", ns, "-o", "name")).toContain("data");
  }, 120_000);
});
