import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { looseSize, offsetInIndex, packedSize } from "../../agent/source/object-size.ts";

/** A repository whose pack git made itself, with deltas, checked against git's own answers. */
describe("object sizes from headers (against git's pack and index)", () => {
  let dir: string;
  const run = (...args: string[]) =>
    execFileSync("git", args, { cwd: dir, env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: dir } })
      .toString()
      .trim();

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "berth-sizes-"));
    run("init", "--quiet");
    const lines = Array.from({ length: 30_000 }, (_, i) => `line ${i}\n`).join("");
    writeFileSync(join(dir, "a.txt"), lines);
    writeFileSync(join(dir, "b.txt"), `${lines}and one more\n`);
    writeFileSync(join(dir, "empty.txt"), "");
    writeFileSync(join(dir, "small.yaml"), "kind: ConfigMap\n");
    run("add", ".");
    run("-c", "user.name=T", "-c", "user.email=t@example.test", "commit", "--quiet", "-m", "x");
    run("repack", "-a", "-d", "--quiet");
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("every object of the pack: found at git's offset, with git's size; deltas by the object they make", () => {
    const packDir = join(dir, ".git", "objects", "pack");
    const idxName = readdirSync(packDir).find((n) => n.endsWith(".idx")) as string;
    const idx = new Uint8Array(readFileSync(join(packDir, idxName)));
    const pack = new Uint8Array(readFileSync(join(packDir, idxName.replace(/\.idx$/, ".pack"))));
    // "<oid> <type> <size> <size in pack> <offset> [<depth> <base>]"
    const rows = run("verify-pack", "-v", join(packDir, idxName))
      .split("\n")
      .map((l) => l.split(/\s+/))
      .filter((f) => /^[0-9a-f]{40}$/.test(f[0] ?? ""));
    expect(rows.length).toBeGreaterThanOrEqual(6);
    expect(rows.some((f) => f.length === 7)).toBe(true); // at least one delta
    for (const [oid = "", , , , offset] of rows) {
      expect(offsetInIndex(idx, oid)).toBe(Number(offset));
      expect(packedSize(pack, Number(offset))).toBe(Number(run("cat-file", "-s", oid)));
    }
    expect(offsetInIndex(idx, "0".repeat(40))).toBeUndefined();
    expect(offsetInIndex(idx, "f".repeat(40))).toBeUndefined();
    expect(offsetInIndex(new Uint8Array(2000), rows[0]?.[0] as string)).toBeUndefined(); // not an index
  });

  test("a loose object's size from the start of its file", () => {
    writeFileSync(join(dir, "loose.txt"), "x".repeat(123_456));
    const loose = run("hash-object", "-w", join(dir, "loose.txt"));
    const file = new Uint8Array(
      readFileSync(join(dir, ".git", "objects", loose.slice(0, 2), loose.slice(2))),
    );
    expect(looseSize(file)).toBe(123_456);
    expect(looseSize(new Uint8Array([1, 2, 3]))).toBeUndefined();
  });
});
