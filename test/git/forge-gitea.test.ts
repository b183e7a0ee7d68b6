/**
 * The forge client against a real Gitea (scripts/gitea/build.sh): commit statuses land on the commit, the
 * marked comment is created once and then edited, the open pull request of a head is found, and a bad token
 * is a non-retryable error that does not show the token.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { createForgeClient, type ForgeClient } from "../../agent/forge/forge.ts";
import { DeliveryError } from "../../agent/notify/http.ts";
import { GitFixture } from "../support/git.ts";
import { type GiteaServer, startGitea } from "../support/gitea.ts";

let gitea: GiteaServer;
let git: GitFixture;
let repo: string;
let forge: ForgeClient;
let base: string;
let head: string;

beforeAll(async () => {
  gitea = await startGitea();
  git = await GitFixture.start();
  git.createRepo("app");
  base = git.commit("app", { "a.yaml": "a: 1\n" }, { message: "base" });
  head = git.commit("app", { "a.yaml": "a: 2\n" }, { message: "change", branch: "feature" });
  repo = await gitea.createRepo("app");
  const bare = join(git.dir, "repos", "app.git");
  gitea.push(bare, repo, "refs/heads/main:refs/heads/main");
  gitea.push(bare, repo, "refs/heads/feature:refs/heads/feature");
  forge = createForgeClient({ provider: "gitea", url: repo, token: gitea.token, timeoutMs: 5000 });
}, 1_800_000);

afterAll(async () => {
  await Promise.all([gitea?.close(), git?.close()]);
});

test("setStatus creates and replaces the status of a context on a commit", async () => {
  await forge.setStatus({ sha: base, context: "berth/web", state: "pending", description: "syncing" });
  await forge.setStatus({
    sha: base,
    context: "berth/web",
    state: "failure",
    description: `health failed: ${"y".repeat(200)}`,
    targetUrl: "https://berth.example/#app=web",
  });
  const got = await gitea.statuses(repo, base);
  expect(got.map((s) => [s.context, s.status])).toEqual([
    ["berth/web", "pending"],
    ["berth/web", "failure"],
  ]);
  expect(got[1]?.description.length).toBeLessThanOrEqual(140);
  expect(got[1]?.target_url).toBe("https://berth.example/#app=web");
});

test("pullsForHead finds the open pull request; comment creates once, then edits", async () => {
  const pr = await gitea.openPull(repo, "feature", "main", "Change a");
  const pulls = await forge.pullsForHead(head);
  expect(pulls.map((p) => [p.number, p.headRef, p.baseRef, p.headSha])).toEqual([
    [pr, "feature", "main", head],
  ]);
  expect(await forge.pullsForHead(base)).toEqual([]);
  const first = await forge.comment({ pr, body: "3 changed, 1 deleted", marker: "preview/web" });
  const again = await forge.comment({ pr, body: "2 changed", marker: "preview/web" });
  const other = await forge.comment({ pr, body: "api preview", marker: "preview/api" });
  expect(first.created).toBe(true);
  expect(again).toEqual({ id: first.id, created: false });
  expect(other.created).toBe(true);
  const comments = await gitea.comments(repo, pr);
  expect(comments.map((c) => c.body)).toEqual([
    "<!-- berth:preview/web -->\n2 changed",
    "<!-- berth:preview/api -->\napi preview",
  ]);
});

test("a bad token is a non-retryable error naming the request, not the token", async () => {
  const bad = createForgeClient({ provider: "gitea", url: repo, token: "not-a-token-123", timeoutMs: 5000 });
  const err = await bad
    .setStatus({ sha: base, context: "berth/web", state: "success", description: "x" })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DeliveryError);
  expect((err as DeliveryError).retryable).toBe(false);
  expect((err as DeliveryError).status).toBe(401);
  expect((err as Error).message).toContain(`/api/v1/repos/berth/app/statuses/${base}`);
  expect((err as Error).message).not.toContain("not-a-token-123");
});
