/** Semver ranges as Flux reads them, and the bounds of unpacking an artifact layer in memory. */
import { describe, expect, test } from "bun:test";
import { gunzipSync, gzipSync } from "node:zlib";
import { highestMatching } from "../../agent/object/semver-range.ts";
import { DEFAULT_UNPACK_LIMITS, gunzipBounded, snapshotFromTar } from "../../agent/source/tar-snapshot.ts";
import { hostileTarGz } from "../support/oras.ts";

const TAGS = [
  "0.9.0",
  "1.0.0",
  "v1.1.0",
  "1.2.0-rc.1",
  "1.10.0",
  "2.0.0",
  "2.1.3",
  "latest",
  "1.x",
  "3.0.0-beta",
];

describe("semver ranges", () => {
  const cases: Array<[string, string | undefined]> = [
    ["1.x", "1.10.0"],
    ["1.0.x", "1.0.0"],
    [">=1.0.0 <2.0.0", "1.10.0"],
    [">=1.0.0, <1.5.0", "v1.1.0"],
    ["~1.1", "v1.1.0"],
    ["^1.0.0", "1.10.0"],
    ["^0.9", "0.9.0"],
    ["*", "2.1.3"],
    ["2", "2.1.3"],
    ["<1.0.0 || >=2.1.0", "2.1.3"],
    ["1.0 - 1.2", "v1.1.0"],
    [">=1.2.0-rc.0 <1.3.0", "1.2.0-rc.1"],
    [">3", undefined],
    ["!=2.1.3, >=2.0.0", "2.0.0"],
  ];
  for (const [range, want] of cases)
    test(`${range} → ${want ?? "nothing"}`, () => expect(highestMatching(TAGS, range)).toBe(want));

  test("a pre-release is skipped unless the range names one", () => {
    expect(highestMatching(["1.0.0", "1.1.0-rc.1"], ">=1.0.0")).toBe("1.0.0");
    expect(highestMatching(["3.0.0-beta", "3.0.0-alpha"], ">=3.0.0-alpha")).toBe("3.0.0-beta");
  });

  test("a malformed range says what is wrong", () => {
    expect(() => highestMatching(TAGS, "abc")).toThrow('"abc" is not a version');
    expect(() => highestMatching(TAGS, "1.x ||")).toThrow("empty alternative");
  });
});

const commit = { sha: "sha256:x", author: "", message: "", time: "" };
const tarOf = (entries: Parameters<typeof hostileTarGz>[0]) => gunzipSync(hostileTarGz(entries));

describe("unpacking a layer in memory", () => {
  test("files, directories and in-tree symlinks read back as a Snapshot", async () => {
    const snap = snapshotFromTar(
      tarOf([
        { path: "./", type: "5" },
        { path: "./apps/", type: "5" },
        { path: "./apps/web.yaml", body: "kind: A\n" },
        { path: "./apps/current", type: "2", link: "web.yaml" },
      ]),
      DEFAULT_UNPACK_LIMITS,
      "artifact",
      "v1@sha256:x",
      commit,
    );
    expect(await snap.readDir("apps")).toEqual([
      { name: "current", path: "apps/current", type: "symlink" },
      { name: "web.yaml", path: "apps/web.yaml", type: "blob" },
    ]);
    expect(new TextDecoder().decode(await snap.readBlob("apps/current"))).toBe("web.yaml");
    expect(await snap.stat("nope")).toBeUndefined();
    await expect(snap.readBlob("apps")).rejects.toThrow("apps: is a directory, not a file at v1@sha256:x");
  });

  test("more entries than the limit is refused", () => {
    const entries = Array.from({ length: 11 }, (_, i) => ({ path: `f${i}`, body: "x" }));
    expect(() =>
      snapshotFromTar(tarOf(entries), { ...DEFAULT_UNPACK_LIMITS, maxEntries: 10 }, "artifact", "r", commit),
    ).toThrow("artifact: more than 10 entries (the limit)");
  });

  test("a path longer than the limit is refused", () => {
    expect(() =>
      snapshotFromTar(
        tarOf([{ path: "a".repeat(90), body: "x" }]),
        { ...DEFAULT_UNPACK_LIMITS, maxPathLength: 64 },
        "artifact",
        "r",
        commit,
      ),
    ).toThrow("longer than 64 characters");
  });

  test("devices, FIFOs and a file posing as a directory are refused", () => {
    const run = (entries: Parameters<typeof hostileTarGz>[0]) => () =>
      snapshotFromTar(tarOf(entries), DEFAULT_UNPACK_LIMITS, "artifact", "r", commit);
    expect(run([{ path: "dev", type: "3" }])).toThrow('"dev" is a special file');
    expect(
      run([
        { path: "a", body: "x" },
        { path: "a/b", body: "y" },
      ]),
    ).toThrow("which is not a directory");
    expect(run([{ path: "x", type: "2", link: "/etc" }])).toThrow("points outside the artifact");
  });

  test("a truncated archive is refused, not half-read", () => {
    const tar = tarOf([{ path: "a", body: "x".repeat(2000) }]);
    expect(() =>
      snapshotFromTar(tar.subarray(0, 1024), DEFAULT_UNPACK_LIMITS, "artifact", "r", commit),
    ).toThrow("truncated");
  });

  test("gunzip stops at the byte limit; garbage is not gzip", async () => {
    const bomb = gzipSync(new Uint8Array(32 * 1024 * 1024));
    await expect(gunzipBounded(bomb, 1024 * 1024, "artifact")).rejects.toThrow(
      "artifact: the layer decompresses to more than 1048576 bytes",
    );
    await expect(gunzipBounded(new TextEncoder().encode("not gzip"), 1024, "artifact")).rejects.toThrow(
      "artifact: the layer is not valid gzip",
    );
    expect((await gunzipBounded(gzipSync(new Uint8Array(10)), 10, "artifact")).byteLength).toBe(10);
  });
});
