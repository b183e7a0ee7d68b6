/**
 * The README's first command: `npm run demo` brings up its own control plane and Git server, syncs the demo
 * repository, says so, and stops everything on Ctrl-C.
 */
import { describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually } from "../support/cluster.ts";

const ROOT = join(import.meta.dir, "..", "..");

describe("npm run demo", () => {
  test("syncs the demo apps, prints where to look, and stops cleanly on Ctrl-C", async () => {
    const clusterDir = mkdtempSync(join(tmpdir(), "berth-demo-cluster-"));
    const demoDir = mkdtempSync(join(tmpdir(), "berth-demo-"));
    const child = spawn(process.execPath, [join(ROOT, "scripts/demo.ts")], {
      env: { ...process.env, BERTH_CLUSTER_DIR: clusterDir, BERTH_DEMO_DIR: demoDir },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => {
      output += d;
    });
    child.stderr.on("data", (d: Buffer) => {
      output += d;
    });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    try {
      await eventually("the demo to report it is synced", 120_000, async () =>
        output.includes("the demo is synced") ? true : undefined,
      );
      expect(output).toContain("Namespace/demo");
      expect(output).toContain("Deployment/demo/web");
      expect(output).toContain("StatefulSet/demo/cache");
      expect(output).toMatch(/Git: +http:\/\/127\.0\.0\.1:\d+\/demo-infra\.git/);
      const statusUrl = /status: +(http:\/\/127\.0\.0\.1:\d+\/)/.exec(output)?.[1];
      const apps = (await (await fetch(`${statusUrl}api/v1/apps`)).json()) as
        | { apps?: unknown[] }
        | unknown[];
      expect(JSON.stringify(apps)).toContain("Synced");
      expect(output).toContain(`export KUBECONFIG=${clusterDir}/admin.kubeconfig`);
      expect(readFileSync(join(demoDir, "berth.yaml"), "utf8")).toContain("dependsOn: [base]");
      child.kill("SIGINT");
      expect(await exited).toBe(0);
      expect(output).toContain("bye.");
      // Everything was stopped: the demo's control plane state is gone.
      expect(existsSync(join(clusterDir, "kube-apiserver.pid"))).toBe(false);
    } finally {
      child.kill("SIGKILL");
    }
  }, 180_000);
});
