/**
 * Benchmark: a Git cache that follows a busy branch. A repository of 1,000 ConfigMap files gets one commit per
 * step (one file changed), each fetched into the cache as `berth run` fetches it (GitSource: a pack per commit).
 * Every STEP commits, the whole app is rendered from a fresh snapshot (every blob read, no parse memo: the cost
 * of a snapshot's object lookups), with the cache folded past 32 packs as shipped, and without folding
 * (`maxPacks: Infinity`, what berth did before), in the same run. Also the fold itself, timed alone: of the
 * never-folded cache's packs, then again of the one pack it made (as a fold of a 1,000-file tree costs after
 * 32 small packs).
 * Uses a Git server in this process; no cluster. One JSON object per line, with the 1-minute load average.
 *
 *   node_modules/.bin/bun scripts/bench/git-cache.ts [--commits N] [--step N] [--runs N]
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { render } from "../../agent/render/plain.ts";
import { compactCache } from "../../agent/source/compact.ts";
import { GitSource } from "../../agent/source/git-source.ts";
import { GitFixture } from "../../test/support/git.ts";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const COMMITS = arg("--commits", 400);
const STEP = arg("--step", 100);
const RUNS = arg("--runs", 1);
const FILES = 1000;
const jit = process.env.BUN_JSC_useJIT === "0" ? "off" : "on";
const load = () => Math.round((loadavg()[0] ?? 0) * 100) / 100;
const emit = (fields: Record<string, unknown>) =>
  console.log(JSON.stringify({ bench: "git-cache", jit, ...fields, load: load() }));

const cm = (i: number, value: number) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata:\n  k: "${value}"\n`;

const fixture = await GitFixture.start();
const cacheDirs: string[] = [];
try {
  for (let run = 1; run <= RUNS; run++) {
    const repo = `busy-${run}`;
    fixture.createRepo(repo);
    const files: Record<string, string> = {};
    for (let i = 0; i < FILES; i++) files[`app/cm-${i}.yaml`] = cm(i, 0);
    fixture.commit(repo, files);
    const sources = ["folded", "unfolded"].map((mode) => {
      const cacheDir = mkdtempSync(join(tmpdir(), "berth-bench-cache-"));
      cacheDirs.push(cacheDir);
      const source = new GitSource({
        url: fixture.url(repo),
        ref: "main",
        cacheDir,
        retries: 0,
        ...(mode === "unfolded" ? { maxPacks: Number.POSITIVE_INFINITY } : {}),
      });
      return { mode, source };
    });
    const measure = async (commits: number) => {
      for (const { mode, source } of sources) {
        const sha = await source.resolve();
        const started = performance.now();
        const snapshot = await source.snapshot(sha);
        const result = await render(snapshot, "app");
        const renderMs = performance.now() - started;
        if (result.objects.length !== FILES || result.errors.length > 0)
          throw new Error(
            `${mode}: rendered ${result.objects.length} objects, errors ${JSON.stringify(result.errors)}`,
          );
        const onDisk = readdirSync(join(source.gitdir, "objects", "pack")).filter((n) => n.endsWith(".pack"));
        emit({ run, mode, commits, packs_on_disk: onDisk.length, render_ms: Math.round(renderMs) });
      }
    };
    for (const { source } of sources) await source.snapshot(await source.resolve());
    await measure(0);
    for (let c = 1; c <= COMMITS; c++) {
      fixture.commit(repo, { [`app/cm-${c % FILES}.yaml`]: cm(c % FILES, c) });
      for (const { source } of sources) await source.snapshot(await source.resolve());
      if (c % STEP === 0) await measure(c);
    }
    // The fold alone, of the cache that was never folded: every pack it made into one.
    const unfolded = sources[1]?.source as GitSource;
    for (const what of ["fold_all_packs", "fold_again"]) {
      const started = performance.now();
      const folded = await compactCache(unfolded.gitdir, { maxPacks: 0 });
      const foldMs = Math.round(performance.now() - started);
      emit({ run, metric: what, objects: folded?.objects, packs: folded?.retired, fold_ms: foldMs });
    }
  }
} finally {
  await fixture.close();
  for (const dir of cacheDirs) rmSync(dir, { recursive: true, force: true });
}
