import { describe, expect, test } from "bun:test";
import { commandOf, runGit } from "../../agent/source/ssh-git.ts";

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
