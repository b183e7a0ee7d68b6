import { afterAll, beforeAll, describe, expect, spyOn, test } from "bun:test";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { deflateSync } from "node:zlib";
import { GitSource, type GitSourceOptions } from "../../agent/source/git-source.ts";
import { GitFixture, git } from "../support/git.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Sizes of the pack files in a cache. */
function packSizes(gitdir: string): number[] {
  const dir = join(gitdir, "objects", "pack");
  return readdirSync(dir)
    .filter((name) => name.endsWith(".pack"))
    .map((name) => statSync(join(dir, name)).size);
}

describe("GitSource against a real smart-HTTP server", () => {
  let fixture: GitFixture;
  let url: string;
  let first: string;
  const cacheDirs: string[] = [];

  function source(options: Partial<GitSourceOptions> = {}): GitSource {
    const cacheDir = mkdtempSync(join(tmpdir(), "berth-source-"));
    cacheDirs.push(cacheDir);
    return new GitSource({ url, ref: "main", cacheDir, retries: 0, ...options });
  }

  /** Requests the server logged while `work` ran. */
  async function requestsDuring(work: () => Promise<unknown>) {
    const before = fixture.server.requests.length;
    await work();
    return fixture.server.requests.slice(before);
  }

  beforeAll(async () => {
    fixture = await GitFixture.start();
    url = fixture.createRepo("infra");
    first = fixture.commit(
      "infra",
      {
        "README.md": "# infra\n",
        "apps/web/deployment.yaml": "kind: Deployment\n",
        "apps/web/config/settings.yaml": "level: debug\n",
        "apps/api/service.yaml": "kind: Service\n",
        "apps/current": { symlink: "web" },
      },
      { message: "first commit\n\nwith a body", author: { name: "Ada Lovelace", email: "ada@example.test" } },
    );
    fixture.commit("infra", { "dev-only.yaml": "dev: true\n" }, { branch: "dev" });
    // A lightweight and an annotated tag on the first commit.
    const work = join(fixture.dir, "work", "infra");
    git(work, "tag", "light", first);
    git(
      work,
      "-c",
      "user.name=T",
      "-c",
      "user.email=t@example.test",
      "tag",
      "-a",
      "v1.0",
      "-m",
      "release",
      first,
    );
    git(work, "push", "--quiet", "origin", "light", "v1.0");
  });

  afterAll(async () => {
    await fixture.close();
    for (const dir of cacheDirs) rmSync(dir, { recursive: true, force: true });
  });

  test("resolve returns the tip of a branch with exactly one request", async () => {
    const s = source();
    const requests = await requestsDuring(async () => expect(await s.resolve()).toBe(first));
    expect(requests).toHaveLength(1);
    expect(requests[0]?.path).toBe("/infra.git/info/refs");
    expect(await source({ ref: "dev" }).resolve()).toBe(fixture.head("infra", "dev"));
  });

  test("resolve handles lightweight and annotated tags (peeled) and full SHAs (no request)", async () => {
    expect(await source({ ref: "light" }).resolve()).toBe(first);
    const tagObject = fixture.head("infra", "refs/tags/v1.0");
    expect(tagObject).not.toBe(first);
    expect(await source({ ref: "v1.0" }).resolve()).toBe(first);
    expect(await source({ ref: "refs/tags/v1.0" }).resolve()).toBe(first);
    const pinned = source({ ref: first });
    const requests = await requestsDuring(async () => expect(await pinned.resolve()).toBe(first));
    expect(requests).toHaveLength(0);
  });

  test("snapshot reads nested directories, blobs, symlinks and commit metadata", async () => {
    const s = source();
    const snap = await s.snapshot(await s.resolve());
    expect(snap.revision).toBe(`main@sha1:${first}`);
    expect(snap.commit.sha).toBe(first);
    expect(snap.commit.author).toBe("Ada Lovelace <ada@example.test>");
    expect(snap.commit.message).toBe("first commit\n\nwith a body");
    expect(Math.abs(Date.parse(snap.commit.time) - Date.now())).toBeLessThan(5 * 60_000);
    expect(snap.commit.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    expect(await snap.readDir("")).toEqual([
      // A blob carries its Git object id (the render's parse memo keys on it).
      { name: "README.md", path: "README.md", type: "blob", oid: expect.stringMatching(/^[0-9a-f]{40}$/) },
      { name: "apps", path: "apps", type: "tree" },
    ]);
    expect(await snap.readDir("apps")).toEqual([
      { name: "api", path: "apps/api", type: "tree" },
      { name: "current", path: "apps/current", type: "symlink" },
      { name: "web", path: "apps/web", type: "tree" },
    ]);
    expect((await snap.readDir("/apps/web/")).map((e) => e.path)).toEqual([
      "apps/web/config",
      "apps/web/deployment.yaml",
    ]);
    expect(text(await snap.readBlob("apps/web/config/settings.yaml"))).toBe("level: debug\n");
    expect(text(await snap.readBlob("apps/current"))).toBe("web");
    expect(await snap.stat("apps/current")).toEqual({
      name: "current",
      path: "apps/current",
      type: "symlink",
    });
    expect(await snap.stat("apps/web")).toEqual({ name: "web", path: "apps/web", type: "tree" });
    expect(await snap.stat("")).toEqual({ name: "", path: "", type: "tree" });
    expect(await snap.stat("apps/nope.yaml")).toBeUndefined();
    expect(await snap.stat("nope/deeper/x.yaml")).toBeUndefined();
    expect(await snap.stat("README.md/x")).toBeUndefined();

    await expect(snap.readBlob("apps/missing.yaml")).rejects.toThrow("apps/missing.yaml");
    await expect(snap.readBlob("apps/web")).rejects.toThrow("directory");
    await expect(snap.readDir("README.md")).rejects.toThrow("README.md: not a directory");
    await expect(snap.readDir("no/such")).rejects.toThrow("no/such");
    await expect(snap.readBlob("../etc/passwd")).rejects.toThrow("..");
  });

  test("a snapshot asks the object store once for what cannot change; an object stored loose still reads", async () => {
    const s = source();
    const sha = await s.resolve();
    await (await s.snapshot(sha)).readBlob("README.md"); // fetched
    const calls: string[] = [];
    const spies = (["readdir", "stat", "readFile"] as const).map((name) => {
      const real = fs.promises[name].bind(fs.promises) as (...args: unknown[]) => unknown;
      return spyOn(fs.promises, name).mockImplementation(((...args: unknown[]) => {
        calls.push(`${name} ${String(args[0]).slice(s.gitdir.length)}`);
        return real(...args);
      }) as never);
    });
    try {
      const snap = await s.snapshot(sha);
      const paths = [
        "README.md",
        "apps/web/deployment.yaml",
        "apps/web/config/settings.yaml",
        "apps/api/service.yaml",
      ];
      const texts = await Promise.all(paths.map(async (p) => text(await snap.readBlob(p))));
      expect(texts).toEqual(["# infra\n", "kind: Deployment\n", "level: debug\n", "kind: Service\n"]);
      // Four blobs and their trees: the pack directory listed once, the repository's type asked once, and no
      // loose copy looked for (a fetch stores packs only; the fan-out directories were listed once).
      expect(calls.filter((c) => c === "readdir /objects/pack")).toHaveLength(1);
      expect(calls.filter((c) => c === "stat ")).toHaveLength(1);
      expect(calls.filter((c) => c === "readdir /objects")).toHaveLength(1);
      expect(calls.filter((c) => /^readFile \/objects\/[0-9a-f]{2}\//.test(c))).toEqual([]);
      // The check that the commit is there and the snapshot share one reader: the pack is read once.
      expect(calls.filter((c) => c.endsWith(".pack"))).toHaveLength(1);

      // The same blob written loose into the cache (as git itself may leave it) is read from there.
      const oid = git(s.gitdir, "rev-parse", `${sha}:apps/api/service.yaml`).trim();
      git(s.gitdir, "cat-file", "blob", oid); // it is in the pack
      const loose = join(s.gitdir, "objects", oid.slice(0, 2), oid.slice(2));
      mkdirSync(dirname(loose), { recursive: true });
      writeFileSync(
        loose,
        deflateSync(Buffer.concat([Buffer.from("blob 14\0"), Buffer.from("kind: Service\n")])),
      );
      calls.length = 0;
      const again = await s.snapshot(sha);
      expect(text(await again.readBlob("apps/api/service.yaml"))).toBe("kind: Service\n");
      expect(calls).toContain(`readFile /objects/${oid.slice(0, 2)}/${oid.slice(2)}`);
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });

  test("the cache holds a bare repository only, named without the URL", async () => {
    const s = source({ url: url.replace("http://", "http://someone:hunter2@") });
    await s.snapshot(first);
    const cacheDir = cacheDirs.at(-1) as string;
    const top = readdirSync(cacheDir);
    expect(top).toHaveLength(1);
    expect(top[0]).toMatch(/^[0-9a-f]{32}\.git$/);
    expect(s.gitdir).not.toContain("hunter2");
    expect(s.url).toBe(url);
    const inside = readdirSync(join(cacheDir, top[0] as string)).sort();
    // No checked-out files such as README.md or apps/: only the git directory's own layout.
    const gitLayout = [
      "FETCH_HEAD",
      "HEAD",
      "config",
      "description",
      "hooks",
      "info",
      "objects",
      "packed-refs",
      "refs",
      "shallow",
    ];
    for (const name of inside) expect(gitLayout).toContain(name);
    expect(inside).toContain("objects");
    expect(inside).not.toContain("README.md");
    expect(inside).not.toContain("apps");
  });

  test("an already cached commit costs no request; a no-change poll costs exactly one", async () => {
    const s = source();
    const fetched = await requestsDuring(() => s.snapshot(first));
    // Discovery GET plus one upload-pack POST.
    expect(fetched.map((r) => `${r.method} ${r.service ?? r.path}`)).toEqual([
      "GET git-upload-pack",
      "POST /infra.git/git-upload-pack",
    ]);
    const again = await requestsDuring(async () => {
      const snap = await s.snapshot(first);
      expect(text(await snap.readBlob("README.md"))).toBe("# infra\n");
    });
    expect(again).toHaveLength(0);

    let result: unknown;
    const polled = await requestsDuring(async () => {
      result = await s.poll(first);
    });
    expect(result).toEqual({ sha: first, changed: false });
    expect(polled).toHaveLength(1);
  });

  test("a second commit: poll reports the change, both snapshots stay readable", async () => {
    const repo = fixture.createRepo("moving");
    const a = fixture.commit("moving", { "a.yaml": "a: 1\n", "dir/x.yaml": "x: 1\n" }, { message: "a" });
    const s = source({ url: repo });
    const snapA = await s.snapshot((await s.poll()).sha);
    expect((await snapA.readDir("")).map((e) => e.name)).toEqual(["a.yaml", "dir"]);

    const b = fixture.commit(
      "moving",
      { "a.yaml": "a: 2\n", "dir/x.yaml": null, "b.yaml": "b: 1\n" },
      { message: "b" },
    );
    const polled = await s.poll(a);
    expect(polled).toEqual({ sha: b, changed: true });
    const snapB = await s.snapshot(b);
    expect(snapB.commit.message).toBe("b");
    expect((await snapB.readDir("")).map((e) => e.name)).toEqual(["a.yaml", "b.yaml"]);
    expect(text(await snapB.readBlob("a.yaml"))).toBe("a: 2\n");

    // The old commit is still in the cache: no network, same content as before.
    const old = await requestsDuring(async () => {
      const again = await s.snapshot(a);
      expect(text(await again.readBlob("a.yaml"))).toBe("a: 1\n");
      expect(text(await again.readBlob("dir/x.yaml"))).toBe("x: 1\n");
    });
    expect(old).toHaveLength(0);
    expect(await s.poll(b)).toEqual({ sha: b, changed: false });
  });

  test("the next commit is fetched incrementally, not as a whole new tree", async () => {
    const repo = fixture.createRepo("wide");
    const files: Record<string, string> = {};
    // Random content in a nested layout: blobs that do not compress, trees that stay small.
    for (let i = 0; i < 300; i++) {
      files[`apps/g${i % 20}/cm-${i}.yaml`] = `name: cm-${i}\ndata: "${randomBytes(200).toString("hex")}"\n`;
    }
    fixture.commit("wide", files);
    const s = source({ url: repo });
    await s.snapshot(await s.resolve());
    const packsBefore = packSizes(s.gitdir);
    const next = fixture.commit("wide", { "apps/g0/cm-0.yaml": "changed: true\n" });
    const snap = await s.snapshot((await s.poll()).sha);
    expect(snap.commit.sha).toBe(next);
    expect(text(await snap.readBlob("apps/g0/cm-0.yaml"))).toBe("changed: true\n");
    expect(text(await snap.readBlob("apps/g19/cm-299.yaml"))).toContain("cm-299");
    const added = packSizes(s.gitdir).filter((size) => !packsBefore.includes(size));
    expect(added).toHaveLength(1);
    expect(added[0] as number).toBeLessThan((packsBefore[0] as number) / 10);
  });

  test("a commit the branch has moved past is fetched with history", async () => {
    const repo = fixture.createRepo("history");
    const a = fixture.commit("history", { "v.yaml": "v: 1\n" });
    fixture.commit("history", { "v.yaml": "v: 2\n" });
    const s = source({ url: repo });
    const snap = await s.snapshot(a);
    expect(text(await snap.readBlob("v.yaml"))).toBe("v: 1\n");
  });

  test("a branch moved back to an uncached ancestor, then force-pushed elsewhere, still snapshots", async () => {
    const repo = fixture.createRepo("rewound");
    const a = fixture.commit("rewound", { "v.yaml": "v: 1\n" });
    const b = fixture.commit("rewound", { "v.yaml": "v: 2\n" });
    const s = source({ url: repo });
    expect(text(await (await s.snapshot(await s.resolve())).readBlob("v.yaml"))).toBe("v: 2\n");

    // Only b was fetched (depth 1); a is its parent and not in the cache yet.
    fixture.moveRef("rewound", "main", a);
    expect(await s.poll(b)).toEqual({ sha: a, changed: true });
    expect(text(await (await s.snapshot(a)).readBlob("v.yaml"))).toBe("v: 1\n");

    // A history that shares nothing with what the cache holds.
    const other = fixture.commit("rewound", { "w.yaml": "w: 1\n" }, { branch: "other", replace: true });
    fixture.moveRef("rewound", "main", other);
    const snap = await s.snapshot(await s.resolve());
    expect((await snap.readDir("")).map((e) => e.name)).toEqual(["w.yaml"]);
  });

  test("a pinned full SHA reads an older commit and names the revision sha1:<sha>", async () => {
    const repo = fixture.createRepo("pinned");
    const old = fixture.commit("pinned", { "v.yaml": "v: 1\n" });
    fixture.commit("pinned", { "v.yaml": "v: 2\n" });
    const s = source({ url: repo, ref: old });
    expect(await s.resolve()).toBe(old);
    const snap = await s.snapshot(old);
    expect(snap.revision).toBe(`sha1:${old}`);
    expect(text(await snap.readBlob("v.yaml"))).toBe("v: 1\n");

    const missing = "0123456789abcdef0123456789abcdef01234567";
    const p = source({ url: repo, ref: missing });
    await expect(p.snapshot(missing)).rejects.toThrow(`commit ${missing} not found`);
  });

  test("annotated tag snapshot", async () => {
    const s = source({ ref: "v1.0" });
    const snap = await s.snapshot(await s.resolve());
    expect(snap.revision).toBe(`v1.0@sha1:${first}`);
    expect(text(await snap.readBlob("README.md"))).toBe("# infra\n");
  });

  test("concurrent snapshots of one cache fetch once and both succeed", async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), "berth-source-"));
    cacheDirs.push(cacheDir);
    const a = new GitSource({ url, ref: "main", cacheDir, retries: 0 });
    const b = new GitSource({ url, ref: "main", cacheDir, retries: 0 });
    const requests = await requestsDuring(async () => {
      const snaps = await Promise.all([a.snapshot(first), b.snapshot(first), a.snapshot(first)]);
      for (const snap of snaps)
        expect(text(await snap.readBlob("apps/api/service.yaml"))).toBe("kind: Service\n");
    });
    expect(requests.filter((r) => r.method === "POST")).toHaveLength(1);
  });

  test("onRequest sees every request with its kind", async () => {
    const seen: string[] = [];
    const s = source({ onRequest: (kind, ok) => seen.push(`${kind}:${ok}`) });
    await s.snapshot(await s.resolve());
    expect(seen).toEqual(["refs:true", "refs:true", "fetch:true"]);
  });
});
