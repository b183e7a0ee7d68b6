/** Test servers and tools built from the Go module proxy by a `scripts/<name>/build.sh`, once per test process. */
import { execFile } from "node:child_process";
import { join } from "node:path";

const builds = new Map<string, Promise<string>>();

/**
 * The path a build script prints last (a binary or a directory). The script builds on first use (minutes cold)
 * and answers from its cache after (0 s); async, since a sync spawn would block an in-process server of the test.
 */
export function goBuild(name: string): Promise<string> {
  let built = builds.get(name);
  if (!built) {
    built = new Promise((resolve, reject) =>
      execFile(
        "bash",
        [join(import.meta.dir, "..", "..", "scripts", name, "build.sh")],
        { maxBuffer: 1 << 20 },
        (err, out) => (err ? reject(err) : resolve(out.trim().split("\n").at(-1) ?? "")),
      ),
    );
    builds.set(name, built);
  }
  return built;
}
