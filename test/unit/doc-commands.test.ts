import { describe, expect, test } from "bun:test";
import { extractCommands, synopsisParts, words } from "../support/doc-commands.ts";

const md = [
  "```sh",
  "berth sync     [--app NAME]               # one pass",
  "berth rules eval 'spec.size > 1' --object w.yaml   # exit 1: no such key",
  "berth install manifests --namespace berth > out.yaml",
  "npm test",
  "```",
  "",
  "berth outside a block",
  "```text",
  "berth demo",
  "$ berth ledger show 11 --config berth.yaml",
  "```",
].join("\n");

describe("the docs' berth commands", () => {
  const found = extractCommands("X.md", md);

  test("come from shell blocks and `$ ` transcript lines only", () => {
    expect(found.map((c) => [c.line, c.kind])).toEqual([
      [2, "synopsis"],
      [3, "offline"],
      [4, "cluster"],
      [11, "cluster"],
    ]);
  });

  test("keep quoted words whole, drop redirections and comments, read `# exit N`", () => {
    expect(found[1]?.args).toEqual(["rules", "eval", "spec.size > 1", "--object", "w.yaml"]);
    expect(found[1]?.exit).toBe(1);
    expect(found[2]?.args).toEqual(["install", "manifests", "--namespace", "berth"]);
    expect(found[3]?.args).toEqual(["ledger", "show", "11", "--config", "berth.yaml"]);
    expect(found[0]?.exit).toBe(0);
    expect(words(`a "b c" 'd'`)).toEqual(["a", "b c", "d"]);
  });

  test("a usage line names its command and flags", () => {
    expect(synopsisParts(found[0] ?? ({} as never))).toEqual({ command: ["sync"], flags: ["--app"] });
  });
});
