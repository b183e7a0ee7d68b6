import { afterEach, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FsSnapshot } from "../../agent/render/fs-snapshot.ts";
import { materialise } from "../../agent/render/tools.ts";

const dirs: string[] = [];
const temp = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A tree of three 1,000-byte files; the snapshot records which it handed out. */
function tree() {
  const root = temp("berth-mat-src-");
  mkdirSync(join(root, "chart"));
  for (const name of ["a.yaml", "b.yaml", "c.yaml"])
    writeFileSync(join(root, "chart", name), "x".repeat(1000));
  const handedOut: string[] = [];
  class Recording extends FsSnapshot {
    override async readBlob(path: string, options?: { maxBytes?: number }): Promise<Uint8Array> {
      const bytes = await super.readBlob(path, options);
      handedOut.push(path);
      return bytes;
    }
  }
  return { snapshot: new Recording(root), handedOut };
}

describe("materialise: the copy a tool renders from", () => {
  test("files past the byte budget are refused before they are read, naming the limit", async () => {
    const { snapshot, handedOut } = tree();
    const out = temp("berth-mat-out-");
    await expect(materialise(snapshot, out, undefined, undefined, 2500)).rejects.toThrow(
      "repository: the files come to more than 2500 bytes (the limit of a copy)",
    );
    expect(handedOut).toEqual(["chart/a.yaml", "chart/b.yaml"]);
  });

  test("within the budget every file is copied", async () => {
    const { snapshot } = tree();
    const out = temp("berth-mat-out-");
    await materialise(snapshot, out, undefined, undefined, 3000);
    expect(readdirSync(join(out, "chart")).sort()).toEqual(["a.yaml", "b.yaml", "c.yaml"]);
  });
});
