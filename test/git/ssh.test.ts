/** Git over SSH through the system git and a real sshd: deploy key, strict host keys, signed-commit verification, a sync. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Wired } from "../../agent/cli/wire.ts";
import { runGit } from "../../agent/source/ssh-git.ts";
import { SshSource } from "../../agent/source/ssh-source.ts";
import { VerifiedSource } from "../../agent/source/verify.ts";
import { syncApp, wireFor, writeConfig } from "../support/berth.ts";
import { freshNamespace, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { commitWide } from "../support/git.ts";
import { BLOB, OFS_DELTA, ofsDistance, pack, packEntry, varint } from "../support/pack.ts";
import { Committer, makeKey, SshdFixture } from "../support/sshd.ts";

const IDENTITY = {
  GIT_AUTHOR_NAME: "Test",
  GIT_AUTHOR_EMAIL: "test@example.test",
  GIT_COMMITTER_NAME: "Test",
  GIT_COMMITTER_EMAIL: "test@example.test",
};

let sshd: SshdFixture;
let repo: Committer;
let url: string;
const cacheDir = () => mkdtempSync(join(tmpdir(), "berth-sshcache-"));

const cm = (name: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata: {value: "${value}"}\n`;

beforeAll(async () => {
  sshd = await SshdFixture.start();
  url = sshd.createRepo("infra");
  repo = new Committer(sshd.bareDir("infra"));
});

afterAll(async () => {
  await sshd?.close();
});

/** An SshSource of the test repository with a fresh cache, a key and a known_hosts file. */
const sshSource = (ref: string, keyFile: string, knownHostsFile: string) =>
  new SshSource({ url, ref, cacheDir: cacheDir(), ssh: { keyFile, knownHostsFile } });

describe("SshSource", () => {
  test("resolves the branch with ls-remote and reads the commit's tree from a bare cache", async () => {
    const sha = repo.commit(
      { "apps/a/cm.yaml": cm("one", "1"), "apps/a/sub/x.yaml": cm("two", "2") },
      "first",
    );
    const source = sshSource("main", sshd.deployKey.file, sshd.knownHosts());
    expect(await source.resolve()).toBe(sha);
    const snap = await source.snapshot(sha);
    expect(snap.revision).toBe(`main@sha1:${sha}`);
    expect(snap.commit).toMatchObject({ sha, author: "Test <test@example.test>", message: "first" });
    expect((await snap.readDir("apps/a")).map((e) => `${e.name}:${e.type}`)).toEqual([
      "cm.yaml:blob",
      "sub:tree",
    ]);
    expect(new TextDecoder().decode(await snap.readBlob("apps/a/sub/x.yaml"))).toBe(cm("two", "2"));
    expect(await snap.stat("nope")).toBeUndefined();
    await expect(snap.readBlob("apps/a")).rejects.toThrow("apps/a at main@sha1:");
    const next = repo.commit({ "apps/a/cm.yaml": cm("one", "changed") }, "second");
    expect(await source.resolve()).toBe(next);
    expect(
      new TextDecoder().decode(await (await source.snapshot(next)).readBlob("apps/a/cm.yaml")),
    ).toContain("changed");
  }, 60_000);

  test("a file over the one-object limit (64 MiB, or the source's own) is refused from the listing, unread; git's output is capped", async () => {
    const sha = repo.commit(
      { "apps/big/cm.yaml": cm("big", "1"), "apps/big/zeros.bin": "0".repeat(80 * 1024 * 1024) },
      "a large file",
    );
    const snap = await sshSource("main", sshd.deployKey.file, sshd.knownHosts()).snapshot(sha);
    await expect(snap.readBlob("apps/big/zeros.bin")).rejects.toThrow(
      `apps/big/zeros.bin at main@sha1:${sha}: the file is 83886080 bytes, over the limit of 67108864 for one file (the source's limits.maxObjectBytes)`,
    );
    expect(new TextDecoder().decode(await snap.readBlob("apps/big/cm.yaml"))).toBe(cm("big", "1"));
    // Raised by the source's limits, the same file is read (as over HTTP).
    const raised = new SshSource({
      url,
      ref: "main",
      cacheDir: cacheDir(),
      ssh: { keyFile: sshd.deployKey.file, knownHostsFile: sshd.knownHosts() },
      limits: { maxObjectBytes: 96 * 1024 * 1024 },
    });
    expect((await (await raised.snapshot(sha)).readBlob("apps/big/zeros.bin")).length).toBe(80 * 1024 * 1024);
    // A reader's own limit (render's file size) is checked against the listing too.
    await expect(snap.readBlob("apps/big/cm.yaml", { maxBytes: 10 })).rejects.toThrow(
      `apps/big/cm.yaml: file is ${cm("big", "1").length} bytes, over the limit of 10`,
    );
    // Whatever the listing says, a run that prints more than its limit is stopped.
    await expect(runGit(["version"], { subject: "git version", maxOutputBytes: 4 })).rejects.toThrow(
      "git version: git printed more than 4 bytes (the limit) and was stopped",
    );
    repo.commit({ "apps/big/zeros.bin": "" }, "emptied");
  }, 60_000);

  test("a fetch bringing more than its limit is refused while it arrives, storing nothing; the next commit is fetched", async () => {
    // Base64 of random bytes: zlib keeps ~3/4 of it, so the pack is ~2.3 MiB against a limit of 1 MiB.
    const noise = randomBytes(3 * 1024 * 1024).toString("base64");
    const big = repo.commit({ "apps/noise/cm.yaml": cm("n", "1"), "apps/noise/noise.txt": noise }, "noise");
    const cache = cacheDir();
    const source = new SshSource({
      url,
      ref: "main",
      cacheDir: cache,
      ssh: { keyFile: sshd.deployKey.file, knownHostsFile: sshd.knownHosts() },
      limits: { maxPackBytes: 1024 * 1024 },
    });
    await expect(source.snapshot(big)).rejects.toThrow(
      `git ${url}: git fetch failed: the server sent more than 1048576 bytes, the limit for one fetch`,
    );
    // Nothing of the refused pack is kept: no commit, no pack, no temporary pack left to fill the disk.
    await expect(
      runGit(["--git-dir", source.gitdir, "cat-file", "-e", `${big}^{commit}`], { subject: "check" }),
    ).rejects.toThrow();
    expect(readdirSync(join(source.gitdir, "objects", "pack"))).toEqual([]);
    // A killed process's temporary pack goes after an hour; one that may be another's fetch in progress stays.
    const packDir = join(source.gitdir, "objects", "pack");
    writeFileSync(join(packDir, "tmp_pack_old"), "x");
    utimesSync(
      join(packDir, "tmp_pack_old"),
      new Date(Date.now() - 2 * 3600_000),
      new Date(Date.now() - 2 * 3600_000),
    );
    writeFileSync(join(packDir, "tmp_pack_recent"), "x");
    // The file leaves Git: the next commit is small and comes through the same cache.
    const next = repo.commit({ "apps/noise/noise.txt": "" }, "quiet");
    const snap = await source.snapshot(next);
    expect(new TextDecoder().decode(await snap.readBlob("apps/noise/cm.yaml"))).toBe(cm("n", "1"));
    expect(readdirSync(packDir).filter((n) => n.startsWith("tmp_"))).toEqual(["tmp_pack_recent"]);
  }, 60_000);

  test("a small pack whose delta makes a blob over 64 MiB fails the fetch in git's own process, storing nothing", async () => {
    const bombUrl = sshd.createRepo("bomb");
    const bare = sshd.bareDir("bomb");
    // On the server, a pack of a 1 MiB blob and a 167-byte delta that copies it 80 times: an 80 MiB blob.
    const base = randomBytes(1 << 20);
    const copies = 80;
    const delta = Buffer.from([
      ...varint(base.length),
      ...varint(copies * base.length),
      ...Array(copies).fill([0xc0, 0x10]).flat(),
    ]);
    const made = createHash("sha1").update(`blob ${copies * base.length}\0`);
    for (let i = 0; i < copies; i++) made.update(base);
    const madeOid = made.digest("hex");
    const first = { type: BLOB, data: base };
    const second = { type: OFS_DELTA, base: ofsDistance(packEntry(first).length), data: delta };
    const packFile = join(bare, "objects", "pack", "pack-bomb.pack");
    writeFileSync(packFile, pack([first, second]));
    const run = (args: string[], input?: string) =>
      execFileSync("git", args, {
        cwd: bare,
        input,
        encoding: "utf8",
        env: { ...process.env, ...IDENTITY },
      }).trim();
    run(["index-pack", packFile]);
    expect(run(["cat-file", "-s", madeOid])).toBe(String(80 * 1024 * 1024));
    const baseOid = createHash("sha1").update(`blob ${base.length}\0`).update(base).digest("hex");
    const cmOid = run(["hash-object", "-w", "--stdin"], cm("b", "1"));
    const tree = run(
      ["mktree"],
      `100644 blob ${cmOid}\tcm.yaml\n100644 blob ${baseOid}\tbase.bin\n100644 blob ${madeOid}\tbig.bin\n`,
    );
    const sha = run(["commit-tree", tree, "-m", "bomb"]);
    run(["update-ref", "refs/heads/main", sha]);
    const source = new SshSource({
      url: bombUrl,
      ref: "main",
      cacheDir: cacheDir(),
      ssh: { keyFile: sshd.deployKey.file, knownHostsFile: sshd.knownHosts() },
    });
    await expect(source.snapshot(sha)).rejects.toThrow(
      /git fetch failed: .*attempting to allocate 83886081 over limit 67108864/,
    );
    await expect(
      runGit(["--git-dir", source.gitdir, "cat-file", "-e", `${sha}^{commit}`], { subject: "check" }),
    ).rejects.toThrow();
    expect(readdirSync(join(source.gitdir, "objects", "pack"))).toEqual([]);
  }, 60_000);

  test("directories are listed when read; one whose listing is over 16 MiB is refused, naming it", async () => {
    const wideUrl = sshd.createRepo("wide");
    // 250,000 entries: a 10 MB tree, listed by `git ls-tree -l` in 18.5 MB.
    const sha = commitWide(
      sshd.bareDir("wide"),
      { "app/cm.yaml": cm("one", "1"), "app/sub/x.yaml": cm("one", "1") },
      250_000,
      cm("one", "1"),
    );
    const source = new SshSource({
      url: wideUrl,
      ref: "main",
      cacheDir: cacheDir(),
      ssh: { keyFile: sshd.deployKey.file, knownHostsFile: sshd.knownHosts() },
    });
    const snap = await source.snapshot(sha);
    expect((await snap.readDir("app")).map((e) => `${e.path}:${e.type}`)).toEqual([
      "app/cm.yaml:blob",
      "app/sub:tree",
    ]);
    expect(new TextDecoder().decode(await snap.readBlob("app/sub/x.yaml"))).toBe(cm("one", "1"));
    expect(await snap.stat("app/nope/x.yaml")).toBeUndefined();
    await expect(snap.readDir("app/cm.yaml")).rejects.toThrow(
      `app/cm.yaml at main@sha1:${sha}: not a directory`,
    );
    await expect(snap.readBlob("app/nope/x.yaml")).rejects.toThrow("app/nope/x.yaml at main@sha1:");
    const refused = `wide at main@sha1:${sha}: the directory's listing is over 16777216 bytes, the limit for one directory`;
    await expect(snap.readDir("wide")).rejects.toThrow(refused);
    // Below it, nothing reads as missing.
    await expect(snap.readBlob("wide/f000001.yaml")).rejects.toThrow(refused);
    await expect(snap.stat("wide/f000001.yaml")).rejects.toThrow(refused);
  }, 60_000);

  test("a changed host key is refused", async () => {
    const impostor = makeKey(mkdtempSync(join(tmpdir(), "berth-k-")), "impostor");
    const source = sshSource("main", sshd.deployKey.file, sshd.knownHosts(impostor));
    await expect(source.resolve()).rejects.toThrow(
      /git ssh:\/\/.*: git ls-remote failed: .*(HOST IDENTIFICATION HAS CHANGED|Host key verification failed)/,
    );
  }, 30_000);

  test("a key the server does not authorize is refused", async () => {
    const stranger = makeKey(mkdtempSync(join(tmpdir(), "berth-k-")), "stranger");
    const source = sshSource("main", stranger.file, sshd.knownHosts());
    await expect(source.resolve()).rejects.toThrow(/Permission denied/);
  }, 30_000);

  test("an unknown branch names what the server has", async () => {
    const source = sshSource("nope", sshd.deployKey.file, sshd.knownHosts());
    await expect(source.resolve()).rejects.toThrow('branch "nope" not found; available: main');
  }, 30_000);
});

describe("VerifiedSource", () => {
  test("accepts a commit signed by an allowed key, refuses unsigned and wrongly signed ones", async () => {
    const keys = mkdtempSync(join(tmpdir(), "berth-sign-"));
    const signer = makeKey(keys, "signer");
    const other = makeKey(keys, "other");
    const allowed = join(keys, "allowed_signers");
    writeFileSync(allowed, `ci@example.test ${signer.publicKey}\n`);
    const ssh = { keyFile: sshd.deployKey.file, knownHostsFile: sshd.knownHosts() };
    const source = new VerifiedSource(
      new SshSource({ url, ref: "main", cacheDir: cacheDir(), ssh }),
      allowed,
    );
    const good = repo.commit({ "v/cm.yaml": cm("v", "signed") }, "signed", signer.file);
    expect((await source.snapshot(await source.resolve())).commit.sha).toBe(good);
    const unsigned = repo.commit({ "v/cm.yaml": cm("v", "unsigned") }, "unsigned");
    await expect(source.snapshot(await source.resolve())).rejects.toThrow(
      `commit ${unsigned}: is not signed; refused`,
    );
    const wrong = repo.commit({ "v/cm.yaml": cm("v", "wrong") }, "wrong key", other.file);
    await expect(source.snapshot(await source.resolve())).rejects.toThrow(
      `commit ${wrong}: is signed by a key that is not in the allowed signers file`,
    );
  }, 60_000);
});

describe("berth over SSH against the real control plane", () => {
  let cluster: TestCluster;
  let w: Wired;
  let ns: string;
  let signer: { file: string; publicKey: string };

  beforeAll(async () => {
    cluster = await useCluster();
    ns = await freshNamespace(cluster, "ssh");
    const keys = mkdtempSync(join(tmpdir(), "berth-sign-"));
    signer = makeKey(keys, "signer");
    const appUrl = sshd.createRepo("apps");
    const config = writeConfig(`apiVersion: berth.dev/v1alpha1
kind: Agent
source:
  url: "${appUrl}"
  ref: main
  ssh: {keyFile: "${sshd.deployKey.file}", knownHostsFile: "${sshd.knownHosts()}"}
  verify: {allowedSignersFile: $DIR/allowed_signers}
apps:
  - {name: web, path: web, namespace: ${ns}, timeout: 60s}
ledger: {path: $DIR/ledger.db}
`);
    writeFileSync(join(config, "../allowed_signers"), `ci@example.test ${signer.publicKey}\n`);
    w = await wireFor(config, cluster.kubeconfigPath);
  }, 600_000);

  afterAll(() => {
    w?.close();
    try {
      kubectl(cluster, "delete", "namespace", ns, "--wait=false");
    } catch {}
  });

  test("syncs a signed commit over SSH; an unsigned head is refused and recorded, the verified one stays applied", async () => {
    const apps = new Committer(sshd.bareDir("apps"));
    const good = apps.commit({ "web/cm.yaml": cm("settings", "verified") }, "signed", signer.file);
    const first = await syncApp(w, "web");
    expect(first).toMatchObject({ outcome: "Succeeded", revision: `main@sha1:${good}` });
    expect(kubectl(cluster, "get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.value}")).toBe(
      "verified",
    );

    const bad = apps.commit({ "web/cm.yaml": cm("settings", "unsigned") }, "unsigned");
    const second = await syncApp(w, "web");
    expect(second).toMatchObject({ outcome: "Failed", reason: "FetchFailed" });
    expect(second.message).toContain(`commit ${bad}: is not signed; refused`);
    expect(kubectl(cluster, "get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.value}")).toBe(
      "verified",
    );
    const last = w.ledger.list({ app: "web", limit: 1 })[0];
    expect(last).toMatchObject({ reason: "FetchFailed" });
  }, 120_000);
});
