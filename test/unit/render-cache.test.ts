/**
 * The render cache (agent/render/render-cache.ts) behind the agent's render port: an unchanged app is not
 * rendered again, and every input a render reads — the commit, the app's settings, a variables file — makes
 * it render again; inputs outside the commit (cluster varsFrom, remote charts and bases) are never cached.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderPortFor } from "../../agent/cli/wire.ts";
import { loadConfig } from "../../agent/config/config.ts";
import { FsSnapshot } from "../../agent/render/fs-snapshot.ts";
import { durableRenderKey, RenderCache, renderKey } from "../../agent/render/render-cache.ts";

const NO_COMMIT = { sha: "", author: "", message: "", time: "" };
const sha = (c: string) => c.repeat(40);

/** A repository directory with two apps; `revision` stands for the commit it was read at. */
function repo(other = "one") {
  const root = mkdtempSync(join(tmpdir(), "berth-render-cache-"));
  mkdirSync(join(root, "web"));
  mkdirSync(join(root, "other"));
  writeFileSync(
    join(root, "web", "cm.yaml"),
    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web, namespace: ns}\ndata:\n  greeting: '${GREETING}'\n  who: '${WHO}'\n",
  );
  writeFileSync(
    join(root, "other", "cm.yaml"),
    `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: other, namespace: ns}\ndata: {v: ${other}}\n`,
  );
  return (revision: string) => new FsSnapshot(root, NO_COMMIT, `main@sha1:${revision}`);
}

function configWith(apps: string): { path: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "berth-render-cache-ws-"));
  const path = join(dir, "berth.yaml");
  writeFileSync(join(dir, "vars.env"), "WHO=world\n");
  writeFileSync(
    path,
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "https://git.example/infra.git"}\napps:\n${apps.replaceAll("$DIR", dir)}ledger: {path: ${dir}/ledger.db}\n`,
  );
  return { path, dir };
}

const greetingOf = (r: Awaited<ReturnType<ReturnType<typeof renderPortFor>>>) =>
  (r.objects[0]?.object as { data?: Record<string, string> } | undefined)?.data;

describe("the render port reuses an unchanged render", () => {
  const apps =
    "  - {name: web, path: web, vars: {GREETING: hello}, varsFrom: [{file: $DIR/vars.env}]}\n  - {name: other, path: other}\n";

  test("same commit, settings and variables file: the same result, not rendered again", async () => {
    const { path } = configWith(apps);
    const port = renderPortFor(loadConfig(path));
    const at = repo();
    const first = await port(at(sha("a")), { name: "web", path: "web" });
    expect(first.errors).toEqual([]);
    expect(greetingOf(first)).toEqual({ greeting: "hello", who: "world" });
    const again = await port(at(sha("a")), { name: "web", path: "web" });
    expect(again).toBe(first);
  });

  test("a new commit renders again, even one that touched only another app's path (keyed by commit)", async () => {
    const { path } = configWith(apps);
    const port = renderPortFor(loadConfig(path));
    const first = await port(repo()(sha("a")), { name: "web", path: "web" });
    const next = await port(repo("two")(sha("b")), { name: "web", path: "web" });
    expect(next).not.toBe(first);
    expect(next.digest).toBe(first.digest);
  });

  test("a changed variables file renders again with its new value", async () => {
    const { path, dir } = configWith(apps);
    const port = renderPortFor(loadConfig(path));
    const at = repo();
    const first = await port(at(sha("a")), { name: "web", path: "web" });
    writeFileSync(join(dir, "vars.env"), "WHO=edge\n");
    const next = await port(at(sha("a")), { name: "web", path: "web" });
    expect(next).not.toBe(first);
    expect(greetingOf(next)).toEqual({ greeting: "hello", who: "edge" });
    expect(next.digest).not.toBe(first.digest);
  });

  test("a changed app config (a substitution variable) renders again", async () => {
    const at = repo();
    const a = await renderPortFor(loadConfig(configWith(apps).path))(at(sha("a")), {
      name: "web",
      path: "web",
    });
    const changed = configWith(apps.replace("GREETING: hello", "GREETING: hi"));
    const port = renderPortFor(loadConfig(changed.path));
    const b = await port(at(sha("a")), { name: "web", path: "web" });
    expect(greetingOf(b)).toEqual({ greeting: "hi", who: "world" });
    expect(b.digest).not.toBe(a.digest);
    // The key itself differs, so even one long-lived cache could not confuse the two configs.
    const spec = (p: string) => loadConfig(p).apps.find((x) => x.name === "web");
    const keyA = renderKey(at(sha("a")), spec(configWith(apps).path) ?? { name: "", path: "" });
    const keyB = renderKey(at(sha("a")), spec(changed.path) ?? { name: "", path: "" });
    expect(keyA).toBeDefined();
    expect(keyA).not.toBe(keyB);
  });

  test("a failed render is not cached", async () => {
    const { path, dir } = configWith(apps);
    const port = renderPortFor(loadConfig(path));
    const at = repo();
    writeFileSync(join(dir, "vars.env"), "not a variable line\n");
    const bad = await port(at(sha("a")), { name: "web", path: "web" });
    expect(bad.errors.length).toBeGreaterThan(0);
    const again = await port(at(sha("a")), { name: "web", path: "web" });
    expect(again).not.toBe(bad);
  });
});

describe("renderKey", () => {
  const at = (revision: string) => ({ revision });
  test("a directory snapshot (no commit) is never cached", () => {
    expect(renderKey(at("local"), { name: "web", path: "web" })).toBeUndefined();
    expect(renderKey(at(`main@sha1:${sha("a")}`), { name: "web", path: "web" })).toBeDefined();
  });
  test("inputs outside the commit are never cached: cluster varsFrom, remote charts, remote bases", () => {
    const rev = at(`main@sha1:${sha("a")}`);
    expect(
      renderKey(rev, { name: "w", path: "w", varsFrom: [{ kind: "ConfigMap", name: "vars" }] }),
    ).toBeUndefined();
    expect(
      renderKey(rev, { name: "w", path: "w", helm: { chart: "podinfo", repo: "https://charts.example" } }),
    ).toBeUndefined();
    expect(renderKey(rev, { name: "w", path: "w", kustomize: { allowRemoteBases: true } })).toBeUndefined();
    expect(renderKey(rev, { name: "w", path: "w", helm: { chart: "charts/web" } })).toBeDefined();
  });
  test("a missing variables file is not cached (the render reports it)", () => {
    expect(
      renderKey(at(`main@sha1:${sha("a")}`), {
        name: "w",
        path: "w",
        varsFrom: [{ file: "/nonexistent/v.env" }],
      }),
    ).toBeUndefined();
  });
  test("exclude is a render input; the durable key adds berth's build, settings, keys and tools", () => {
    const rev = at(`main@sha1:${sha("a")}`);
    const plain = renderKey(rev, { name: "w", path: "w" }) as string;
    expect(renderKey(rev, { name: "w", path: "w", exclude: [{ group: "helm.toolkit.fluxcd.io" }] })).not.toBe(
      plain,
    );
    const durable = durableRenderKey(plain, ["0.1.0 abc", "{}", "kustomize none"]);
    expect(durableRenderKey(plain, ["0.1.0 abc", "{}", "kustomize none"])).toBe(durable);
    expect(durableRenderKey(plain, ["0.1.0 abd", "{}", "kustomize none"])).not.toBe(durable);
    expect(durableRenderKey(plain, ["0.1.0 abc", "{}", "kustomize /bin/kustomize 1 2 3"])).not.toBe(durable);
    expect(durableRenderKey(plain, ["0.1.0 abc", "{}", "kustomize none", "AGE-SECRET-KEY-1X"])).not.toBe(
      durable,
    );
  });
});

describe("RenderCache", () => {
  test("keeps one render per app, the newest, and drops the least recently used app past its bound", () => {
    const cache = new RenderCache<string>(2);
    cache.set("a", "k1", "a1");
    cache.set("a", "k2", "a2");
    expect(cache.get("a", "k1")).toBeUndefined();
    expect(cache.get("a", "k2")).toBe("a2");
    cache.set("b", "k", "b");
    expect(cache.get("a", "k2")).toBe("a2"); // a is now the most recently used
    cache.set("c", "k", "c");
    expect(cache.get("b", "k")).toBeUndefined();
    expect(cache.get("a", "k2")).toBe("a2");
    expect(cache.get("c", "k")).toBe("c");
  });
});
