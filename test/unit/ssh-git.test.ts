import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkCountingTools, commandOf, runGit } from "../../agent/source/ssh-git.ts";

describe("runGit's messages name the git command", () => {
  test("options before the command, and the arguments they take, are skipped", () => {
    expect(commandOf(["--git-dir", "/cache/x.git", "fetch", "--depth", "1"])).toBe("fetch");
    expect(commandOf(["-c", "gpg.format=ssh", "verify-commit", "abc"])).toBe("verify-commit");
    expect(commandOf(["ls-remote", "--", "ssh://h/r.git"])).toBe("ls-remote");
  });

  test("a failed run says which command failed and git's own words", async () => {
    await expect(
      runGit(["--git-dir", "/nonexistent/berth-cache.git", "cat-file", "-e", "HEAD"], {
        subject: "commit x",
      }),
    ).rejects.toThrow(/^commit x: git cat-file failed: .*not a git repository/);
  });
});

/** Where `tool` is on this PATH. */
const which = (tool: string) =>
  execFileSync("sh", ["-c", `command -v ${tool}`])
    .toString()
    .trim();

describe("the tools an SSH fetch's byte count needs", () => {
  test("are found on this PATH; a dd without count_bytes is named, not read as a server sending too much", async () => {
    await checkCountingTools(process.env.PATH ?? "/usr/bin:/bin");
    // BusyBox's dd before 1.33 refuses the flag: its own words end up in the error.
    const bin = mkdtempSync(join(tmpdir(), "berth-dd-"));
    for (const tool of ["sh", "head", "wc"]) symlinkSync(which(tool), join(bin, tool));
    writeFileSync(
      join(bin, "dd"),
      "#!/bin/sh\necho \"dd: invalid input flag: 'count_bytes'\" >&2\nexit 1\n",
      { mode: 0o755 },
    );
    await expect(checkCountingTools(bin)).rejects.toThrow(
      `PATH=${bin}: SSH sources need GNU coreutils' dd (with iflag=count_bytes), head and wc on the PATH, to bound what a fetch brings: dd: invalid input flag: 'count_bytes'`,
    );
    // A failed check is not kept: with a dd that counts, the same PATH passes.
    rmSync(join(bin, "dd"));
    symlinkSync(which("dd"), join(bin, "dd"));
    await checkCountingTools(bin);
  });
});
