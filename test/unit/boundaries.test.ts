/** The import-boundary check (scripts/check/boundaries.ts) passes on the tree and fails on planted violations. */
import { describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const repo = join(import.meta.dir, "..", "..");
const script = join(repo, "scripts", "check", "boundaries.ts");

function run(root: string): { code: number; stderr: string } {
  const r = Bun.spawnSync([process.execPath, script, root], { stderr: "pipe", stdout: "pipe" });
  return { code: r.exitCode, stderr: r.stderr.toString() };
}

/** A copy of agent/ (and schemas/, which config reads) with one file added. */
function plant(file: string, text: string): string {
  const root = mkdtempSync(join(tmpdir(), "berth-boundaries-"));
  cpSync(join(repo, "agent"), join(root, "agent"), { recursive: true });
  cpSync(join(repo, "schemas"), join(root, "schemas"), { recursive: true });
  writeFileSync(join(root, file), text);
  return root;
}

describe("import boundaries", () => {
  test("the tree as committed has no violation", () => {
    const r = run(repo);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  const cases: [string, string, string, string][] = [
    [
      "a stage importing another stage",
      "agent/render/planted.ts",
      'import { applyStaged } from "../apply/apply.ts";\nexport const x = applyStaged;\n',
      "agent/render/planted.ts:1: agent/render/ may not import agent/apply/",
    ],
    [
      "a stage pointing back up at the engine",
      "agent/plan/planted.ts",
      'import type {\n  Logger,\n} from "../engine/log.ts";\nexport type X = Logger;\n',
      "agent/plan/planted.ts:1: agent/plan/ may not import agent/engine/",
    ],
    [
      "the Kubernetes client outside kube/client.ts",
      "agent/engine/planted.ts",
      'import { KubeConfig } from "@kubernetes/client-node";\nexport const k = new KubeConfig();\n',
      "@kubernetes/client-node is imported only by agent/kube/client.ts",
    ],
    [
      "a value import where only types are allowed",
      "agent/policy/planted.ts",
      'import { plan } from "../plan/plan.ts";\nexport const p = plan;\n',
      "agent/policy/ may not import agent/plan/ (only `import type` is allowed)",
    ],
    [
      "hono outside api/",
      "agent/engine/planted.ts",
      'import { Hono } from "hono";\nexport const h = new Hono();\n',
      "hono is used only inside agent/api/",
    ],
  ];
  for (const [name, file, text, message] of cases) {
    test(`fails on ${name}`, () => {
      const root = plant(file, text);
      try {
        const r = run(root);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(message);
        expect(r.stderr).toContain("1 import boundary violation(s)");
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }

  test("a type-only import of a library is allowed anywhere", () => {
    const root = plant(
      "agent/engine/planted.ts",
      'import type { KubeConfig } from "@kubernetes/client-node";\nexport type K = KubeConfig;\n',
    );
    try {
      expect(run(root).code).toBe(0);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
