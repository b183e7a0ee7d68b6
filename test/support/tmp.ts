/**
 * Preloaded by `bun test` (bunfig.toml): every temporary directory a test run makes goes under one directory of
 * its own, removed when the run ends. Tests and the servers they start create hundreds of directories through
 * `os.tmpdir()` (workspaces, Git caches, ledgers); many tests did not remove theirs, and one that fails before its
 * cleanup cannot: about 250 a run stayed in /tmp. Child processes (the berth binary, git, the servers) inherit TMPDIR.
 */
import { afterAll } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const outer = tmpdir();
const run = mkdtempSync(join(outer, "berth-test-"));
process.env.BERTH_TEST_OUTER_TMPDIR = outer;
process.env.TMPDIR = run;
// In a preloaded file, afterAll runs once, after every test file (process exit handlers do not run under bun test).
afterAll(() => {
  // The shared control plane keeps its state in ~/.cache/berth-testenv and starts with the outer TMPDIR
  // (test/support/cluster.ts): nothing a later run needs is here.
  rmSync(run, { recursive: true, force: true, maxRetries: 3 });
});
