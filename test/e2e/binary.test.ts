import { beforeAll, describe, expect, test } from "bun:test";
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
let binary: string;

beforeAll(() => {
  const out = execFileSync("bash", [join(ROOT, "scripts", "build.sh")], { cwd: ROOT, encoding: "utf8" });
  binary = join(ROOT, out.trim().split("\n").at(-1) ?? "");
}, 120_000);

describe("the compiled binary", () => {
  test("berth version --json reports the embedded version, commit and the Bun runtime", () => {
    const run = spawnSync(binary, ["version", "--json"], {
      encoding: "utf8",
      env: { PATH: "/usr/bin:/bin" },
    });
    expect(run.status).toBe(0);
    const info = JSON.parse(run.stdout);
    const pkg = JSON.parse(execFileSync("cat", [join(ROOT, "package.json")], { encoding: "utf8" }));
    expect(info.version).toBe(pkg.version);
    let head = "unknown";
    try {
      head = execFileSync("git", ["rev-parse", "--short=12", "HEAD"], {
        cwd: ROOT,
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      }).trim();
    } catch {}
    expect(info.commit).toBe(head);
    expect(info.runtime).toMatch(/^bun \d+\.\d+\.\d+$/);
  });

  test("an unknown command exits 2 with usage on stderr", () => {
    const run = spawnSync(binary, ["frobnicate"], { encoding: "utf8" });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('unknown command "frobnicate"');
    expect(run.stdout).toBe("");
  });
});
