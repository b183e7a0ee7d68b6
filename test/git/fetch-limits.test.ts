import { afterAll, beforeAll, describe, expect, spyOn, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repositoryFor } from "../../agent/cli/wire.ts";
import { parseConfig, type SourceConfig } from "../../agent/config/config.ts";
import { BerthError } from "../../agent/object/errors.ts";
import { BlobTooLargeError } from "../../agent/object/snapshot.ts";
import { render } from "../../agent/render/plain.ts";
import { GitSource, type GitSourceOptions } from "../../agent/source/git-source.ts";
import * as isoGit from "../../agent/source/iso-git.ts";
import { commitWide, GitFixture, git } from "../support/git.ts";

/** The pack files a cache holds. */
function packs(gitdir: string): string[] {
  const dir = join(gitdir, "objects", "pack");
  return existsSync(dir) ? readdirSync(dir).filter((name) => name.endsWith(".pack")) : [];
}

const MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  a: b\n";

describe("what one Git fetch may bring (a real smart-HTTP server)", () => {
  let fixture: GitFixture;
  const cacheDirs: string[] = [];

  function source(repo: string, options: Partial<GitSourceOptions> = {}): GitSource {
    const cacheDir = mkdtempSync(join(tmpdir(), "berth-limits-"));
    cacheDirs.push(cacheDir);
    return new GitSource({ url: fixture.url(repo), ref: "main", cacheDir, retries: 0, ...options });
  }

  /** The refusal `work` ends in, and the upload-pack requests the server saw meanwhile. */
  async function refusal(work: () => Promise<unknown>): Promise<{ error: BerthError; fetches: number }> {
    const before = fixture.server.requests.length;
    const error = await work().then(
      () => {
        throw new Error("expected a refusal");
      },
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(BerthError);
    const fetches = fixture.server.requests
      .slice(before)
      .filter((r) => r.path.endsWith("/git-upload-pack")).length;
    return { error: error as BerthError, fetches };
  }

  beforeAll(async () => {
    fixture = await GitFixture.start();
  });

  afterAll(async () => {
    await fixture.close();
    for (const dir of cacheDirs) rmSync(dir, { recursive: true, force: true });
  });

  test("a blob over the one-object limit (64 MiB by default) is refused before it is inflated or written", async () => {
    fixture.createRepo("bomb");
    // 80 MiB of one byte: the pack carries it in about 80 KiB.
    fixture.commit("bomb", {
      "apps/web/cm.yaml": MANIFEST,
      "assets/zeros.bin": "0".repeat(80 * 1024 * 1024),
    });
    const s = source("bomb", { retries: 2, retryDelayMs: 10 });
    const { error, fetches } = await refusal(async () => s.snapshot(await s.resolve()));
    expect(error.subject).toBe(`git ${fixture.url("bomb")}`);
    expect(error.reason).toBe("FetchFailed");
    expect(error.message).toContain(
      "the pack holds a blob of 83886080 bytes, over the limit of 67108864 bytes for one object",
    );
    expect(error.message).toContain("nothing was fetched");
    expect(fetches).toBe(1); // not retried: the server would send the same pack
    expect(packs(s.gitdir)).toEqual([]);

    // The user removes the file: the next commit is fetched and read, though the refused one is its parent.
    const fixed = fixture.commit("bomb", { "assets/zeros.bin": null });
    const snap = await s.snapshot(await s.resolve());
    expect(snap.commit.sha).toBe(fixed);
    expect(new TextDecoder().decode(await snap.readBlob("apps/web/cm.yaml"))).toBe(MANIFEST);
    expect(await snap.stat("assets/zeros.bin")).toBeUndefined();
  });

  test("after a refused incremental fetch, the commit that removes the file is fetched", async () => {
    fixture.createRepo("later");
    fixture.commit("later", { "cm.yaml": MANIFEST, "notes.txt": "x".repeat(20_000) });
    const s = source("later", { limits: { maxObjectBytes: 1024 * 1024 } });
    await s.snapshot(await s.resolve());
    const packsBefore = packs(s.gitdir);
    const bad = fixture.commit("later", { "notes.txt": "y".repeat(2 * 1024 * 1024) });
    const { error } = await refusal(async () => s.snapshot(await s.resolve()));
    expect(error.message).toContain("over the limit of 1048576 bytes for one object");
    expect(packs(s.gitdir)).toEqual(packsBefore);
    await expect(s.snapshot(bad)).rejects.toThrow("over the limit of 1048576 bytes for one object");
    const fixed = fixture.commit("later", { "notes.txt": "z\n" });
    const snap = await s.snapshot(await s.resolve());
    expect(snap.commit.sha).toBe(fixed);
    expect(new TextDecoder().decode(await snap.readBlob("notes.txt"))).toBe("z\n");
    expect(new TextDecoder().decode(await snap.readBlob("cm.yaml"))).toBe(MANIFEST);
  });

  test("render refuses a file over its limit from the pack's headers, without inflating it", async () => {
    fixture.createRepo("render-big");
    fixture.commit("render-big", {
      "app/cm.yaml": MANIFEST,
      // 20 MiB: within what a fetch may bring, ten times render's file limit.
      "app/big.yaml": `# ${"x".repeat(20 * 1024 * 1024 - 3)}\n`,
    });
    const s = source("render-big");
    const snap = await s.snapshot(await s.resolve());
    const inflated = spyOn(isoGit, "readBlob");
    try {
      const result = await render(snap, "app");
      expect(result.errors).toEqual([
        {
          path: "app/big.yaml",
          message: "file is 20971520 bytes, over the limit of 2097152 (render.maxFileBytes)",
        },
      ]);
      // Only cm.yaml was inflated.
      expect(inflated).toHaveBeenCalledTimes(1);
      await expect(snap.readBlob("app/big.yaml", { maxBytes: 1024 })).rejects.toBeInstanceOf(
        BlobTooLargeError,
      );
      expect(inflated).toHaveBeenCalledTimes(1);
      // Without a limit it is read whole, as tools that copy the tree do.
      expect((await snap.readBlob("app/big.yaml")).byteLength).toBe(20 * 1024 * 1024);
    } finally {
      inflated.mockRestore();
    }
  });

  test("a directory whose tree object is over 8 MiB is refused from the pack's headers, unparsed, naming it", async () => {
    fixture.createRepo("wide");
    // 250,000 entries of 40 bytes: a 10 MB tree, which the depth-1 fetch carries (it is within the fetch limits).
    const sha = commitWide(
      join(fixture.dir, "repos", "wide.git"),
      { "app/cm.yaml": MANIFEST },
      250_000,
      MANIFEST,
    );
    const s = source("wide");
    const snap = await s.snapshot(await s.resolve());
    const parsed = spyOn(isoGit, "readTree");
    try {
      const refused = `wide: the directory's tree object is 10000000 bytes, over the limit of 8388608 at main@sha1:${sha}`;
      await expect(snap.readDir("wide")).rejects.toThrow(refused);
      // Below it, nothing reads as missing: each path names the refused directory.
      await expect(snap.readBlob("wide/f000001.yaml")).rejects.toThrow(refused);
      await expect(snap.stat("wide/f000001.yaml")).rejects.toThrow(refused);
      const result = await render(snap, "wide");
      expect(result.errors).toEqual([{ path: "wide", message: refused }]);
      expect(result.objects).toEqual([]);
      // Only the root tree and app's were parsed; the wide one never was.
      expect((await render(snap, "app")).objects.map((o) => o.ref.name)).toEqual(["web"]);
      expect(parsed).toHaveBeenCalledTimes(2);
    } finally {
      parsed.mockRestore();
    }
  });

  test("a commit message is kept up to 16 KiB (it goes into every ledger entry and alert), saying it was cut", async () => {
    fixture.createRepo("long-message");
    // Git's command line takes one argument of at most 128 KiB; 100,000 characters is well over what berth keeps.
    const message = `deploy\n\n${"the same line again\n".repeat(5000)}`.slice(0, 100_000);
    const sha = fixture.commit("long-message", { "cm.yaml": MANIFEST }, { message });
    const s = source("long-message");
    const snap = await s.snapshot(await s.resolve());
    expect(snap.commit.sha).toBe(sha);
    expect(snap.commit.message).toBe(
      `${message.trimEnd().slice(0, 16 * 1024)}… (cut: ${message.trimEnd().length} characters in all)`,
    );
  });

  test("an answer over the pack limit is cut off while it arrives", async () => {
    fixture.createRepo("noise");
    // Random bytes do not compress: the pack is about as large as the file.
    fixture.commit("noise", { "cm.yaml": MANIFEST, "noise.txt": randomBytes(192 * 1024).toString("base64") });
    const s = source("noise", { limits: { maxPackBytes: 64 * 1024 } });
    const { error } = await refusal(async () => s.snapshot(await s.resolve()));
    expect(error.subject).toBe(`git ${fixture.url("noise")}`);
    expect(error.message).toContain("the server sent more than 65536 bytes in one answer");
    expect(packs(s.gitdir)).toEqual([]);
    // The same repository under the default limits.
    const fine = source("noise");
    const snap = await fine.snapshot(await fine.resolve());
    expect(new TextDecoder().decode(await snap.readBlob("cm.yaml"))).toBe(MANIFEST);
  });

  test("a list of refs over its limit is cut off while it arrives: polling fails, saying why", async () => {
    fixture.createRepo("tags");
    fixture.commit("tags", { "cm.yaml": MANIFEST });
    const work = join(fixture.dir, "work", "tags");
    const refs = Array.from(
      { length: 500 },
      (_, i) => `create refs/tags/release-${String(i).padStart(4, "0")} HEAD\n`,
    );
    execFileSync("git", ["update-ref", "--stdin"], { cwd: work, input: refs.join("") });
    git(work, "push", "--quiet", "origin", "--tags");
    // 500 tags: about 30 KiB of ref advertisement.
    const s = source("tags", { limits: { maxRefsBytes: 8 * 1024 } });
    const { error } = await refusal(() => s.resolve());
    expect(error.message).toBe(
      `git ${fixture.url("tags")}: the server sent more than 8192 bytes in one answer (the limit); nothing was fetched`,
    );
    expect(await source("tags").resolve()).toBe(fixture.head("tags", "main"));
  });

  test("objects that are each small but unpack to more than the total limit are refused", async () => {
    fixture.createRepo("many-big");
    const files: Record<string, string> = {};
    for (let i = 0; i < 5; i++) files[`data/${i}.txt`] = String(i).repeat(300 * 1024);
    fixture.commit("many-big", files);
    const s = source("many-big", { limits: { maxUnpackedBytes: 1024 * 1024 } });
    const { error } = await refusal(async () => s.snapshot(await s.resolve()));
    expect(error.message).toContain(
      "the pack's objects unpack to more than 1048576 bytes (the source's limits.maxUnpackedBytes)",
    );
    expect(packs(s.gitdir)).toEqual([]);
  });

  test("a pack of more objects than the limit is refused", async () => {
    fixture.createRepo("many-files");
    const files: Record<string, string> = {};
    for (let i = 0; i < 30; i++) files[`f${i}.yaml`] = `i: ${i}\n`;
    fixture.commit("many-files", files);
    const s = source("many-files", { limits: { maxObjects: 20 } });
    const { error } = await refusal(async () => s.snapshot(await s.resolve()));
    // 30 blobs, the root tree and the commit.
    expect(error.message).toContain("the pack holds 32 objects, over the limit of 20");
    expect(packs(s.gitdir)).toEqual([]);
    const fine = source("many-files");
    const snap = await fine.snapshot(await fine.resolve());
    expect(await snap.readDir("")).toHaveLength(30);
  });

  test("the limits of a source in berth.yaml reach its fetches, raised or lowered", async () => {
    fixture.createRepo("configured");
    // A 70 MiB file: over the default one-object limit, compressed to a small pack.
    fixture.commit("configured", { "app/cm.yaml": MANIFEST, "assets/big.bin": "z".repeat(70 * 1024 * 1024) });
    const sourceOf = (limits: string) => {
      const config = parseConfig(
        `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${fixture.url("configured")}"${limits}}\napps: [{name: a, path: app}]\n`,
        "/tmp/berth.yaml",
      );
      const cacheDir = mkdtempSync(join(tmpdir(), "berth-limits-"));
      cacheDirs.push(cacheDir);
      return repositoryFor(config.sources.default as SourceConfig, cacheDir);
    };
    const lowered = sourceOf(", limits: {maxObjects: 2}");
    const few = await refusal(async () => lowered.snapshot(await lowered.resolve()));
    expect(few.error.message).toContain(
      "over the limit of 2 (the source's limits.maxObjects); nothing was fetched",
    );
    const byDefault = sourceOf("");
    const big = await refusal(async () => byDefault.snapshot(await byDefault.resolve()));
    expect(big.error.message).toContain("for one object (the source's limits.maxObjectBytes;");
    const raised = sourceOf(", limits: {maxObjectBytes: 134217728}");
    const snap = await raised.snapshot(await raised.resolve());
    expect(new TextDecoder().decode(await snap.readBlob("app/cm.yaml"))).toBe(MANIFEST);
  });
});
