/**
 * Benchmark: looking up the files of one wide directory in a Git snapshot (`GitSnapshot`), as a render does for
 * every file it reads. A commit holds `wide/` with N files (git plumbing, one blob); after the directory is read
 * once, every one of its files is looked up (`stat`). Uses a Git server in this process; no cluster. One JSON
 * object per line, with the 1-minute load average; `BUN_JSC_useJIT=0` runs it as `berth run` runs.
 *
 *   node_modules/.bin/bun scripts/bench/wide-directory.ts [--entries 1000,20000,100000] [--runs N]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { GitSource } from "../../agent/source/git-source.ts";
import { commitWide, GitFixture } from "../../test/support/git.ts";

const flag = (name: string, fallback: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback;
};
const SIZES = flag("--entries", "1000,20000,100000").split(",").map(Number);
const RUNS = Number(flag("--runs", "3"));
const jit = process.env.BUN_JSC_useJIT === "0" ? "off" : "on";
const load = () => Math.round((loadavg()[0] ?? 0) * 100) / 100;

const fixture = await GitFixture.start();
const cacheDir = mkdtempSync(join(tmpdir(), "berth-bench-wide-"));
try {
  for (const entries of SIZES) {
    const repo = `wide-${entries}`;
    fixture.createRepo(repo);
    commitWide(join(fixture.dir, "repos", `${repo}.git`), { "app/cm.yaml": "a: 1\n" }, entries, "a: 1\n");
    const source = new GitSource({ url: fixture.url(repo), ref: "main", cacheDir, retries: 0 });
    const sha = await source.resolve();
    for (let run = 1; run <= RUNS; run++) {
      const snap = await source.snapshot(sha);
      const t0 = performance.now();
      await snap.readDir("wide");
      const t1 = performance.now();
      for (let i = 0; i < entries; i++) await snap.stat(`wide/f${String(i).padStart(6, "0")}.yaml`);
      const t2 = performance.now();
      console.log(
        JSON.stringify({
          bench: "wide-directory",
          jit,
          entries,
          run,
          read_dir_s: Math.round(t1 - t0) / 1000,
          stat_every_file_s: Math.round(t2 - t1) / 1000,
          load: load(),
        }),
      );
    }
  }
} finally {
  await fixture.close();
  rmSync(cacheDir, { recursive: true, force: true });
}
