/**
 * The parse worker starts under every runtime berth ships on — the compiled binary (embedded entry), Deno
 * (the sources) and Node 20 (dist/parse-worker.mjs beside dist/berth.mjs) — and gives the same answers there:
 * `berth validate --dir` renders a 150k-key ConfigMap and names a typo'd kind with its line, and never says it
 * fell back to parsing in the main thread.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { berthCommand, RUNTIMES, runUnder } from "../support/runtimes.ts";

const dir = mkdtempSync(join(tmpdir(), "berth-parse-runtimes-"));
mkdirSync(join(dir, "app"));
const lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: huge", "data:"];
for (let i = 0; i < 150_000; i++) lines.push(`  k${i}: v`);
writeFileSync(join(dir, "app", "huge.yaml"), `${lines.join("\n")}\n`);
writeFileSync(join(dir, "app", "ns.yaml"), "apiVersion: v1\nKind: Namespace\nmetadata:\n  name: team-data\n");
writeFileSync(join(dir, "app", "values.yaml"), "replicas: 3\n");
const config = join(dir, "berth.yaml");
writeFileSync(
  config,
  `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "http://127.0.0.1:1/none.git"}\napps:\n  - {name: a, path: app}\nledger: {path: ${join(dir, "ledger.db")}}\n`,
);

describe("the parse worker under each runtime", () => {
  for (const runtime of RUNTIMES) {
    test(`${runtime}: a huge file and a typo'd kind, parsed in the worker`, async () => {
      berthCommand(runtime);
      const r = await runUnder(runtime, ["validate", "--config", config, "--dir", dir]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(
        '✗ a: app/ns.yaml:2:1: document 0: "Kind" must be spelled "kind" (Kubernetes keys are case-sensitive)',
      );
      expect(r.stderr).toContain("a: skipped app/values.yaml#0: not a Kubernetes object");
      expect(r.stderr).not.toContain("huge.yaml");
      expect(r.stderr).not.toContain("parsed in the main thread");
    }, 180_000);
  }
});
