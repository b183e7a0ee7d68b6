/**
 * The OCI artifact source against a real registry (Debian's docker-registry, TLS + htpasswd) with artifacts
 * pushed by the real ORAS CLI: Flux-shaped and generic artifacts, semver ranges, the one-request poll, the
 * content-addressed cache, auth and outage errors, and hostile layers refused.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OciSource, type OciSourceOptions } from "../../agent/source/oci-source.ts";
import { OciRegistryFixture } from "../support/helm-repo.ts";
import { hostileTarGz, orasBinary, orasPush } from "../support/oras.ts";

const auth = { username: "berth", password: "s3cret-oci" };
let registry: OciRegistryFixture;
let work: string;

beforeAll(async () => {
  await orasBinary();
  registry = await OciRegistryFixture.start(auth);
  work = mkdtempSync(join(tmpdir(), "berth-oci-source-"));
}, 180_000);

afterAll(async () => {
  await registry?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

let caches = 0;
function source(
  repo: string,
  pick: Partial<OciSourceOptions>,
  extra: Partial<OciSourceOptions> = {},
): OciSource {
  return new OciSource({
    url: `oci://${registry.host}/${repo}`,
    cacheDir: join(work, `cache-${caches++}`),
    credentials: () => auth,
    ca: readFileSync(registry.caFile, "utf8"),
    retries: 0,
    timeoutMs: 10_000,
    ...pick,
    ...extra,
  });
}

/** `oras push --plain-http` (the support's orasPush speaks TLS). */
async function plainPush(plain: OciRegistryFixture, dir: string): Promise<string> {
  const oras = await orasBinary();
  writeFileSync(join(dir, "a.yaml"), "p: 1\n");
  execFileSync("tar", ["-czf", join(dir, "c.tgz"), "-C", dir, "a.yaml"]);
  const out = execFileSync(
    oras,
    [
      "push",
      `${plain.host}/plain/app:v1`,
      "--plain-http",
      "--username",
      auth.username,
      "--password-stdin",
      "--registry-config",
      join(dir, "auth.json"),
      "--format",
      "go-template={{.digest}}",
      "c.tgz:application/vnd.oci.image.layer.v1.tar+gzip",
    ],
    { cwd: dir, input: auth.password, encoding: "utf8", env: { PATH: process.env.PATH ?? "", HOME: dir } },
  );
  return /sha256:[0-9a-f]{64}/.exec(out)?.[0] ?? "";
}

const text = async (s: { readBlob(p: string): Promise<Uint8Array> }, p: string) =>
  new TextDecoder().decode(await s.readBlob(p));

describe("OCI artifact source", () => {
  test("a Flux-shaped artifact pushed by oras resolves to <tag>@<digest> and reads as a tree", async () => {
    const digest = await orasPush(
      registry,
      "manifests/flux:v1",
      { files: { "apps/web/cm.yaml": "kind: ConfigMap\n", "README.md": "hi\n" } },
      "flux",
      { "org.opencontainers.image.revision": "main@sha1:abc" },
    );
    const src = source("manifests/flux", { tag: "v1" });
    const revision = await src.resolve();
    expect(revision).toBe(`v1@${digest}`);
    const snap = await src.snapshot(revision);
    expect(snap.revision).toBe(`v1@${digest}`);
    expect(snap.commit.sha).toBe(digest);
    expect(snap.commit.message).toContain("main@sha1:abc");
    expect(await text(snap, "apps/web/cm.yaml")).toBe("kind: ConfigMap\n");
    expect((await snap.readDir("")).map((e) => e.name)).toEqual(["README.md", "apps"]);
  });

  test("a generic single-layer ORAS artifact is accepted; a digest source reads it with no tag", async () => {
    const digest = await orasPush(
      registry,
      "manifests/generic:latest",
      { files: { "a.yaml": "x: 1\n" } },
      "generic",
    );
    const src = source("manifests/generic", { digest });
    expect(await src.resolve()).toBe(digest);
    const snap = await src.snapshot(digest);
    expect(snap.revision).toBe(digest);
    expect(await text(snap, "a.yaml")).toBe("x: 1\n");
  });

  test("an untyped `oras push ref file.tgz` and an `oras push ref dir` are accepted too", async () => {
    await orasPush(registry, "manifests/untyped:v1", { files: { "a.yaml": "u: 1\n" } }, "untyped");
    const untyped = source("manifests/untyped", { tag: "v1" });
    expect(await text(await untyped.snapshot(await untyped.resolve()), "a.yaml")).toBe("u: 1\n");
    await orasPush(registry, "manifests/dir:v1", { files: { "apps/a.yaml": "d: 1\n" } }, "dir");
    const dir = source("manifests/dir", { tag: "v1" });
    // ORAS packs the directory under its own name.
    expect(await text(await dir.snapshot(await dir.resolve()), "tree/apps/a.yaml")).toBe("d: 1\n");
  });

  test("semver follows the highest matching tag, skipping pre-releases and other majors", async () => {
    for (const tag of ["1.0.0", "1.1.0", "2.0.0", "1.2.0-rc.1", "latest"])
      await orasPush(registry, `manifests/semver:${tag}`, { files: { "v.txt": tag } });
    const src = source("manifests/semver", { semver: "1.x" });
    const first = await src.resolve();
    expect(first.startsWith("1.1.0@sha256:")).toBe(true);
    expect(await text(await src.snapshot(first), "v.txt")).toBe("1.1.0");
    await orasPush(registry, "manifests/semver:1.3.0", { files: { "v.txt": "1.3.0" } });
    const next = await src.resolve();
    expect(next.startsWith("1.3.0@sha256:")).toBe(true);
    expect(await text(await src.snapshot(next), "v.txt")).toBe("1.3.0");
  });

  test("a no-change poll is one manifest request; a pulled artifact is read from the cache with none", async () => {
    await orasPush(registry, "manifests/poll:v1", { files: { "a.yaml": "a: 1\n" } });
    const cacheDir = join(work, "poll-cache");
    const src = source("manifests/poll", { tag: "v1" }, { cacheDir });
    const revision = await src.resolve();
    await src.snapshot(revision);
    const before = registry.requests.length;
    expect(await src.resolve()).toBe(revision);
    await new Promise((r) => setTimeout(r, 300)); // the access log line is written after the answer
    const poll = registry.requests.slice(before);
    expect(poll).toEqual([{ method: "HEAD", path: "/v2/manifests/poll/manifests/v1", status: 200 }]);
    // Another agent process on the same cache: the manifest and layer come from disk.
    const again = source("manifests/poll", { tag: "v1" }, { cacheDir });
    const mark = registry.requests.length;
    expect(await text(await again.snapshot(revision), "a.yaml")).toBe("a: 1\n");
    await new Promise((r) => setTimeout(r, 300));
    expect(registry.requests.slice(mark)).toEqual([]);
  });

  test("a wrong password is an authentication error naming the registry", async () => {
    const src = source(
      "manifests/flux",
      { tag: "v1" },
      { credentials: () => ({ ...auth, password: "wrong" }) },
    );
    const err = await src.resolve().catch((e: Error) => e);
    expect(String(err)).toContain(`OCI registry ${registry.host}`);
    expect(String(err)).toContain("authentication failed (HTTP 401)");
  });

  test("without the CA the registry's certificate is refused, naming the registry", async () => {
    const src = new OciSource({
      url: `oci://${registry.host}/manifests/flux`,
      tag: "v1",
      cacheDir: join(work, "noca"),
      credentials: () => auth,
      retries: 0,
    });
    const err = await src.resolve().catch((e: Error) => e);
    expect(String(err)).toContain(`OCI registry ${registry.host}`);
    expect(String(err)).toMatch(/TLS verification failed/);
  });

  test("plain HTTP only with insecure: true; without it the TLS handshake fails, naming the registry", async () => {
    const plain = await OciRegistryFixture.start(auth, { plainHttp: true });
    try {
      const work2 = mkdtempSync(join(tmpdir(), "berth-oci-plain-"));
      const digest = await plainPush(plain, work2);
      const base = {
        url: `oci://${plain.host}/plain/app`,
        tag: "v1",
        cacheDir: join(work2, "cache"),
        credentials: () => auth,
        retries: 0,
        timeoutMs: 5000,
      };
      const strict = await new OciSource(base).resolve().catch((e: Error) => e);
      expect(String(strict)).toContain(`OCI registry ${plain.host}`);
      expect(String(strict)).toContain("the registry does not speak HTTPS");
      const insecure = new OciSource({ ...base, insecure: true });
      expect(await insecure.resolve()).toBe(`v1@${digest}`);
      expect(await text(await insecure.snapshot(`v1@${digest}`), "a.yaml")).toBe("p: 1\n");
    } finally {
      await plain.close();
    }
  });

  const hostile: Array<[string, Parameters<typeof hostileTarGz>[0], RegExp]> = [
    ["a path climbing out", [{ path: "../../etc/cron.d/evil", body: "x" }], /climbs out of the artifact/],
    ["an absolute path", [{ path: "/etc/passwd", body: "x" }], /is an absolute path/],
    [
      "a symlink out",
      [{ path: "apps/link", type: "2", link: "../../../../etc/shadow" }],
      /points outside the artifact/,
    ],
    [
      "a hard link",
      [
        { path: "a", body: "x" },
        { path: "b", type: "1", link: "a" },
      ],
      /hard link/,
    ],
  ];
  for (const [what, entries, message] of hostile)
    test(`a layer with ${what} is refused naming the artifact, and nothing is cached`, async () => {
      const repo = `hostile/${what.replace(/\W+/g, "-")}`.replace(/-$/, "");
      const digest = await orasPush(registry, `${repo}:v1`, { layer: hostileTarGz(entries) });
      const cacheDir = join(work, `hostile-${caches++}`);
      const src = source(repo, { tag: "v1" }, { cacheDir });
      const err = await src.snapshot(await src.resolve()).catch((e: Error) => e);
      expect(String(err)).toContain(`OCI artifact oci://${registry.host}/${repo}@${digest}`);
      expect(String(err)).toMatch(message);
      expect(existsSync(join(cacheDir, "sha256")) ? readdirSync(join(cacheDir, "sha256")) : []).toEqual([]);
    });

  test("a decompression bomb is refused at the unpacked-size limit, naming the artifact", async () => {
    const bomb = hostileTarGz([{ path: "zeros.yaml", body: new Uint8Array(64 * 1024 * 1024) }]);
    expect(bomb.byteLength).toBeLessThan(200 * 1024);
    const digest = await orasPush(registry, "hostile/bomb:v1", { layer: bomb });
    const src = source(
      "hostile/bomb",
      { tag: "v1" },
      { limits: { maxBytes: 8 * 1024 * 1024, maxEntries: 100, maxPathLength: 4096 } },
    );
    const err = await src.snapshot(await src.resolve()).catch((e: Error) => e);
    expect(String(err)).toContain(`OCI artifact oci://${registry.host}/hostile/bomb@${digest}`);
    expect(String(err)).toContain("decompresses to more than 8388608 bytes");
  });

  test("a stopped registry is an error naming it; restarted, the same revision resolves again", async () => {
    const src = source("manifests/flux", { tag: "v1" });
    const revision = await src.resolve();
    await registry.stop();
    try {
      const err = await src.resolve().catch((e: Error) => e);
      expect(String(err)).toContain(`OCI registry ${registry.host}`);
      expect(String(err)).toContain("connection refused");
    } finally {
      await registry.restart();
    }
    expect(await src.resolve()).toBe(revision);
  });
});
