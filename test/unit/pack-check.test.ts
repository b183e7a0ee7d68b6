import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkPack, DEFAULT_PACK_LIMITS, type PackLimits } from "../../agent/source/pack-check.ts";
import { BLOB, OFS_DELTA, pack, REF_DELTA, varint } from "../support/pack.ts";

/** A delta that makes an object of `made` bytes from a base of `base` bytes (one copy instruction). */
function delta(base: number, made: number): Uint8Array {
  return Uint8Array.from([...varint(base), ...varint(made), 0x91, 0, 1]);
}

const limits = (over: Partial<PackLimits> = {}): PackLimits => ({ ...DEFAULT_PACK_LIMITS, ...over });
const check =
  (bytes: Uint8Array, over: Partial<PackLimits> = {}) =>
  () =>
    checkPack(bytes, limits(over), "git https://example.test/infra.git");

describe("checkPack", () => {
  test("a pack within every limit passes, whatever its objects' types", () => {
    const p = pack([
      { type: BLOB, data: new TextEncoder().encode("kind: ConfigMap\n") },
      { type: BLOB, data: new Uint8Array(0) },
      { type: OFS_DELTA, base: [0x15], data: delta(16, 300) },
      { type: REF_DELTA, base: new Array(20).fill(0xab), data: delta(16, 300) },
    ]);
    expect(check(p)).not.toThrow();
  });

  test("an object declared over the limit is refused from its header, naming its type and size", () => {
    // Only the header claims 5 GiB: the check must not try to inflate that.
    const p = pack([{ type: BLOB, declared: 5 * 2 ** 30, data: new Uint8Array(10) }]);
    expect(check(p)).toThrow(
      "git https://example.test/infra.git: the pack holds a blob of 5368709120 bytes, over the limit of 67108864 bytes for one object",
    );
  });

  test("a stream that inflates to more than its header declares is refused", () => {
    const p = pack([{ type: BLOB, declared: 100, data: new Uint8Array(1024 * 1024) }]);
    expect(check(p)).toThrow("object 1: a blob that inflates to more than the 100 bytes it declares");
    const short = pack([{ type: BLOB, declared: 100, data: new Uint8Array(10) }]);
    expect(check(short)).toThrow("object 1: 10 bytes where 100 were declared");
  });

  test("a small delta that makes a large object is counted by what it makes", () => {
    const p = pack([
      { type: BLOB, data: new Uint8Array(16) },
      { type: OFS_DELTA, base: [0x15], data: delta(16, 512 * 1024 * 1024) },
    ]);
    expect(check(p)).toThrow(
      "the pack holds a delta-made object of 536870912 bytes, over the limit of 67108864",
    );
    expect(check(p, { maxObjectBytes: 2 ** 30, maxUnpackedBytes: 256 * 1024 * 1024 })).toThrow(
      "the pack's objects unpack to more than 268435456 bytes (the source's limits.maxUnpackedBytes)",
    );
  });

  test("damaged packs are refused with what is wrong, never read past their end", () => {
    expect(check(new Uint8Array(40))).toThrow("the server sent a damaged pack (no pack header)");
    const p = pack([{ type: BLOB, data: new Uint8Array(64) }]);
    const truncated = p.subarray(0, 16);
    expect(check(Buffer.concat([truncated, new Uint8Array(20)]))).toThrow("the server sent a damaged pack");
    const moreThanThere = Buffer.from(p);
    moreThanThere.writeUInt32BE(3, 8);
    expect(check(moreThanThere)).toThrow("it ends after 1 of 3 objects");
    const badType = Buffer.from(p);
    badType[12] = ((badType[12] as number) & 0x8f) | (5 << 4);
    expect(check(badType)).toThrow("object 1: unknown type 5");
  });

  test("count and total size limits", () => {
    const p = pack(Array.from({ length: 5 }, () => ({ type: BLOB, data: new Uint8Array(1000) })));
    expect(check(p, { maxObjects: 4 })).toThrow("the pack holds 5 objects, over the limit of 4");
    expect(check(p, { maxUnpackedBytes: 4999 })).toThrow("unpack to more than 4999 bytes");
    expect(check(p, { maxPackBytes: 100 })).toThrow(
      `the pack is ${p.byteLength} bytes, over the limit of 100`,
    );
    expect(check(p, { maxObjects: 5, maxUnpackedBytes: 5000 })).not.toThrow();
  });

  test("a pack made by git, with deltas, is walked to its end", () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-pack-"));
    try {
      const run = (...args: string[]) =>
        execFileSync("git", args, { cwd: dir, env: { ...process.env, GIT_CONFIG_NOSYSTEM: "1", HOME: dir } });
      run("init", "--quiet");
      // Two large, almost equal files: git stores the second as a small delta.
      const lines = Array.from({ length: 40_000 }, (_, i) => `line ${i}\n`).join("");
      writeFileSync(join(dir, "a.txt"), lines);
      writeFileSync(join(dir, "b.txt"), `${lines}one more\n`);
      run("add", ".");
      run("-c", "user.name=T", "-c", "user.email=t@example.test", "commit", "--quiet", "-m", "x");
      const name = execFileSync("git", ["pack-objects", "--revs", "--delta-base-offset", join(dir, "p")], {
        cwd: dir,
        input: "HEAD\n",
      })
        .toString()
        .trim();
      const p = new Uint8Array(readFileSync(join(dir, `p-${name}.pack`)));
      // git's own listing: one blob stored as a delta (depth 1) of the other.
      const listing = run("verify-pack", "-v", join(dir, `p-${name}.idx`)).toString();
      expect(listing).toMatch(/\bblob\s+\d+ \d+ \d+ 1 [0-9a-f]{40}/);
      expect(check(p)).not.toThrow();
      expect(check(p, { maxUnpackedBytes: 2 * lines.length })).toThrow("unpack to more than");
      expect(check(p, { maxObjectBytes: lines.length - 1 })).toThrow("over the limit of");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
