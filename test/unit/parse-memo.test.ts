/**
 * The parse memo of plain renders (agent/render/plain.ts): a file whose blob id and limits are unchanged is
 * neither read nor parsed again, over a real Git object store (GitSnapshot gives the ids); everything else is.
 */
import { expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Snapshot } from "../../agent/object/snapshot.ts";
import { type FileParser, type ParseMemo, parseInline, render } from "../../agent/render/plain.ts";
import { GitSnapshot } from "../../agent/source/git-snapshot.ts";
import { snapshotReader } from "../../agent/source/iso-git.ts";

const cm = (name: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata: {v: "${value}"}\n`;

/** A Git repository whose commits the test makes; `at()` opens a snapshot of HEAD that counts blob reads. */
function repo() {
  const dir = mkdtempSync(join(tmpdir(), "berth-parse-memo-"));
  const git = (...args: string[]) =>
    execFileSync("git", ["-C", dir, "-c", "user.name=t", "-c", "user.email=t@t", ...args], {
      encoding: "utf8",
    });
  git("init", "-q", "-b", "main");
  return {
    dir,
    commit(files: Record<string, string | null>) {
      for (const [path, text] of Object.entries(files)) {
        const full = join(dir, path);
        if (text === null) rmSync(full);
        else {
          mkdirSync(dirname(full), { recursive: true });
          writeFileSync(full, text);
        }
      }
      git("add", "-A");
      git("commit", "-q", "-m", "c");
    },
    async at(reads: string[]): Promise<Snapshot> {
      const sha = git("rev-parse", "HEAD").trim();
      const inner = await GitSnapshot.open(snapshotReader(join(dir, ".git")), sha, `main@sha1:${sha}`);
      return {
        revision: inner.revision,
        commit: inner.commit,
        readDir: (p) => inner.readDir(p),
        stat: (p) => inner.stat(p),
        readBlob: (p) => {
          reads.push(p);
          return inner.readBlob(p);
        },
      };
    },
  };
}

test("only files whose blob changed are read and parsed again; the result equals a render without the memo", async () => {
  const r = repo();
  try {
    r.commit({ "app/a.yaml": cm("a", "1"), "app/b.yaml": cm("b", "1"), "app/c.yaml": cm("c", "1") });
    const parsed: string[] = [];
    const parser: FileParser = (path, bytes, limits) => {
      parsed.push(path);
      return parseInline(path, bytes, limits);
    };
    const memo: ParseMemo = new Map();
    const reads: string[] = [];
    const first = await render(await r.at(reads), "app", { memo, parser });
    expect(first.errors).toEqual([]);
    expect(parsed.sort()).toEqual(["app/a.yaml", "app/b.yaml", "app/c.yaml"]);
    expect([...memo.keys()].sort()).toEqual(["app/a.yaml", "app/b.yaml", "app/c.yaml"]);

    // Unchanged tree: nothing read, nothing parsed, the same result.
    parsed.length = 0;
    reads.length = 0;
    const again = await render(await r.at(reads), "app", { memo, parser });
    expect([parsed, reads]).toEqual([[], []]);
    expect(again.digest).toBe(first.digest);

    // One file changed, one removed, one added: those are parsed; the removed one leaves the memo.
    r.commit({ "app/b.yaml": cm("b", "2"), "app/c.yaml": null, "app/d.yaml": cm("d", "1") });
    parsed.length = 0;
    reads.length = 0;
    const next = await render(await r.at(reads), "app", { memo, parser });
    expect(parsed.sort()).toEqual(["app/b.yaml", "app/d.yaml"]);
    expect(reads.sort()).toEqual(["app/b.yaml", "app/d.yaml"]);
    expect([...memo.keys()].sort()).toEqual(["app/a.yaml", "app/b.yaml", "app/d.yaml"]);
    const plain = await render(await r.at([]), "app");
    expect(next.digest).toBe(plain.digest);
    expect(next.objects.map((o) => o.object)).toEqual(plain.objects.map((o) => o.object));
    expect(next.objects.find((o) => o.ref.name === "b")?.object.data).toEqual({ v: "2" });

    // Other limits: parsed again.
    parsed.length = 0;
    await render(await r.at([]), "app", { memo, parser, limits: { maxDocuments: 500 } });
    expect(parsed.sort()).toEqual(["app/a.yaml", "app/b.yaml", "app/d.yaml"]);
  } finally {
    rmSync(r.dir, { recursive: true, force: true });
  }
});

test("a file with errors is not kept: it is read and reported again", async () => {
  const r = repo();
  try {
    r.commit({ "app/ok.yaml": cm("ok", "1"), "app/bad.yaml": "kind: [unclosed\n" });
    const memo: ParseMemo = new Map();
    const first = await render(await r.at([]), "app", { memo });
    expect(first.errors.map((e) => e.path)).toEqual(["app/bad.yaml:2:1"]);
    expect([...memo.keys()]).toEqual(["app/ok.yaml"]);
    const reads: string[] = [];
    const again = await render(await r.at(reads), "app", { memo });
    expect(reads).toEqual(["app/bad.yaml"]);
    expect(again.errors).toEqual(first.errors);
  } finally {
    rmSync(r.dir, { recursive: true, force: true });
  }
});
