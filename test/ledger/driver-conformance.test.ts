import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, symlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { openDriver } from "../../agent/ledger/driver.ts";
import { currentRuntime } from "../../agent/runtime/detect.ts";
import { CONFORMANCE } from "../support/ledger-conformance.ts";
import { tempDir } from "../support/ledger-fixtures.ts";
import { skipWithout } from "../support/required.ts";

const ROOT = resolve(import.meta.dir, "../..");
const BIN = join(ROOT, "node_modules/.bin");
const CHECK_SCRIPT = join(ROOT, "test/support/ledger-runtime-check.ts");

interface CheckOutput {
  runtime: string;
  driver: string;
  results: { name: string; ok: boolean; error?: string }[];
}

/** Runs a command, expects exit 0, parses the JSON line ledger-runtime-check prints. */
function runCheck(cmd: string[], cwd: string): CheckOutput {
  const proc = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  const stdout = proc.stdout.toString();
  if (proc.exitCode !== 0)
    throw new Error(`${cmd.join(" ")} exited ${proc.exitCode}: ${proc.stderr.toString()}`);
  return JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as CheckOutput;
}

/** Every case ran and passed (failures show their errors in the diff). */
function expectAllPassed(out: CheckOutput): void {
  expect(out.results.map((r) => r.name)).toEqual(CONFORMANCE.map((c) => c.name));
  expect(out.results.filter((r) => !r.ok)).toEqual([]);
}

describe("driver conformance: bun:sqlite (in this process)", () => {
  test("openDriver picks bun:sqlite under Bun", async () => {
    const { dir, cleanup } = tempDir();
    try {
      expect(currentRuntime()).toBe("bun");
      const db = await openDriver(join(dir, "x.db"));
      expect(db.name).toBe("bun:sqlite");
      db.close();
    } finally {
      cleanup();
    }
  });

  for (const c of CONFORMANCE) {
    test(c.name, async () => {
      const { dir, cleanup } = tempDir();
      try {
        await c.run(openDriver, dir);
      } finally {
        cleanup();
      }
    });
  }
});

describe("driver conformance in other runtimes", () => {
  const deno = join(BIN, "deno");
  // Skipped only where the binary is missing (npm did not run its install script); it is a devDependency.
  test.skipIf(skipWithout(existsSync(deno), "node_modules/.bin/deno (npm devDependency deno)"))(
    "node:sqlite under Deno passes every case",
    () => {
      const { dir, cleanup } = tempDir();
      try {
        const out = runCheck(
          [deno, "run", "--allow-read", "--allow-write", "--allow-env", CHECK_SCRIPT, dir],
          ROOT,
        );
        expect(out.runtime).toBe("deno");
        expect(out.driver).toBe("node:sqlite");
        expectAllPassed(out);
      } finally {
        cleanup();
      }
    },
    60_000,
  );

  const nodeBin = Bun.which("node");
  const nodeMajor = nodeBin
    ? Number(Bun.spawnSync([nodeBin, "-p", "process.versions.node.split('.')[0]"]).stdout.toString())
    : 0;
  // better-sqlite3 12.x is the driver for Node 20; under other majors its addon may not load.
  test.skipIf(skipWithout(nodeMajor === 20, `Node 20 (found ${nodeMajor || "none"})`))(
    "better-sqlite3 under Node 20 passes every case (bundled: Node 20 cannot run TypeScript)",
    () => {
      const { dir, cleanup } = tempDir();
      try {
        const outDir = join(dir, "out");
        const build = Bun.spawnSync(
          [
            join(BIN, "bun"),
            "build",
            "--target=node",
            "--external",
            "better-sqlite3",
            "--outdir",
            outDir,
            CHECK_SCRIPT,
          ],
          { cwd: ROOT, stderr: "pipe" },
        );
        expect(build.exitCode).toBe(0);
        // Node resolves better-sqlite3 from the bundle's location, so give the bundle the project's node_modules.
        symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
        const work = join(dir, "work");
        mkdirSync(work);
        const out = runCheck([nodeBin ?? "node", join(outDir, "ledger-runtime-check.js"), work], dir);
        expect(out.runtime).toBe("node");
        expect(out.driver).toBe("better-sqlite3");
        expectAllPassed(out);
      } finally {
        cleanup();
      }
    },
    60_000,
  );

  test("bun:sqlite inside a `bun build --compile` binary passes every case", () => {
    const { dir, cleanup } = tempDir();
    try {
      const binary = join(dir, "ledger-check");
      const build = Bun.spawnSync(
        [join(BIN, "bun"), "build", "--compile", "--outfile", binary, CHECK_SCRIPT],
        {
          cwd: ROOT,
          stderr: "pipe",
        },
      );
      expect(build.stderr.toString()).not.toContain("error");
      expect(build.exitCode).toBe(0);
      const work = join(dir, "work");
      mkdirSync(work);
      // Run from / so nothing can be resolved from the project: the binary must be self-contained.
      const out = runCheck([binary, work], "/");
      expect(out.runtime).toBe("bun");
      expect(out.driver).toBe("bun:sqlite");
      expectAllPassed(out);
    } finally {
      cleanup();
    }
  }, 120_000);
});
