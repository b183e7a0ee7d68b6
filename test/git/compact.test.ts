/** Folding a Git cache's packs (agent/source/compact.ts) against a real smart-HTTP server and the system git. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compactCache, MAX_PACKS, RETIRED_GRACE_MS } from "../../agent/source/compact.ts";
import { GitSource } from "../../agent/source/git-source.ts";
import { commitWide, GitFixture, type TreeEntry } from "../support/git.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
const cm = (i: number, value: number) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata:\n  k: "${value}"\n`;

/** Pack files on disk, and those the fold retired. */
function packs(gitdir: string): { onDisk: string[]; retired: string[] } {
  const dir = join(gitdir, "objects", "pack");
  const file = join(gitdir, "berth-retired-packs.json");
  return {
    onDisk: readdirSync(dir).filter((n) => n.endsWith(".pack")),
    retired: existsSync(file) ? Object.keys(JSON.parse(readFileSync(file, "utf8"))) : [],
  };
}

describe("folding a Git cache's packs", () => {
  let fixture: GitFixture;
  let cacheDir: string;
  let first: string;
  /** Each file's content at the tip. */
  const expected = new Map<string, string>();
  const change = (i: number, value: number) => {
    expected.set(`app/cm-${i}.yaml`, cm(i, value));
    return fixture.commit("busy", { [`app/cm-${i}.yaml`]: cm(i, value) });
  };

  beforeAll(async () => {
    fixture = await GitFixture.start();
    fixture.createRepo("busy");
    const files: Record<string, TreeEntry> = { "app/link.yaml": { symlink: "cm-0.yaml" } };
    for (let i = 0; i < 20; i++) {
      files[`app/cm-${i}.yaml`] = cm(i, 0);
      expected.set(`app/cm-${i}.yaml`, cm(i, 0));
    }
    first = fixture.commit("busy", files);
    cacheDir = mkdtempSync(join(tmpdir(), "berth-compact-"));
  });

  afterAll(async () => {
    await fixture.close();
    rmSync(cacheDir, { recursive: true, force: true });
  });

  test("a commit a fetch: past MAX_PACKS packs they are folded into one; every snapshot reads the whole tree", async () => {
    const s = new GitSource({ url: fixture.url("busy"), ref: "main", cacheDir, retries: 0 });
    const before = await s.snapshot(await s.resolve());
    let tip = first;
    for (let c = 1; c <= MAX_PACKS; c++) {
      tip = change(c % 20, c);
      const snap = await s.snapshot(await s.resolve());
      expect(text(await snap.readBlob(`app/cm-${c % 20}.yaml`))).toBe(cm(c % 20, c));
    }
    // The first fetch and MAX_PACKS more made MAX_PACKS + 1 packs: folded into one.
    const folded = packs(s.gitdir);
    expect(folded.onDisk).toHaveLength(MAX_PACKS + 2);
    expect(folded.retired).toHaveLength(MAX_PACKS + 1);
    // The tip is the shallow boundary now: its parents went with the old packs.
    expect(readFileSync(join(s.gitdir, "shallow"), "utf8")).toBe(`${tip}\n`);
    // A snapshot opened before the fold still reads what it saw (the retired packs stay a while).
    expect(text(await before.readBlob("app/cm-5.yaml"))).toBe(cm(5, 0));

    // One more commit: an incremental fetch on top of the folded pack.
    tip = change(3, 1000);
    const snap = await s.snapshot(await s.resolve());
    expect(snap.commit.sha).toBe(tip);
    for (const [path, content] of expected) expect(text(await snap.readBlob(path))).toBe(content);
    expect(text(await snap.readBlob("app/link.yaml"))).toBe("cm-0.yaml");

    // After the grace, the retired packs go; what is left is a sound repository to git itself.
    const gone = await compactCache(s.gitdir, { now: Date.now() + RETIRED_GRACE_MS + 1 });
    expect(gone).toBeUndefined();
    expect(packs(s.gitdir)).toEqual({ onDisk: expect.any(Array), retired: [] });
    expect(packs(s.gitdir).onDisk).toHaveLength(2);
    execFileSync("git", ["--git-dir", s.gitdir, "fsck", "--no-dangling"], { stdio: "pipe" });
    const after = await s.snapshot(tip);
    expect(text(await after.readBlob("app/cm-3.yaml"))).toBe(cm(3, 1000));

    // A commit from before the fold is fetched again when asked for.
    const old = await s.snapshot(first);
    expect(text(await old.readBlob("app/cm-5.yaml"))).toBe(cm(5, 0));
  }, 60_000);

  test("a cache of more pack bytes than a fold may hold in memory is left unfolded", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-compact-big-"));
    try {
      const s = new GitSource({ url: fixture.url("busy"), ref: "main", cacheDir: dir, retries: 0 });
      await s.snapshot(await s.resolve());
      const onDisk = packs(s.gitdir).onDisk;
      expect(await compactCache(s.gitdir, { maxPacks: 0, maxBytes: 100 })).toBeUndefined();
      expect(packs(s.gitdir)).toEqual({ onDisk, retired: [] });
      expect(await compactCache(s.gitdir, { maxPacks: 0 })).toMatchObject({ retired: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a cache holding a tree over the snapshot's limit is left unfolded, the tree unparsed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-compact-wide-"));
    try {
      fixture.createRepo("wide");
      commitWide(join(fixture.dir, "repos", "wide.git"), { "app/cm.yaml": cm(0, 0) }, 250_000, cm(0, 0));
      const s = new GitSource({ url: fixture.url("wide"), ref: "main", cacheDir: dir, retries: 0 });
      await s.snapshot(await s.resolve());
      const onDisk = packs(s.gitdir).onDisk;
      expect(await compactCache(s.gitdir, { maxPacks: 0 })).toBeUndefined();
      expect(packs(s.gitdir)).toEqual({ onDisk, retired: [] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a fold that fails fails that attempt only, saying so; the commit is read at the next", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-compact-fail-"));
    try {
      const s = new GitSource({
        url: fixture.url("busy"),
        ref: "main",
        cacheDir: dir,
        retries: 0,
        maxPacks: 0,
      });
      // Where the fold records the packs it retired, a directory: recording them fails.
      mkdirSync(join(s.gitdir, "berth-retired-packs.json"), { recursive: true });
      const sha = await s.resolve();
      await expect(s.snapshot(sha)).rejects.toThrow(
        `git ${fixture.url("busy")}: could not fold the cache's packs in ${s.gitdir}`,
      );
      const snap = await s.snapshot(sha);
      expect(snap.commit.sha).toBe(sha);
      expect(text(await snap.readBlob("app/cm-3.yaml"))).toBe(expected.get("app/cm-3.yaml") as string);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a snapshot kept past a fold and its grace still reads its commit, from the folded pack", async () => {
    // Two sources of one repository share its cache: the branch that stays put keeps its snapshot (as the sync
    // loop does while the commit is unchanged) while the other's fetches fill and fold the cache.
    fixture.createRepo("shared");
    const files: Record<string, TreeEntry> = {};
    for (let i = 0; i < 5; i++) files[`app/cm-${i}.yaml`] = cm(i, 0);
    fixture.commit("shared", files);
    const dir = mkdtempSync(join(tmpdir(), "berth-compact-shared-"));
    try {
      const steady = new GitSource({ url: fixture.url("shared"), ref: "main", cacheDir: dir, retries: 0 });
      const busy = new GitSource({ url: fixture.url("shared"), ref: "busy", cacheDir: dir, retries: 0 });
      await steady.snapshot(await steady.resolve());
      // The kept commit's own pack holds the commit and the one file it changed; the others are in the first.
      fixture.commit("shared", { "app/cm-0.yaml": cm(0, 1) });
      const kept = await steady.snapshot(await steady.resolve());
      expect(text(await kept.readBlob("app/cm-0.yaml"))).toBe(cm(0, 1));
      for (let c = 1; c <= MAX_PACKS; c++) {
        fixture.commit("shared", { "busy.yaml": cm(99, c) }, { branch: "busy" });
        await busy.snapshot(await busy.resolve());
      }
      expect(packs(steady.gitdir).retired.length).toBeGreaterThan(0);
      expect(await compactCache(steady.gitdir, { now: Date.now() + RETIRED_GRACE_MS + 1 })).toBeUndefined();
      expect(packs(steady.gitdir).retired).toEqual([]);
      // Files it had not read yet, whose objects now sit in the folded pack only.
      for (let i = 1; i < 5; i++) expect(text(await kept.readBlob(`app/cm-${i}.yaml`))).toBe(cm(i, 0));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  test("nothing to keep (no branch fetched) folds nothing", async () => {
    const gitdir = mkdtempSync(join(tmpdir(), "berth-compact-empty-"));
    try {
      execFileSync("git", ["init", "--quiet", "--bare", gitdir]);
      expect(await compactCache(gitdir, { maxPacks: 0 })).toBeUndefined();
    } finally {
      rmSync(gitdir, { recursive: true, force: true });
    }
  });
});
