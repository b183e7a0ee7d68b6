/**
 * Render tools under their ceilings (issue: bounded everything): a Helm template that loops 50 million times
 * and a Kustomize tree whose overlays double its 64 KiB object 16 times each end in a render error naming the app's
 * tool and the limit, well inside the timeout, and the tool never grows past the memory ceiling. Real helm and
 * kustomize binaries (scripts/tools/build.sh). And the blast radius of a bad input: a symlink that leaves the
 * repository in app A's directory and a remote base in app B fail only A and B, not Kustomize app C or Helm app D.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { renderApp } from "../../agent/render/app.ts";
import { FsSnapshot } from "../../agent/render/fs-snapshot.ts";
import { ADDRESS_SPACE_HEADROOM, limitedCommand } from "../../agent/render/tools.ts";
import { toolPaths } from "../support/tools.ts";

const MAX_MEMORY = 256 * 1024 * 1024;
let tools: { kustomize: string; helm: string; sops: string };
let repo: string;

function write(files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(repo, path)), { recursive: true });
    writeFileSync(join(repo, path), text);
  }
}

beforeAll(async () => {
  tools = await toolPaths();
  repo = mkdtempSync(join(tmpdir(), "berth-render-limits-"));
  write({
    "charts/loop/Chart.yaml": "apiVersion: v2\nname: loop\nversion: 0.1.0\n",
    "charts/loop/templates/cm.yaml":
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: loop\ndata:\n  x: "{{ range $i := until 50000000 }}xxxxxxxxxxxxxxxx{{ end }}"\n',
    "charts/ok/Chart.yaml": "apiVersion: v2\nname: ok\nversion: 0.1.0\n",
    "charts/ok/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n",
    "doubling/l0/kustomization.yaml": "resources: [cm.yaml]\n",
    "doubling/l0/cm.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata: {k: "${"v".repeat(65_536)}"}\n`,
  });
  write({
    "apps/a/kustomization.yaml": "resources: [cm.yaml]\n",
    "apps/a/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n",
    "apps/b/kustomization.yaml": "resources: [https://github.com/example/repo//base?ref=v1]\n",
    "apps/c/kustomization.yaml": "resources: [../../shared/base]\nnamePrefix: c-\n",
    "shared/base/kustomization.yaml": "resources: [cm.yaml]\n",
    "shared/base/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n",
    "apps/e/kustomization.yaml": "resources: [../a/secret-link.yaml]\n",
  });
  symlinkSync("../../../../../etc/passwd", join(repo, "apps/a/secret-link.yaml"));
  // Level i holds two copies of level i-1 under different name prefixes: 2^16 objects of 64 KiB at the top.
  for (let i = 1; i <= 16; i++) {
    write({
      [`doubling/l${i}/kustomization.yaml`]: "resources: [a, b]\n",
      [`doubling/l${i}/a/kustomization.yaml`]: `namePrefix: a-\nresources: [../../l${i - 1}]\n`,
      [`doubling/l${i}/b/kustomization.yaml`]: `namePrefix: b-\nresources: [../../l${i - 1}]\n`,
    });
  }
}, 600_000);

/**
 * The tool was stopped near the ceiling (the watchdog reads its resident memory every 50 ms, so it may pass it
 * by what it allocates in that time), and the agent itself (this process) did not grow with it.
 */
function expectPeaksUnderCeiling(message: string, agentRssBefore: number): void {
  const stoppedAt = /stopped at (\d+) MiB resident/.exec(message)?.[1];
  if (stoppedAt !== undefined) {
    console.log(
      JSON.stringify({ tool_stopped_at_mib: Number(stoppedAt), ceiling_mib: MAX_MEMORY / 2 ** 20 }),
    );
    expect(Number(stoppedAt) * 2 ** 20).toBeLessThan(MAX_MEMORY * 1.5);
  }
  // The tool's output never reaches the agent: its resident memory stays where it was.
  const grew = process.memoryUsage().rss - agentRssBefore;
  console.log(JSON.stringify({ agent_rss_growth_mib: Math.round(grew / 2 ** 20) }));
  expect(grew).toBeLessThan(64 * 2 ** 20);
}

const limits = () => ({
  tools: { paths: tools, timeoutMs: 60_000, maxMemoryBytes: MAX_MEMORY, maxCpuSeconds: 30 },
});

describe("render tools under a memory and CPU ceiling", () => {
  test("a Helm template looping 50 million times is stopped by a limit, named, within the timeout", async () => {
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    const r = await renderApp(
      new FsSnapshot(repo),
      { name: "loop", path: "", helm: { chart: "charts/loop" } },
      limits(),
    );
    const seconds = (performance.now() - t0) / 1000;
    expect(r.objects).toEqual([]);
    expect(r.errors.length).toBe(1);
    expect(r.errors[0]?.message).toMatch(/helm template charts\/loop.*render\.max(Memory|Cpu)/);
    expect(seconds).toBeLessThan(60);
    expectPeaksUnderCeiling(r.errors[0]?.message ?? "", rss0);
  }, 120_000);

  test("a Kustomize tree that doubles 16 times (64 KiB objects) is stopped by a limit, named, within the timeout", async () => {
    const rss0 = process.memoryUsage().rss;
    const t0 = performance.now();
    const r = await renderApp(new FsSnapshot(repo), { name: "doubling", path: "doubling/l16" }, limits());
    const seconds = (performance.now() - t0) / 1000;
    expect(r.objects).toEqual([]);
    expect(r.errors[0]?.message).toMatch(/kustomize build doubling\/l16.*render\.max(Memory|Cpu)/);
    expect(seconds).toBeLessThan(60);
    expectPeaksUnderCeiling(r.errors[0]?.message ?? "", rss0);
  }, 120_000);

  test("a normal chart renders under the same ceilings", async () => {
    const r = await renderApp(
      new FsSnapshot(repo),
      { name: "ok", path: "", helm: { chart: "charts/ok" } },
      limits(),
    );
    expect(r.errors).toEqual([]);
    expect(r.objects.map((o) => o.object.metadata.name)).toEqual(["ok"]);
  });

  test("the ceiling is set with prlimit when present, else with the shell's ulimit", () => {
    expect(
      limitedCommand("/bin/helm", ["template", "x"], { maxMemoryBytes: 1024, maxCpuSeconds: 5 }, "/usr/bin"),
    ).toEqual({
      command: "/usr/bin/prlimit",
      args: [`--as=${1024 + ADDRESS_SPACE_HEADROOM}`, "--cpu=5", "--", "/bin/helm", "template", "x"],
    });
    // Without prlimit on PATH: the shell's ulimit, arguments passed through untouched (run for real).
    const shOnly = mkdtempSync(join(tmpdir(), "berth-sh-only-"));
    symlinkSync("/bin/sh", join(shOnly, "sh"));
    const viaSh = limitedCommand(
      "/bin/echo",
      ["a b", "$(x)", "'q'"],
      { maxMemoryBytes: 4096, maxCpuSeconds: 7 },
      shOnly,
    );
    expect(viaSh.command).toBe(join(shOnly, "sh"));
    expect(viaSh.args[1]).toBe(
      `ulimit -v ${Math.ceil((4096 + ADDRESS_SPACE_HEADROOM) / 1024)} && ulimit -t 7 && exec "$0" "$@"`,
    );
    expect(spawnSync(viaSh.command, viaSh.args, { encoding: "utf8" }).stdout).toBe("a b $(x) 'q'\n");
    expect(limitedCommand("/bin/helm", [], { maxMemoryBytes: 0, maxCpuSeconds: 0 })).toEqual({
      command: "/bin/helm",
      args: [],
    });
  });
});

describe("one app's bad input fails only that app", () => {
  const snap = () => new FsSnapshot(repo);
  test("a symlink leaving the repository fails the app whose directory holds it, naming the link", async () => {
    const r = await renderApp(snap(), { name: "a", path: "apps/a" }, limits());
    expect(r.errors[0]?.message).toContain("leads outside the repository");
    expect(r.errors[0]?.path).toContain("apps/a");
  });

  test("a remote base fails its own app, naming the kustomization", async () => {
    const r = await renderApp(snap(), { name: "b", path: "apps/b" }, limits());
    expect(r.errors[0]?.message).toContain("apps/b/kustomization.yaml: resources names the remote base");
  });

  test("a Kustomize app and a Helm app elsewhere in the same repository still render", async () => {
    const c = await renderApp(snap(), { name: "c", path: "apps/c" }, limits());
    expect(c.errors).toEqual([]);
    expect(c.objects.map((o) => o.object.metadata.name)).toEqual(["c-shared"]);
    const d = await renderApp(snap(), { name: "d", path: "", helm: { chart: "charts/ok" } }, limits());
    expect(d.errors).toEqual([]);
    expect(d.objects.map((o) => o.object.metadata.name)).toEqual(["ok"]);
  });

  test("an app that reaches for the left-out link fails, saying it was left out and why", async () => {
    const r = await renderApp(snap(), { name: "e", path: "apps/e" }, limits());
    expect(r.objects).toEqual([]);
    expect(r.errors[0]?.message).toContain(
      "left out of the tool's copy of the repository: apps/a/secret-link.yaml",
    );
  });
});
