import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import git from "isomorphic-git";
import http from "isomorphic-git/http/node";
import { GitFixture } from "../support/git.ts";

describe("the local smart-HTTP Git server", () => {
  let open: GitFixture;
  let guarded: GitFixture;
  beforeAll(async () => {
    open = await GitFixture.start();
    guarded = await GitFixture.start({ token: "s3cret-token" });
  });
  afterAll(async () => {
    await open.close();
    await guarded.close();
  });

  test("isomorphic-git clones, then a fetch sees a second pushed commit", async () => {
    const url = open.createRepo("infra");
    const first = open.commit("infra", { "apps/web/cm.yaml": "kind: ConfigMap\n" }, { message: "first" });
    const dir = mkdtempSync(join(tmpdir(), "berth-clone-"));
    await git.clone({ fs, http, dir, url, ref: "main", singleBranch: true, depth: 1 });
    expect(await git.resolveRef({ fs, dir, ref: "HEAD" })).toBe(first);
    expect(readFileSync(join(dir, "apps/web/cm.yaml"), "utf8")).toBe("kind: ConfigMap\n");

    const second = open.commit("infra", { "apps/web/svc.yaml": "kind: Service\n" }, { message: "second" });
    expect(second).not.toBe(first);
    const fetched = await git.fetch({ fs, http, dir, url, ref: "main", singleBranch: true, depth: 1 });
    expect(fetched.fetchHead).toBe(second);
    const { commit } = await git.readCommit({ fs, dir, oid: second });
    expect(commit.message.trim()).toBe("second");
    // The server really answered smart-HTTP requests.
    const services = open.server.requests.map((r) => r.service ?? r.path);
    expect(services).toContain("git-upload-pack");
  });

  test("moving a branch backwards is visible to the next fetch", async () => {
    const url = open.createRepo("moving");
    const a = open.commit("moving", { "a.yaml": "a: 1\n" });
    const b = open.commit("moving", { "b.yaml": "b: 1\n" });
    open.moveRef("moving", "main", a);
    const refs = await git.listServerRefs({ http, url, prefix: "refs/heads/" });
    expect(refs.find((r) => r.ref === "refs/heads/main")?.oid).toBe(a);
    expect(open.head("moving")).toBe(a);
    expect(b).not.toBe(a);
  });

  test("the right token is accepted and a wrong token is refused with 401", async () => {
    const url = guarded.createRepo("private");
    const sha = guarded.commit("private", { "x.yaml": "x: 1\n" });
    const good = await git.listServerRefs({
      http,
      url,
      onAuth: () => ({ username: "x-token", password: "s3cret-token" }),
    });
    expect(good.find((r) => r.ref === "refs/heads/main")?.oid).toBe(sha);

    const dir = mkdtempSync(join(tmpdir(), "berth-clone-"));
    let error: unknown;
    try {
      await git.clone({
        fs,
        http,
        dir,
        url,
        onAuth: () => ({ username: "x-token", password: "wrong" }),
        onAuthFailure: () => ({ cancel: true }),
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(Error);
    expect((error as { code?: string }).code).toMatch(/HttpError|UserCanceledError/);
    expect(guarded.server.requests.some((r) => r.status === 401)).toBe(true);

    let anonymous: unknown;
    try {
      await git.listServerRefs({ http, url });
    } catch (err) {
      anonymous = err;
    }
    expect((anonymous as { code?: string }).code).toBe("HttpError");
    expect(String((anonymous as Error).message)).toContain("401");
  });
});
