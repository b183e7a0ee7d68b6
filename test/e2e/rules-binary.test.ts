/**
 * `rules:` entries with the compiled binary against the real control plane: a rule file, and a directory
 * whose *.yaml/*.yml files load sorted and not recursively (a broken file in a subdirectory and a
 * `*.test.yaml` fixture beside the rules are not loaded). Each form's deny rule blocks `berth plan`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, runBerth } from "../support/binary.ts";
import { kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";

let cluster: TestCluster;
let git: GitFixture;
let url: string;
const ns = `rulesbin-${Math.random().toString(16).slice(2, 8)}`;
const rulesRoot = mkdtempSync(join(tmpdir(), "berth-rules-bin-"));

const denyRule = (rule: string, name: string) =>
  `apiVersion: berth.dev/v1alpha1\nkind: Rules\nsync:\n  - name: ${rule}\n    when: change.object.metadata.name == '${name}'\n    verdict: deny\n    message: ${name} is not allowed\n`;

const configWith = (rules: string) =>
  writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", ref: main}\napps:\n  - {name: app, path: app, namespace: ${ns}}\nrules: ["${rules}"]\nledger: {path: $DIR/ledger.db}\n`,
  );

beforeAll(async () => {
  berthBinary();
  cluster = await useCluster();
  git = await GitFixture.start();
  url = git.createRepo("infra");
  const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata: {a: "1"}\n`;
  git.commit("infra", {
    "app/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n`,
    "app/cms.yaml": [cm("from-file"), cm("from-dir-a"), cm("from-dir-b"), cm("from-sub")].join("---\n"),
  });
  writeFileSync(join(rulesRoot, "single.yaml"), denyRule("deny-file", "from-file"));
  const dir = join(rulesRoot, "dir");
  mkdirSync(join(dir, "sub"), { recursive: true });
  writeFileSync(join(dir, "20-b.yml"), denyRule("deny-dir-b", "from-dir-b"));
  writeFileSync(join(dir, "10-a.yaml"), denyRule("deny-dir-a", "from-dir-a"));
  writeFileSync(join(dir, "README.md"), "not a rule file\n");
  // Would fail to load if the directory were read recursively or fixtures were taken for rules.
  writeFileSync(join(dir, "sub", "30-sub.yaml"), denyRule("deny-sub", "from-sub"));
  writeFileSync(join(dir, "sub", "broken.yaml"), "kind: Rules\nsync: [{name: x, when: '1 +'}]\n");
  writeFileSync(join(dir, "policy.test.yaml"), "cases: [{name: c, object: {}}]\n");
}, 600_000);

afterAll(async () => {
  await git?.close();
  try {
    kubectl(cluster, "delete", "namespace", ns, "--wait=false", "--ignore-not-found");
  } catch {}
});

const env = () => ({ KUBECONFIG: cluster.kubeconfigPath });

const namespaceExists = () =>
  kubectl(cluster, "get", "namespace", ns, "--ignore-not-found", "-o", "name").trim() !== "";

describe("rules: in berth.yaml, with the compiled binary", () => {
  test("a rule file: its deny rule blocks the plan", async () => {
    const r = await runBerth(["plan", "--config", configWith(join(rulesRoot, "single.yaml"))], env());
    expect(r.stderr).not.toContain("EISDIR");
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`deny    rule deny-file (${join(rulesRoot, "single.yaml")}:4)`);
    expect(r.stdout).not.toContain("deny-dir-");
    expect(namespaceExists()).toBe(false);
  }, 120_000);

  test("a directory: its *.yaml and *.yml files load in name order, not its subdirectory or fixtures", async () => {
    const dir = join(rulesRoot, "dir");
    const config = configWith(dir);
    const r = await runBerth(["plan", "--json", "--config", config], env());
    expect(r.stderr).not.toContain("EISDIR");
    expect(r.code).toBe(1);
    const [plan] = JSON.parse(r.stdout) as Array<{ verdicts: Array<{ rule: string; at: string }> }>;
    expect(plan?.verdicts.map((v) => [v.rule, v.at])).toEqual([
      ["deny-dir-a", `${join(dir, "10-a.yaml")}:4`],
      ["deny-dir-b", `${join(dir, "20-b.yml")}:4`],
    ]);
    expect(namespaceExists()).toBe(false);

    const check = await runBerth(["rules", "check", "--config", config], env());
    expect(check.code).toBe(0);
    expect(check.stdout).toBe(
      `✓ ${join(dir, "10-a.yaml")}: 0 health, 1 sync rules\n✓ ${join(dir, "20-b.yml")}: 0 health, 1 sync rules\n`,
    );
  }, 120_000);
});
