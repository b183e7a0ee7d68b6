/**
 * Every `berth …` command shown in README.md and the other READMEs runs as documented, so the docs cannot
 * drift from the CLI (test/support/doc-commands.ts extracts them):
 * - usage lines with placeholders: `berth <command> --help` knows the command and every flag they name;
 * - commands that need no cluster (help, version, rules, import, `validate --dir`): run from the repository
 *   root with the compiled binary, exiting with the documented code;
 * - the rest: run against the real control plane, from a directory holding the `berth.yaml` they name (the
 *   demo repository's three apps, in a namespace of their own), the ledger of a real sync, `backup.db` (an
 *   export of it) and `new-cluster.kubeconfig`. The commands of one README run in order in one directory;
 *   a README whose first command is `ledger import` starts as "the new machine", with no ledger.
 * Only exit codes are asserted; what each command prints is tested where the command is.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { berthBinary, runToEnd, untilReady } from "../support/binary.ts";
import { kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { type DocCommand, docCommands, synopsisParts } from "../support/doc-commands.ts";
import { GitFixture } from "../support/git.ts";
import { freePort } from "../support/ports.ts";

const ROOT = join(import.meta.dir, "..", "..");
const commands = docCommands(ROOT);
const baseEnv = {
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: process.env.HOME ?? "/root",
  NO_COLOR: "1",
};

function berth(args: string[], cwd: string, env: Record<string, string> = {}, timeoutMs = 120_000) {
  return runToEnd(
    spawn(berthBinary(), args, { cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...baseEnv, ...env } }),
    timeoutMs,
  );
}

const where = (c: DocCommand) => `${c.file}:${c.line}: berth ${c.text.replace(/^berth /, "")}`;

test("the docs show berth commands of every kind", () => {
  expect(commands.filter((c) => c.file === "README.md").length).toBeGreaterThan(5);
  expect(commands.some((c) => c.kind === "synopsis")).toBe(true);
  expect(commands.some((c) => c.kind === "offline")).toBe(true);
  expect(commands.some((c) => c.kind === "cluster")).toBe(true);
});

describe("documented usage lines name commands and flags berth knows", () => {
  for (const c of commands.filter((c) => c.kind === "synopsis")) {
    test(where(c), async () => {
      const { command, flags } = synopsisParts(c);
      const r = await berth([...command, "--help"], ROOT);
      const help = r.stdout + r.stderr;
      expect(r.code, help).toBe(0);
      expect(help).toContain(command.join(" "));
      for (const flag of flags)
        expect(help, `${flag} in \`berth ${command.join(" ")} --help\``).toContain(flag);
    });
  }
});

describe("documented commands that need no cluster exit as documented", () => {
  for (const c of commands.filter((c) => c.kind === "offline")) {
    test(where(c), async () => {
      const r = await berth(c.args, ROOT);
      expect(r.code, r.stdout + r.stderr).toBe(c.exit);
    });
  }
});

describe("documented commands that need a cluster exit as documented (cluster tier)", () => {
  const clusterCommands = commands.filter((c) => c.kind === "cluster");
  let cluster: TestCluster;
  let git: GitFixture;
  let synced: string;
  const ns = `docs-${Math.random().toString(16).slice(2, 8)}`;
  let apiPort = 0;
  const env = () => ({ KUBECONFIG: cluster.kubeconfigPath });

  /** A directory as the docs assume it: berth.yaml, new-cluster.kubeconfig, backup.db, and (unless new) the ledger. */
  async function machine(name: string, withLedger: boolean): Promise<string> {
    const dir = join(synced, "..", name);
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(synced, "berth.yaml"), join(dir, "berth.yaml"));
    copyFileSync(cluster.kubeconfigPath, join(dir, "new-cluster.kubeconfig"));
    const exported = await berth(
      ["ledger", "export", join(dir, "backup.db"), "--config", "berth.yaml"],
      synced,
      env(),
    );
    if (exported.code !== 0) throw new Error(`ledger export: ${exported.stdout}${exported.stderr}`);
    if (withLedger) copyFileSync(join(dir, "backup.db"), join(dir, "ledger.db"));
    return dir;
  }

  beforeAll(async () => {
    berthBinary();
    cluster = await useCluster();
    git = await GitFixture.start();
    const url = git.createRepo("infra");
    // The demo repository, its namespace renamed so the test owns what it syncs.
    const demo = join(ROOT, "test", "fixtures", "demo-repo");
    const files: Record<string, string> = {};
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else files[relative(demo, path)] = readFileSync(path, "utf8").replace(/\bdemo\b/g, ns);
      }
    };
    walk(demo);
    git.commit("infra", files);
    apiPort = await freePort();
    synced = join(mkdtempSync(join(tmpdir(), "berth-docs-")), "synced");
    mkdirSync(synced);
    writeFileSync(
      join(synced, "berth.yaml"),
      `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: { url: "${url}", ref: main, interval: 5s }\napps:\n  - { name: base, path: apps/base }\n  - { name: web, path: apps/web, namespace: ${ns}, dependsOn: [base], timeout: 2m }\n  - { name: cache, path: apps/cache, namespace: ${ns}, dependsOn: [base], timeout: 2m }\nledger: { path: ledger.db }\napi: { listen: "127.0.0.1:${apiPort}", anonymousRead: true }\n`,
    );
    const r = await berth(["sync", "--config", "berth.yaml"], synced, env());
    if (r.code !== 0) throw new Error(`the first sync failed: ${r.stdout}${r.stderr}`);
  });

  afterAll(async () => {
    await git?.close();
    if (cluster) kubectl(cluster, "delete", "namespace", ns, "--wait=false", "--ignore-not-found");
  });

  const byFile = new Map<string, DocCommand[]>();
  for (const c of clusterCommands) byFile.set(c.file, [...(byFile.get(c.file) ?? []), c]);
  for (const [file, list] of byFile) {
    describe(file, () => {
      let dir: string;
      beforeAll(async () => {
        dir = await machine(
          file.replace(/[^a-z0-9]+/gi, "-"),
          list[0]?.args.slice(0, 2).join(" ") !== "ledger import",
        );
      });
      for (const c of list) {
        test(where(c), async () => {
          const args = [...c.args];
          // An entry id shown in a transcript is that run's; use one this ledger holds.
          if (args[0] === "ledger" && args[1] === "show" && /^\d+$/.test(args[2] ?? "")) {
            const listed = await berth(["ledger", "list", "--json", "--config", "berth.yaml"], dir, env());
            const entries = JSON.parse(listed.stdout) as Array<{ id: number }>;
            args[2] = String(entries[0]?.id);
          }
          if (args[0] === "run") {
            // Runs until stopped: it must come up and sync, then stop cleanly on SIGTERM.
            const child = spawn(berthBinary(), args, {
              cwd: dir,
              stdio: ["ignore", "pipe", "pipe"],
              env: { ...baseEnv, ...env() },
            });
            let out = "";
            const watch = (d: Buffer) => {
              out += d;
            };
            child.stdout.on("data", watch);
            child.stderr.on("data", watch);
            const ended = runToEnd(child, 90_000);
            // Ready once the first pass is done; then a clean stop.
            await untilReady(`http://127.0.0.1:${apiPort}`, "berth run to be ready", 60_000);
            child.kill("SIGTERM");
            const r = await ended;
            expect(r.code, out + r.stderr).toBe(c.exit);
            return;
          }
          const r = await berth(args, dir, env());
          expect(r.code, r.stdout + r.stderr).toBe(c.exit);
        });
      }
    });
  }
});
