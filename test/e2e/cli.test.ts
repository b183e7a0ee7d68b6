/**
 * The CLI as a user meets it (compiled binary): positional app names, unknown apps, per-command help, unknown
 * flags, shell completion, exit codes (3 on hold), -o json|yaml|wide, berth diff, progress lines during a
 * health wait on a Deployment that becomes available after ~10 s, errors naming their setting, and a quiet stop.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parse } from "yaml";
import { COMMANDS } from "../../agent/cli/help.ts";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, runBerth, startBerth } from "../support/binary.ts";
import { eventually } from "../support/cluster.ts";
import { useClusterTest } from "../support/cluster-test.ts";

const t = useClusterTest({ prefix: "cli", createNamespace: true, repo: "cli", binary: true });
const ns = t.ns;
let config: string;

const deployment = (name: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: ${name}}\nspec:\n  replicas: 1\n  minReadySeconds: 12\n  selector: {matchLabels: {app: ${name}}}\n  template:\n    metadata: {labels: {app: ${name}}}\n    spec:\n      containers: [{name: c, image: "nginx:1.27"}]\n`;
const configMap = (name: string, value: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata: {a: "${value}"}\n`;

beforeAll(async () => {
  t.commit({
    "web/deploy.yaml": deployment("web"),
    "extra/cm.yaml": configMap("extra", "1"),
    "held/cm.yaml": configMap("gated", "1"),
  });
  const rules = join(mkdtempSync(join(tmpdir(), "berth-cli-rules-")), "rules.yaml");
  writeFileSync(
    rules,
    "apiVersion: berth.dev/v1alpha1\nkind: Rules\nsync:\n  - name: gate\n    when: change.action == 'created' && change.object.metadata.name == 'gated'\n    verdict: hold\n    message: needs an approval\n",
  );
  config = t.writeConfig(
    [
      { name: "web", path: "web", namespace: ns, timeout: "60s" },
      { name: "extra", path: "extra", namespace: ns, timeout: "30s" },
      { name: "held", path: "held", namespace: ns, timeout: "30s" },
    ],
    { source: "interval: 1h", before: `rules: ["${rules}"]\n`, extra: 'api: {listen: "127.0.0.1:0"}\n' },
  );
}, 600_000);

const env = () => t.env();
const berth = (args: string[], extra: Record<string, string> = {}) =>
  runBerth([...args, "--config", config], { ...env(), ...extra });

describe("help and flags (no cluster needed)", () => {
  test("every command has its own help with usage, flags and examples; `help CMD` is the same", async () => {
    const helps = await Promise.all(COMMANDS.map((c) => runBerth([c.name, "--help"])));
    for (const [i, c] of COMMANDS.entries()) {
      const r = helps[i] as Awaited<ReturnType<typeof runBerth>>;
      expect(r.code).toBe(0);
      expect(r.stdout).toStartWith(`berth ${c.name} — `);
      expect(r.stdout).toContain(`  berth ${c.usage[0]}`);
      expect(r.stdout).toMatch(/\nexamples:\n {2}.*berth/);
    }
    const sync = await runBerth(["sync", "--help"]);
    expect(sync.stdout).toContain("3 held for approval or deferred by a window");
    expect(sync.stdout).toContain("berth sync web db");
    expect((await runBerth(["help", "sync"])).stdout).toBe(sync.stdout);
    const overview = await runBerth(["--help"]);
    expect(overview.stdout).toContain("diff ");
  }, 300_000);

  test("an unknown flag is one line pointing at the command's help; so is a flag of another command", async () => {
    const r = await runBerth(["sync", "--frobnicate"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("berth: unknown flag --frobnicate; see `berth sync --help`\n");
    const other = await runBerth(["sync", "--limit", "3"]);
    expect(other.code).toBe(2);
    expect(other.stderr).toBe("berth: sync does not take --limit; see `berth sync --help`\n");
    const cmd = await runBerth(["frobnicate"]);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toBe('berth: unknown command "frobnicate"; see `berth --help`\n');
  }, 300_000);

  test("the bash completion script loads and completes commands, flags and the config's app names", async () => {
    const bin = dirname(berthBinary());
    const PATH = `${bin}:${process.env.PATH}`;
    const loaded = execFileSync("bash", ["-c", "source <(berth completion bash); complete -p berth"], {
      encoding: "utf8",
      env: { PATH },
    });
    expect(loaded.trim()).toBe("complete -F _berth berth");
    const complete = (...words: string[]) =>
      execFileSync(
        "bash",
        [
          "-c",
          `source <(berth completion bash); COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _berth; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { encoding: "utf8", env: { PATH } },
      )
        .split("\n")
        .filter(Boolean);
    expect(complete("berth", "sy")).toEqual(["sync"]);
    expect(complete("berth", "sync", "--js")).toEqual(["--json"]);
    expect(complete("berth", "sync", "--config", config, "")).toEqual(["web", "extra", "held"]);
    expect(complete("berth", "ledger", "")).toContain("verify");
    for (const shell of ["zsh", "fish"]) {
      const r = await runBerth(["completion", shell]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("berth");
    }
    expect((await runBerth(["completion", "tcsh"])).code).toBe(2);
  }, 300_000);

  test("an unknown app is exit 2 naming the known ones, before anything connects", async () => {
    for (const cmd of ["sync", "plan", "diff", "status"]) {
      const r = await runBerth([cmd, "nope", "--config", config], { KUBECONFIG: "/nonexistent" });
      expect(r.code).toBe(2);
      expect(r.stderr).toBe('berth: unknown app "nope" (known apps: web, extra, held)\n');
    }
  }, 300_000);

  test("ledger usage errors are exit 2: a non-numeric entry, --limit 0", async () => {
    const show = await berth(["ledger", "show", "abc"]);
    expect(show.code).toBe(2);
    expect(show.stderr).toContain("entry abc: expected a whole number");
    const limit = await berth(["ledger", "list", "--limit", "0"]);
    expect(limit.code).toBe(2);
    expect(limit.stderr).toContain("--limit 0");
  }, 300_000);

  test("validate warns (no ledger key, no API tokens) and honours --json and -o yaml", async () => {
    const text = await berth(["validate"]);
    expect(text.code).toBe(0);
    expect(text.stderr).toContain("warning: ledger: neither secretKeyFile nor secretKeyEnv is set");
    expect(text.stderr).toContain("warning: api: none of tokenFile, tokenEnv or tokens is set");
    const json = await berth(["validate", "--json"]);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as { valid: boolean; warnings: string[] };
    expect(report.valid).toBe(true);
    expect(report.warnings.some((w) => w.includes("Secret"))).toBe(true);
    expect(parse((await berth(["validate", "-o", "yaml"])).stdout).warnings).toEqual(report.warnings);
  }, 300_000);

  test("no kubeconfig names what was looked at and what to set; a ledger path that cannot be made names ledger.path", async () => {
    const home = mkdtempSync(join(tmpdir(), "berth-home-"));
    const r = await runBerth(["plan", "--config", config], { HOME: home });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no kubeconfig found");
    expect(r.stderr).toContain("pass --kubeconfig FILE or set KUBECONFIG");
    const bad = writeConfig(
      `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "https://example.invalid/x.git"}\napps: [{name: a, path: a}]\nledger: {path: /proc/berth/ledger.db}\n`,
    );
    const l = await runBerth(["status", "--config", bad]);
    expect(l.code).toBe(2);
    expect(l.stderr).toContain("ledger.path");
    expect(l.stderr).toContain("/proc/berth");
  }, 300_000);
});

describe("against the control plane", () => {
  test("sync NAME syncs only that app, saying per object what it waits for in plain words", async () => {
    const r = await berth(["sync", "web", "--log-format", "text"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/✓ web main@sha1:[0-9a-f]{40}: Succeeded/);
    expect(r.stdout).not.toContain("extra");
    // minReadySeconds: 12 keeps the Deployment unavailable for ~12 s after its pod is ready: lines every 5 s.
    expect(r.stderr).toMatch(/► web: waiting for 1 object to become ready \(\d+s\)/);
    expect(r.stderr).toMatch(new RegExp(`Deployment/${ns}/web: 0 of 1 replicas (updated|ready|available)`));
    expect(r.stderr.match(/► web: waiting for/g)?.length ?? 0).toBeGreaterThanOrEqual(2);
    expect(r.stderr).not.toContain("health rule");
    expect(t.kubectl("get", "configmaps", "-n", ns, "-o", "name")).not.toContain("extra");
    const list = JSON.parse((await berth(["ledger", "list", "--json"])).stdout) as Array<{ app: string }>;
    expect(list.map((e) => e.app)).toEqual(["web"]);
  }, 180_000);

  test("--quiet prints no progress; -o json prints the results", async () => {
    const r = await berth(["sync", "extra", "--quiet", "-o", "json"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect((JSON.parse(r.stdout) as Array<{ app: string; outcome: string }>)[0]).toMatchObject({
      app: "extra",
      outcome: "Succeeded",
    });
  }, 180_000);

  test("a hold is exit 3 and logged as a warning, not as a failed sync", async () => {
    const r = await berth(["sync", "held", "--log-format", "json"]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/⏸ held \S+: PlanRejected — held for approval/);
    const logs = r.stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { level: string; msg: string });
    expect(logs).toContainEqual(expect.objectContaining({ level: "warn", msg: "sync held for approval" }));
    expect(logs.some((l) => l.level === "error")).toBe(false);
    // Beside a failure it is exit 1: nothing hides a failed app.
    expect(t.kubectl("get", "configmaps", "-n", ns, "-o", "name")).not.toContain("gated");
  }, 180_000);

  test("status fits 100 columns with short revisions; -o wide, json and yaml carry the rest", async () => {
    const r = await berth(["status"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^APP\s+REVISION\s+STATUS\s+HEALTH\s+DRIFT\s+AGE\s+MESSAGE$/);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(100);
    expect(r.stdout).toMatch(/web\s+main@[0-9a-f]{7}\s+Succeeded\s+Current\s+0\s+\d+s/);
    expect(r.stdout).toMatch(/held\s+main@[0-9a-f]{7}\s+PlanRejected/);
    const wide = await berth(["status", "-o", "wide"]);
    expect(wide.stdout).toMatch(/web\s+main@sha1:[0-9a-f]{40}\s+Succeeded/);
    expect(wide.stdout.split("\n")[0]).toContain("FINISHED");
    const json = JSON.parse((await berth(["status", "web", "-o", "json"])).stdout) as Array<{ app: string }>;
    expect(json.map((x) => x.app)).toEqual(["web"]);
    const yaml = parse((await berth(["status", "-o", "yaml"])).stdout) as Array<{ app: string }>;
    expect(yaml.map((x) => x.app)).toEqual(["web", "extra", "held"]);
    expect((await berth(["sync", "-o", "wide"])).code).toBe(2);
  }, 180_000);

  test("diff is a unified diff of live vs desired without berth's bookkeeping; exit 0 none, 1 some", async () => {
    const same = await berth(["diff", "web", "extra"]);
    expect(same.stderr).toBe("");
    expect(same.stdout).toBe("");
    expect(same.code).toBe(0);
    t.git.commit("cli", { "extra/cm.yaml": configMap("extra", "2") });
    const r = await berth(["diff", "extra"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      `--- live/core.v1.ConfigMap.${ns}.extra\n+++ desired/core.v1.ConfigMap.${ns}.extra\n`,
    );
    expect(r.stdout).toContain(`\n-  a: "1"\n+  a: "2"\n`);
    expect(r.stdout).not.toContain("berth.dev");
    // The plan shows the change without berth's applied-digest annotation.
    const plan = await berth(["plan", "extra"]);
    expect(plan.stdout).toContain('+ /data/a: "2"');
    expect(plan.stdout).not.toContain("berth.dev");
  }, 180_000);

  test("replay without a ledger key is not reported as a success: the Secret it could not restore fails it", async () => {
    t.git.commit("cli", {
      "secret/s.yaml": `apiVersion: v1\nkind: Secret\nmetadata: {name: token}\nstringData: {t: "x"}\n---\n${configMap("beside", "1")}`,
    });
    const url = t.git.url("cli");
    const own = writeConfig(
      `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", interval: 1h}\napps:\n  - {name: secret, path: secret, namespace: ${ns}, timeout: 30s}\nledger: {path: $DIR/ledger.db}\n`,
    );
    expect((await runBerth(["sync", "--config", own], env())).code).toBe(0);
    const r = await runBerth(["replay", "--app", "secret", "--to", "last-healthy", "--config", own], env());
    expect(r.code).toBe(1);
    expect(r.stdout).not.toContain("✓");
    expect(r.stdout).toMatch(/✗ secret \S+: incomplete — applied, but 1 Secret\(s\) could not be restored/);
  }, 180_000);

  test("after a sync, `berth plan` and `berth diff` find the Secret unchanged: its keyed digest is made again", async () => {
    t.git.commit("cli", {
      "keyed/s.yaml": `apiVersion: v1\nkind: Secret\nmetadata: {name: keyed}\nstringData: {t: "x"}\n`,
    });
    const own = writeConfig(
      `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${t.git.url("cli")}", interval: 1h}\napps:\n  - {name: keyed, path: keyed, namespace: ${ns}, timeout: 30s}\nledger: {path: $DIR/ledger.db}\n`,
    );
    expect((await runBerth(["sync", "--config", own], env())).code).toBe(0);
    const plan = await runBerth(["plan", "--config", own, "-o", "json"], env());
    expect(plan.code).toBe(0);
    const shown = JSON.parse(plan.stdout) as Array<{ changes: Array<{ subject: string; action: string }> }>;
    expect(shown.flatMap((p) => p.changes.map((c) => `${c.subject} ${c.action}`))).toEqual([
      `Secret/${ns}/keyed unchanged`,
    ]);
    const diff = await runBerth(["diff", "--config", own], env());
    expect(diff.code).toBe(0);
    expect(diff.stdout).toBe("");
  }, 180_000);

  test("a clean stop of berth run is quiet: no lost-watch warnings, exit 0", async () => {
    const run = startBerth(["run", "--config", config, "--log-format", "json"], env());
    await eventually("berth run watching", 60_000, async () =>
      run.output().includes('"msg":"watch connected"') ? true : undefined,
    );
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);
    expect(run.output()).toContain('"msg":"stopped"');
    expect(run.output()).not.toContain("watch lost");
  }, 180_000);
});
