/**
 * renderApp() of charts from a real HTTPS Helm repository (helm create/package/repo index, basic auth, a
 * private CA) with the real helm binary: semver resolution, the content-addressed cache, upgrades, a wrong
 * password, a republished version, an unreachable repository, and values files from the Git tree.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AppRenderSpec, type RenderEnvironment, renderApp } from "../../agent/render/app.ts";
import { FsSnapshot } from "../../agent/render/fs-snapshot.ts";
import { HelmRepoFixture, OciRegistryFixture } from "../support/helm-repo.ts";
import { toolPaths } from "../support/tools.ts";

let repo: HelmRepoFixture;
let work: string;
let env: RenderEnvironment;
const logs: Array<{ level: string; message: string; fields: Record<string, unknown> }> = [];
let snapshot: FsSnapshot;

const app = (helm: Partial<NonNullable<AppRenderSpec["helm"]>> = {}): AppRenderSpec => ({
  name: "demo",
  path: "apps/demo",
  namespace: "web",
  helm: {
    chart: "demo",
    repo: repo.url,
    version: "1.x",
    auth: { username: "charts", passwordFile: join(work, "password") },
    caFile: repo.caFile,
    ...helm,
  },
});

const sha = (file: string) => `sha256:${createHash("sha256").update(readFileSync(file)).digest("hex")}`;
const data = (r: Awaited<ReturnType<typeof renderApp>>) =>
  (r.objects[0]?.object as { data?: Record<string, string> } | undefined)?.data ?? {};

beforeAll(async () => {
  repo = await HelmRepoFixture.start({ username: "charts", password: "s3cret-pw" });
  work = mkdtempSync(join(tmpdir(), "berth-helmremote-"));
  writeFileSync(join(work, "password"), "s3cret-pw\n");
  writeFileSync(join(work, "wrong"), "not-the-password\n");
  mkdirSync(join(work, "git", "apps", "demo"), { recursive: true });
  writeFileSync(join(work, "git", "apps", "demo", "values.yaml"), "greeting: from-git\n");
  snapshot = new FsSnapshot(join(work, "git"));
  env = {
    tools: { paths: await toolPaths() },
    chartCache: join(work, "chart-cache"),
    log: (level, message, fields) => logs.push({ level, message, fields }),
  };
}, 600_000);

afterAll(async () => {
  await repo?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("charts from an HTTPS Helm repository", () => {
  test("1.x resolves to the newest 1.* version; the origin names version and archive digest", async () => {
    const v100 = repo.publish("demo", "1.0.0");
    repo.publish("demo", "2.0.0");
    const r = await renderApp(snapshot, app(), env);
    expect(r.errors).toEqual([]);
    expect(data(r).chartVersion).toBe("1.0.0");
    expect(r.origin).toBe(`chart demo 1.0.0 ${sha(v100)}`);
    expect(r.objects[0]?.source).toMatch(/^helm template demo 1\.0\.0#0/);
  }, 60_000);

  test("a second render comes from the cache: the index is read, no archive is downloaded", async () => {
    const before = repo.requests.length;
    const r = await renderApp(snapshot, app(), env);
    expect(r.errors).toEqual([]);
    const paths = repo.requests.slice(before).map((q) => q.path);
    expect(paths).toContain("/index.yaml");
    expect(paths.filter((p) => p.endsWith(".tgz"))).toEqual([]);
  }, 60_000);

  test("a damaged archive in the cache is not rendered: it is pulled again", async () => {
    const blobs = join(work, "chart-cache", "sha256");
    for (const f of readdirSync(blobs)) writeFileSync(join(blobs, f), "damaged");
    const before = repo.requests.length;
    const r = await renderApp(snapshot, app(), env);
    expect(r.errors).toEqual([]);
    expect(data(r).chartVersion).toBe("1.0.0");
    expect(repo.requests.slice(before).some((q) => q.path.endsWith(".tgz"))).toBe(true);
  }, 60_000);

  test("values files are repository paths of the Git tree; set wins over them", async () => {
    const r = await renderApp(snapshot, app({ values: ["apps/demo/values.yaml"] }), env);
    expect(data(r).greeting).toBe("from-git");
    const s = await renderApp(
      snapshot,
      app({ values: ["apps/demo/values.yaml"], set: { greeting: "set" } }),
      env,
    );
    expect(data(s).greeting).toBe("set");
  }, 60_000);

  test("publishing 1.1.0 (index updated) is picked up by the next render", async () => {
    const v110 = repo.publish("demo", "1.1.0");
    const r = await renderApp(snapshot, app(), env);
    expect(data(r).chartVersion).toBe("1.1.0");
    expect(r.origin).toBe(`chart demo 1.1.0 ${sha(v110)}`);
  }, 60_000);

  test("a wrong password is an error naming the repository, and nothing renders", async () => {
    const r = await renderApp(
      snapshot,
      app({ auth: { username: "charts", passwordFile: join(work, "wrong") } }),
      env,
    );
    expect(r.objects).toEqual([]);
    expect(r.errors[0]?.message).toContain(`helm repository ${repo.url}: authentication failed`);
    expect(r.errors[0]?.message).toContain("401");
    expect(JSON.stringify(r)).not.toContain("not-the-password");
  }, 60_000);

  test("without caFile the private CA is not trusted: an error naming the repository, not a cache fallback", async () => {
    const spec = app();
    if (spec.helm) delete spec.helm.caFile;
    const r = await renderApp(snapshot, spec, env);
    expect(r.objects).toEqual([]);
    expect(r.errors[0]?.message).toContain(`helm repository ${repo.url}: TLS verification failed`);
  }, 60_000);

  test("a version that does not exist is an error naming chart, constraint and repository", async () => {
    const r = await renderApp(snapshot, app({ version: "3.x" }), env);
    expect(r.errors[0]?.message).toContain(`helm repository ${repo.url}: no chart demo matching version 3.x`);
  }, 60_000);

  test("1.1.0 republished with different content is detected and not rendered", async () => {
    const again = repo.publish("demo", "1.1.0", { extra: "changed" });
    const r = await renderApp(snapshot, app(), env);
    expect(r.objects).toEqual([]);
    expect(r.errors[0]?.message).toContain("chart demo 1.1.0 was republished with different content");
    expect(r.errors[0]?.message).toContain(`now ${sha(again)}`);
  }, 60_000);

  test("an unreachable repository renders the last chart pulled, from the cache, and says so", async () => {
    const pinned = app({ version: "1.0.0" });
    const first = await renderApp(snapshot, pinned, env);
    expect(first.errors).toEqual([]);
    await repo.stop();
    logs.length = 0;
    const r = await renderApp(snapshot, pinned, env);
    expect(r.errors).toEqual([]);
    expect(data(r).chartVersion).toBe("1.0.0");
    expect(r.origin).toBe(first.origin as string);
    expect(logs.map((l) => l.message)).toContain(
      "chart source unreachable; rendering the last chart pulled from the cache",
    );
    // Never pulled for this constraint: nothing to fall back on, an error naming the repository.
    const none = await renderApp(snapshot, app({ version: "~2.0" }), env);
    expect(none.errors[0]?.message).toContain(
      `helm repository ${repo.url}: cannot fetch the chart and none is cached`,
    );
  }, 60_000);
});

describe("charts from an OCI registry (docker-registry, TLS, htpasswd)", () => {
  let registry: OciRegistryFixture;
  const oci = (helm: Partial<NonNullable<AppRenderSpec["helm"]>> = {}): AppRenderSpec => ({
    name: "cache",
    path: "apps/demo",
    namespace: "web",
    helm: {
      chart: `oci://${registry.host}/charts/demo`,
      version: "1.x",
      auth: { username: "pusher", passwordFile: join(work, "oci-password") },
      caFile: registry.caFile,
      values: ["apps/demo/values.yaml"],
      ...helm,
    },
  });
  beforeAll(async () => {
    registry = await OciRegistryFixture.start({ username: "pusher", password: "oci-s3cret" });
    writeFileSync(join(work, "oci-password"), "oci-s3cret\n");
  }, 60_000);
  afterAll(async () => {
    await registry?.close();
  });

  test("1.x resolves among the pushed tags; pushing 1.1.0 upgrades; origin names version and digest", async () => {
    const v100 = registry.push("demo", "1.0.0");
    registry.push("demo", "2.0.0");
    const r = await renderApp(snapshot, oci(), env);
    expect(r.errors).toEqual([]);
    expect(data(r)).toMatchObject({ chartVersion: "1.0.0", greeting: "from-git" });
    expect(r.origin).toBe(`chart demo 1.0.0 ${sha(v100)}`);
    const v110 = registry.push("demo", "1.1.0");
    const s = await renderApp(snapshot, oci(), env);
    expect(data(s).chartVersion).toBe("1.1.0");
    expect(s.origin).toBe(`chart demo 1.1.0 ${sha(v110)}`);
  }, 60_000);

  test("a wrong password is an error naming the registry; nothing renders", async () => {
    writeFileSync(join(work, "oci-wrong"), "nope\n");
    const r = await renderApp(
      snapshot,
      oci({ auth: { username: "pusher", passwordFile: join(work, "oci-wrong") } }),
      env,
    );
    expect(r.objects).toEqual([]);
    expect(r.errors[0]?.message).toContain(
      `OCI registry oci://${registry.host}/charts/demo: authentication failed`,
    );
  }, 60_000);

  test("1.1.0 pushed again with other content is detected and not rendered", async () => {
    registry.push("demo", "1.1.0", { extra: "changed" });
    const r = await renderApp(snapshot, oci(), env);
    expect(r.objects).toEqual([]);
    expect(r.errors[0]?.message).toContain("chart demo 1.1.0 was republished with different content");
  }, 60_000);

  test("a stopped registry renders the last chart pulled from the cache, and says so", async () => {
    const pinned = oci({ version: "1.0.0" });
    const first = await renderApp(snapshot, pinned, env);
    expect(first.errors).toEqual([]);
    await registry.close();
    logs.length = 0;
    const r = await renderApp(snapshot, pinned, env);
    expect(r.errors).toEqual([]);
    expect(r.origin).toBe(first.origin as string);
    expect(logs.map((l) => l.fields.source)).toContain(`OCI registry oci://${registry.host}/charts/demo`);
  }, 60_000);
});
