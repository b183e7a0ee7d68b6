/** renderApp() with the real kustomize and helm binaries (built by scripts/tools/build.sh) over fixture trees. */
import { beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { chmodSync, cpSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { renderApp } from "../../agent/render/app.ts";
import { FsSnapshot } from "../../agent/render/fs-snapshot.ts";
import { toolPaths } from "../support/tools.ts";

const FIXTURE = join(import.meta.dir, "../fixtures/render/repo");
let tools: { kustomize: string; helm: string; sops: string };
let repo: string;

beforeAll(async () => {
  tools = await toolPaths();
  repo = mkdtempSync(join(tmpdir(), "berth-render-"));
  cpSync(FIXTURE, repo, { recursive: true });
}, 600_000);

/** What a tool prints by hand, parsed, hooks included. */
function byHand(binary: string, args: string[]): Array<Record<string, unknown>> {
  const out = execFileSync(binary, args, {
    cwd: repo,
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "", HOME: repo },
  });
  return parseAllDocuments(out)
    .map((d) => d.toJS() as Record<string, unknown> | null)
    .filter((d): d is Record<string, unknown> => d !== null);
}

const env = () => ({ tools: { paths: tools } });

describe("renderApp() with kustomize", () => {
  for (const overlay of ["staging", "prod"]) {
    test(`builds the ${overlay} overlay exactly as kustomize build prints it`, async () => {
      const path = `kustomize/overlays/${overlay}`;
      const r = await renderApp(
        new FsSnapshot(repo),
        { name: overlay, path, vars: { CLUSTER: "c1", REGION: "r1" } },
        env(),
      );
      expect(r.errors).toEqual([]);
      const hand = byHand(tools.kustomize, ["build", path]).map((o) =>
        JSON.parse(
          JSON.stringify(o)
            .replace("${CLUSTER}", "c1")
            .replace("${TIER:=standard}", "standard")
            .replace("${REGION}", "r1"),
        ),
      );
      expect(r.objects.map((o) => o.object)).toEqual(hand);
      expect(r.objects[0]?.source).toBe(`kustomize build ${path}#0`);
    });
  }

  test("the overlays differ where they should", async () => {
    const snap = new FsSnapshot(repo);
    const vars = { CLUSTER: "c", REGION: "r" };
    const prod = await renderApp(snap, { name: "p", path: "kustomize/overlays/prod", vars }, env());
    const deployment = prod.objects.find((o) => o.object.kind === "Deployment")?.object as unknown as {
      metadata: { name: string };
      spec: { replicas: number };
    };
    expect(deployment.metadata.name).toBe("prod-shop");
    expect(deployment.spec.replicas).toBe(2);
  });

  test("a remote base is refused before kustomize runs", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-remote-"));
    writeFileSync(
      join(dir, "kustomization.yaml"),
      "resources:\n  - https://github.com/example/repo//base?ref=v1\n",
    );
    const r = await renderApp(new FsSnapshot(dir), { name: "x", path: "" }, env());
    expect(r.errors[0]?.message).toContain(
      'kustomization.yaml: resources names the remote base "https://github.com/example/repo//base?ref=v1"',
    );
    expect(r.objects).toEqual([]);
  });

  test("a missing kustomize binary is an error naming what to install", async () => {
    const r = await renderApp(
      new FsSnapshot(repo),
      { name: "x", path: "kustomize/base" },
      { tools: { paths: { kustomize: "/nonexistent/kustomize" } } },
    );
    expect(r.errors[0]?.message).toContain(
      "kustomize is needed to render this app but /nonexistent/kustomize is not an executable file",
    );
    expect(r.errors[0]?.message).toContain("sigs.k8s.io/kustomize/kustomize/v5");
  });

  test("a tool that hangs is killed at the timeout; one that prints too much is stopped", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-fake-"));
    const slow = join(dir, "slow");
    writeFileSync(slow, "#!/bin/sh\nsleep 30\n");
    chmodSync(slow, 0o755);
    const loud = join(dir, "loud");
    writeFileSync(loud, "#!/bin/sh\nyes 'apiVersion: v1'\n");
    chmodSync(loud, 0o755);
    const started = Date.now();
    const r1 = await renderApp(
      new FsSnapshot(repo),
      { name: "x", path: "kustomize/base" },
      { tools: { paths: { kustomize: slow }, timeoutMs: 500 } },
    );
    expect(r1.errors[0]?.message).toContain("timed out after 500 ms");
    expect(Date.now() - started).toBeLessThan(20_000);
    const r2 = await renderApp(
      new FsSnapshot(repo),
      { name: "x", path: "kustomize/base" },
      { tools: { paths: { kustomize: loud }, maxOutputBytes: 100_000 } },
    );
    expect(r2.errors[0]?.message).toContain("printed more than 100000 bytes");
  }, 30_000);

  test("a failing build names the kustomization and kustomize's message", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-bad-"));
    writeFileSync(join(dir, "kustomization.yaml"), "resources: [missing.yaml]\n");
    const r = await renderApp(new FsSnapshot(dir), { name: "x", path: "" }, env());
    expect(r.errors[0]?.message).toMatch(/kustomize build \.: exited with code 1: .*missing\.yaml/);
  });
});

describe("renderApp() with helm", () => {
  const helm = {
    chart: "charts/web",
    values: ["values/prod.yaml"],
    set: { color: "red,green" },
    releaseName: "shop",
  };

  test("renders the chart with values and --set as helm template prints it, hooks reported", async () => {
    const r = await renderApp(
      new FsSnapshot(repo),
      { name: "web", path: "charts/web", namespace: "team-a", helm },
      env(),
    );
    expect(r.errors).toEqual([]);
    const hand = byHand(tools.helm, [
      "template",
      "shop",
      "charts/web",
      "--namespace",
      "team-a",
      "--values",
      "values/prod.yaml",
      "--set",
      "color=red\\,green",
    ]);
    const withoutHooks = hand.filter(
      (o) => !(o.metadata as { annotations?: Record<string, string> }).annotations?.["helm.sh/hook"],
    );
    expect(r.objects.map((o) => o.object)).toEqual(withoutHooks as never);
    const cm = r.objects[0]?.object as unknown as {
      data: Record<string, string>;
      metadata: { namespace: string };
    };
    expect(cm.data).toEqual({ message: "from-prod-values", color: "red,green", replicas: "3" });
    expect(cm.metadata.namespace).toBe("team-a");
    expect(r.skipped.map((s) => s.message)).toEqual([
      "helm hook (pre-install, pre-upgrade) of Job/shop-migrate: not applied",
    ]);
  });

  test("a chart path outside the repository is refused", async () => {
    const r = await renderApp(
      new FsSnapshot(repo),
      { name: "web", path: "", helm: { chart: "../etc" } },
      env(),
    );
    expect(r.errors[0]?.message).toContain("../etc: must be a path inside the repository");
  });

  test("a template error names the chart and helm's message", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-badchart-"));
    cpSync(join(FIXTURE, "charts"), join(dir, "charts"), { recursive: true });
    writeFileSync(join(dir, "charts/web/templates/broken.yaml"), "data: {{ .Values.nope.deeper }}\n");
    const r = await renderApp(
      new FsSnapshot(dir),
      { name: "web", path: "", helm: { chart: "charts/web" } },
      env(),
    );
    expect(r.errors[0]?.message).toMatch(/helm template charts\/web: exited with code 1: .*broken\.yaml/);
  });
});

describe("renderApp() substitution", () => {
  test("fills variables from vars and a file; vars win; defaults apply", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "berth-vars-")), "vars.env");
    writeFileSync(file, "CLUSTER=from-file\nREGION=eu-1\n");
    const r = await renderApp(
      new FsSnapshot(repo),
      { name: "s", path: "kustomize/overlays/staging", vars: { CLUSTER: "from-vars" }, varsFrom: [{ file }] },
      env(),
    );
    expect(r.errors).toEqual([]);
    const cm = r.objects.find((o) => o.object.kind === "ConfigMap")?.object as unknown as {
      data: Record<string, string>;
    };
    expect(cm.data).toEqual({ greeting: "hello", cluster: "from-vars", tier: "standard", region: "eu-1" });
  });

  test("an undefined variable without default fails naming the object and the variable", async () => {
    const r = await renderApp(
      new FsSnapshot(repo),
      { name: "s", path: "kustomize/overlays/staging", vars: { CLUSTER: "x" } },
      env(),
    );
    expect(r.objects).toEqual([]);
    expect(r.errors).toEqual([
      {
        path: "kustomize build kustomize/overlays/staging#0",
        message: 'ConfigMap/staging-shop-settings: variable "REGION" is not defined and has no default',
      },
    ]);
  });

  test("without vars or varsFrom nothing is substituted (as Flux without postBuild)", async () => {
    const r = await renderApp(new FsSnapshot(repo), { name: "p", path: "plain" }, env());
    expect(((r.objects[0]?.object ?? {}) as unknown as { data?: Record<string, string> }).data?.owner).toBe(
      "${OWNER}",
    );
  });
});
