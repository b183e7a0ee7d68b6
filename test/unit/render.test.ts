import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { attachLarge, detachLarge } from "../../agent/render/chunked.ts";
import { fastParseYaml } from "../../agent/render/fast-yaml.ts";
import { FsSnapshot } from "../../agent/render/fs-snapshot.ts";
import { parseYamlFile, parseYamlWithPackage, SCALAR_TAGS } from "../../agent/render/parse-manifests.ts";
import { INLINE_BYTES, ParsePool } from "../../agent/render/parse-pool.ts";
import {
  DEFAULT_RENDER_LIMITS,
  digestOfObjects,
  type FileParser,
  parseInline,
  READ_AHEAD,
  render,
} from "../../agent/render/plain.ts";

const roots: string[] = [];
afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

/** A temp repository with the given files ("a/b.yaml": text) and symlinks ("link": { link: "target" }). */
function repo(tree: Record<string, string | { link: string }>): { root: string; snapshot: FsSnapshot } {
  const root = mkdtempSync(join(tmpdir(), "berth-render-"));
  roots.push(root);
  for (const [path, content] of Object.entries(tree)) {
    const full = join(root, path);
    mkdirSync(dirname(full), { recursive: true });
    if (typeof content === "string") writeFileSync(full, content);
    else symlinkSync(content.link, full);
  }
  return { root, snapshot: new FsSnapshot(root) };
}

const cm = (name: string, extra = "") =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${extra}`;

describe("render()", () => {
  test("reads multi-document YAML in path order with document indexes", async () => {
    const { snapshot } = repo({
      "app/b.yaml": `${cm("b1")}---\n---\n${cm("b2", "data:\n  k: v\n")}`,
      "app/a.yml": cm("a"),
      "app/sub/c.yaml": cm("c", "  namespace: team\n"),
      "other/x.yaml": cm("outside"),
    });
    const result = await render(snapshot, "app");
    expect(result.errors).toEqual([]);
    expect(result.files).toBe(3);
    expect(result.objects.map((o) => o.source)).toEqual([
      "app/a.yml#0",
      "app/b.yaml#0",
      "app/b.yaml#2",
      "app/sub/c.yaml#0",
    ]);
    expect(result.objects[3]?.ref).toEqual({
      group: "",
      version: "v1",
      kind: "ConfigMap",
      namespace: "team",
      name: "c",
    });
    expect(result.objects[2]?.object.data).toEqual({ k: "v" });
    expect(result.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  test("reads JSON files and ignores other files and hidden entries", async () => {
    const { snapshot } = repo({
      "app/d.json": JSON.stringify({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "web" } }),
      "app/README.md": "# not yaml: [",
      "app/.hidden.yaml": "{{ not even yaml",
      "app/.git-crypt/x.yaml": "{{",
    });
    const result = await render(snapshot, "app");
    expect(result.errors).toEqual([]);
    expect(result.objects.map((o) => [o.source, o.ref.group, o.ref.kind])).toEqual([
      ["app/d.json#0", "apps", "Deployment"],
    ]);
    expect(result.files).toBe(1);
  });

  test("expands List and <Kind>List documents", async () => {
    const list = {
      apiVersion: "v1",
      kind: "List",
      items: [JSON.parse(JSON.stringify({ apiVersion: "v1", kind: "Service", metadata: { name: "s" } }))],
    };
    const { snapshot } = repo({
      "app/list.json": JSON.stringify(list),
      "app/cms.yaml": `apiVersion: v1\nkind: ConfigMapList\nitems:\n  - ${cm("one").replaceAll("\n", "\n    ")}\n  - ${cm("two").replaceAll("\n", "\n    ")}\n`,
    });
    const result = await render(snapshot, "app");
    expect(result.errors).toEqual([]);
    expect(result.objects.map((o) => `${o.source} ${o.ref.kind}/${o.ref.name}`)).toEqual([
      "app/cms.yaml#0.items[0] ConfigMap/one",
      "app/cms.yaml#0.items[1] ConfigMap/two",
      "app/list.json#0.items[0] Service/s",
    ]);
  });

  test("skips documents that are not Kubernetes objects, with the reason", async () => {
    const { snapshot } = repo({
      "app/kustomization.yaml":
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n",
      "app/values.yaml": "replicas: 3\nimage: nginx\n",
      "app/a.yaml": cm("a"),
    });
    const result = await render(snapshot, "app");
    expect(result.errors).toEqual([]);
    expect(result.objects.map((o) => o.ref.name)).toEqual(["a"]);
    expect(result.skipped).toEqual([
      { path: "app/kustomization.yaml#0", message: expect.stringContaining("kustomize") },
      { path: "app/values.yaml#0", message: "not a Kubernetes object: no apiVersion, kind or metadata" },
    ]);
  });

  test("a document meant as an object but without a valid kind is an error naming file, line and document", async () => {
    const ns = (head: string) => `${head}metadata:\n  name: team-data\n`;
    const cases: Array<[string, string, string, RegExp]> = [
      ["miscased Kind", ns("apiVersion: v1\nKind: Namespace\n"), ":2:1", /"Kind" must be spelled "kind"/],
      ["no kind", ns("apiVersion: v1\n"), ":1:1", /no kind \(a document with apiVersion and metadata/],
      ["empty kind", ns('apiVersion: v1\nkind: ""\n'), ":2:1", /kind: expected a non-empty string, got ""/],
      ["null kind", ns("apiVersion: v1\nkind:\n"), ":2:1", /kind: expected a non-empty string, got null/],
      ["miscased APIVersion", ns("APIVersion: v1\nkind: Namespace\n"), ":1:1", /"APIVersion" must be/],
      ["miscased Metadata", "apiVersion: v1\nkind: Namespace\nMetadata:\n  name: x\n", ":3:1", /"Metadata"/],
      ["kind only", "kind: Namespace\n", ":1:1", /no apiVersion \(a document with kind/],
      ["metadata only", "metadata:\n  name: x\n", ":1:1", /no apiVersion \(a document with metadata/],
      ["no metadata", "apiVersion: v1\nkind: Namespace\n", ":1:1", /no metadata/],
      ["no name", "apiVersion: batch/v1\nkind: Job\nmetadata:\n  generateName: j-\n", ":3:1", /generateName/],
    ];
    for (const [what, text, at, message] of cases) {
      const { snapshot } = repo({ "app/a.yaml": cm("before"), "app/ns.yaml": `# ${what}\n---\n${text}` });
      const result = await render(snapshot, "app");
      // The line counts from the file's first line: the comment and the separator come first.
      const line = Number(at.split(":")[1]) + 2;
      expect(result.errors, what).toEqual([
        { path: `app/ns.yaml:${line}:1`, message: expect.stringMatching(/^document 0: /) },
      ]);
      expect(result.errors[0]?.message, what).toMatch(message);
      expect(result.skipped, what).toEqual([]);
    }
  });

  test("a List item that is not an object is an error; the same checks apply to JSON with its line", async () => {
    const { snapshot } = repo({
      "app/list.yaml": `apiVersion: v1\nkind: List\nitems:\n  - ${cm("ok").replaceAll("\n", "\n    ")}\n  - { apiVersion: v1, Kind: ConfigMap, metadata: { name: x } }\n  - plain\n`,
      "app/ns.json": '{\n  "apiVersion": "v1",\n  "kind": "",\n  "metadata": { "name": "x" }\n}\n',
    });
    const result = await render(snapshot, "app");
    expect(result.errors).toEqual([
      { path: "app/list.yaml:9:23", message: expect.stringContaining('document 0 items[1]: "Kind"') },
      { path: "app/list.yaml:10:5", message: expect.stringContaining("document 0 items[2]: a List item") },
      { path: "app/ns.json:3:3", message: expect.stringContaining("kind: expected a non-empty string") },
    ]);
  });

  test("tool files that are not objects are skipped: Chart.yaml, berth's own config and rules", async () => {
    const { snapshot } = repo({
      "app/Chart.yaml": "apiVersion: v2\nname: web\nversion: 1.0.0\n",
      "app/berth.yaml": "apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {}\n",
      "app/rules.yaml": "apiVersion: berth.dev/v1alpha1\nkind: Rules\nsync: []\n",
      "app/c.yaml": `${cm("c")}---\n# only a comment\n---\n- a\n- b\n---\njust text\n`,
    });
    const result = await render(snapshot, "app");
    expect(result.errors).toEqual([]);
    expect(result.skipped.map((s) => `${s.path} ${s.message}`)).toEqual([
      "app/Chart.yaml#0 a Helm chart's Chart.yaml: not applied",
      "app/berth.yaml#0 berth's own configuration file: not applied",
      "app/c.yaml#2 not a Kubernetes object: expected a mapping, got a list",
      "app/c.yaml#3 not a Kubernetes object: expected a mapping, got string",
      "app/rules.yaml#0 berth's own rules file: not applied",
    ]);
  });

  test("drops status and server-set metadata, keeps everything else", async () => {
    const { snapshot } = repo({
      "app/x.yaml": `${cm("x", "  creationTimestamp: null\n  resourceVersion: '5'\n  uid: abc\n  labels: { a: b }\ndata: { mode: 0644, on: yes }\nstatus: { phase: Active }\n")}`,
    });
    const result = await render(snapshot, "app");
    expect(result.objects[0]?.object).toEqual({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "x", labels: { a: "b" } },
      data: { mode: 420, on: "yes" },
    });
  });

  test("a name or namespace that is not a string is an error naming the document", async () => {
    const { snapshot } = repo({
      "app/x.yaml": `${cm("ok")}---\n${cm("1234")}---\n${cm("n", "  namespace: [a]\n")}`,
    });
    const result = await render(snapshot, "app");
    expect(result.errors).toEqual([
      { path: "app/x.yaml:9:3", message: expect.stringContaining("document 1: metadata.name") },
      { path: "app/x.yaml:15:3", message: expect.stringContaining("document 2: metadata.namespace") },
    ]);
  });

  test("malformed YAML and JSON are errors with file, line and column", async () => {
    const { snapshot } = repo({
      "app/bad.yaml": `${cm("a")}---\napiVersion: v1\nkind: [ConfigMap\nmetadata: {}\n`,
      "app/bad.json": '{\n  "apiVersion": "v1",\n  "kind": oops\n}',
      "app/dup.yaml": "a: 1\na: 2\n",
    });
    const result = await render(snapshot, "app");
    const paths = result.errors.map((e) => e.path);
    expect(paths).toEqual([
      "app/bad.json:3:11",
      expect.stringMatching(/^app\/bad\.yaml:\d+:\d+$/),
      "app/dup.yaml:2:1",
    ]);
    expect(result.errors[1]?.path).toMatch(/^app\/bad\.yaml:(7|8):/);
    expect(result.errors[0]?.message).toContain("invalid JSON");
  });

  test("a file over the size limit is an error", async () => {
    const { snapshot } = repo({ "app/big.yaml": cm("big", `data:\n  x: "${"a".repeat(2000)}"\n`) });
    const result = await render(snapshot, "app", { limits: { maxFileBytes: 1000 } });
    expect(result.objects).toEqual([]);
    expect(result.errors).toEqual([
      { path: "app/big.yaml", message: expect.stringMatching(/over the limit of 1000/) },
    ]);
    expect((await render(snapshot, "app")).errors).toEqual([]);
  });

  test("more documents than the limit is an error", async () => {
    const docs = Array.from({ length: 6 }, (_, i) => cm(`c${i}`)).join("---\n");
    const { snapshot } = repo({ "app/a.yaml": docs, "app/b.yaml": cm("b") });
    expect((await render(snapshot, "app", { limits: { maxDocuments: 7 } })).errors).toEqual([]);
    const result = await render(snapshot, "app", { limits: { maxDocuments: 6 } });
    expect(result.errors).toEqual([
      { path: "app/b.yaml", message: expect.stringContaining("too many documents") },
    ]);
    const within = await render(snapshot, "app", { limits: { maxDocuments: 3 } });
    expect(within.errors[0]?.path).toBe("app/a.yaml");
  });

  test("refuses a billion-laughs alias bomb quickly", async () => {
    let bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n';
    for (let i = 1; i < 9; i++) {
      const prev = String.fromCharCode(96 + i);
      const next = String.fromCharCode(97 + i);
      bomb += `${next}: &${next} [${Array(9).fill(`*${prev}`).join(",")}]\n`;
    }
    const { snapshot } = repo({
      "app/bomb.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: x }\ndata:\n  ${bomb.replaceAll("\n", "\n  ")}`,
    });
    const started = performance.now();
    const result = await render(snapshot, "app");
    expect(performance.now() - started).toBeLessThan(1000);
    expect(result.objects).toEqual([]);
    expect(result.errors).toEqual([
      { path: expect.stringMatching(/^app\/bomb\.yaml/), message: expect.stringContaining("alias") },
    ]);
  });

  test("refuses symlinks that leave the repository, relative or absolute", async () => {
    const { snapshot } = repo({
      "app/up.yaml": { link: "../../outside.yaml" },
      "app/dir": { link: "../.." },
      "app/abs.yaml": { link: "/etc/hostname" },
      "app/ok.yaml": cm("ok"),
    });
    const result = await render(snapshot, "app");
    expect(result.errors).toEqual([
      { path: "app/abs.yaml", message: expect.stringContaining('"/etc/hostname" is absolute') },
      { path: "app/dir", message: expect.stringContaining('"../.." leaves the repository') },
      { path: "app/up.yaml", message: expect.stringContaining('"../../outside.yaml" leaves the repository') },
    ]);
  });

  test("follows symlinks to files and directories inside the repository, and stops loops", async () => {
    const { snapshot } = repo({
      "shared/base.yaml": cm("base"),
      "shared/more/m.yaml": cm("more"),
      "app/base.yaml": { link: "../shared/base.yaml" },
      "app/more": { link: "../shared/more" },
      "app/self": { link: "." },
      "app/hop.yaml": { link: "chain.yaml" },
      "app/chain.yaml": { link: "hop.yaml" },
    });
    const result = await render(snapshot, "app");
    expect(result.objects.map((o) => `${o.source} ${o.ref.name}`)).toEqual([
      "app/base.yaml#0 base",
      "app/more/m.yaml#0 more",
    ]);
    expect(result.errors.map((e) => e.path)).toEqual(["app/chain.yaml", "app/hop.yaml", "app/self"]);
    expect(result.errors[2]?.message).toContain("loop");
  });

  test("an app path that is missing or not a directory is an error naming it", async () => {
    const { snapshot } = repo({ "app/a.yaml": cm("a") });
    expect((await render(snapshot, "nope")).errors).toEqual([
      { path: "nope", message: "app path does not exist" },
    ]);
    expect((await render(snapshot, "app/a.yaml")).errors).toEqual([
      { path: "app/a.yaml", message: expect.stringContaining("not a directory") },
    ]);
    expect((await render(snapshot, "../x")).errors[0]?.message).toContain("inside the repository");
    expect((await render(snapshot, "./app/")).objects).toHaveLength(1);
  });

  test("a submodule is skipped with the reason", async () => {
    const { snapshot } = repo({
      "app/vendor/.git": "gitdir: ../../.git/modules/vendor\n",
      "app/vendor/x.yaml": cm("v"),
    });
    const result = await render(snapshot, "app");
    expect(result.objects).toEqual([]);
    expect(result.skipped).toEqual([{ path: "app/vendor", message: expect.stringContaining("submodule") }]);
  });

  test("the digest depends on the objects, not on files or their order", async () => {
    const one = repo({ "app/all.yaml": `${cm("a")}---\n${cm("b")}` });
    const two = repo({
      "app/z.yaml": cm("a"),
      "app/y/b.json": JSON.stringify({ metadata: { name: "b" }, kind: "ConfigMap", apiVersion: "v1" }),
    });
    const changed = repo({ "app/all.yaml": `${cm("a")}---\n${cm("b", "data: { k: v }\n")}` });
    const [r1, r2, r3] = await Promise.all([
      render(one.snapshot, "app"),
      render(two.snapshot, "app"),
      render(changed.snapshot, "app"),
    ]);
    expect(r2.objects.map((o) => o.ref.name)).toEqual(["b", "a"]);
    expect(r1.digest).toBe(r2.digest);
    expect(r3.digest).not.toBe(r1.digest);
  });
});

describe("FsSnapshot", () => {
  test("reports symlinks with lstat and reads back their target", async () => {
    const { snapshot } = repo({ "a.yaml": "x: 1\n", "l.yaml": { link: "a.yaml" }, "d/e.yaml": "" });
    expect(await snapshot.readDir("")).toEqual([
      { name: "a.yaml", path: "a.yaml", type: "blob" },
      { name: "d", path: "d", type: "tree" },
      { name: "l.yaml", path: "l.yaml", type: "symlink" },
    ]);
    expect(new TextDecoder().decode(await snapshot.readBlob("l.yaml"))).toBe("a.yaml");
    expect(await snapshot.stat("d/e.yaml")).toEqual({ name: "e.yaml", path: "d/e.yaml", type: "blob" });
    expect(await snapshot.stat("../x")).toBeUndefined();
    await expect(snapshot.readBlob("missing.yaml")).rejects.toThrow("missing.yaml");
    await expect(snapshot.readDir("a.yaml")).rejects.toThrow("a.yaml: not a directory");
  });

  test("does not pass through symlinked directories on a lookup", async () => {
    const { snapshot } = repo({ "real/x.yaml": "a: 1\n", link: { link: "real" } });
    expect(await snapshot.stat("link/x.yaml")).toBeUndefined();
    expect(await snapshot.stat("real/x.yaml")).toBeDefined();
  });
});

/** A ConfigMap with `n` keys (150k keys ≈ 1.8 MB, the size that stalled the agent for minutes). */
function hugeConfigMap(n: number, extra = ""): string {
  const lines = ["apiVersion: v1", "kind: ConfigMap", "metadata:", "  name: huge", "data:"];
  for (let i = 0; i < n; i++) lines.push(`  k${i}: v`);
  return `${lines.join("\n")}\n${extra}`;
}

const FILE_LIMITS = { ...DEFAULT_RENDER_LIMITS, maxFileBytes: 4 * 1024 * 1024, budget: 10_000 };

describe("reading ahead", () => {
  // 40 files of 3 documents each.
  const name = (i: number) => `app/f${String(i).padStart(2, "0")}.yaml`;
  const tree = Object.fromEntries(
    Array.from({ length: 40 }, (_, i) => [name(i), [0, 1, 2].map((d) => cm(`c${i}-${d}`)).join("---\n")]),
  );
  /** Counts reads in flight; its parser makes the later files of each window finish first. */
  function setup() {
    const { root } = repo(tree);
    const seen = { inFlight: 0, most: 0, budgets: new Map<string, number[]>() };
    class Counting extends FsSnapshot {
      override async readBlob(path: string): Promise<Uint8Array> {
        seen.most = Math.max(seen.most, ++seen.inFlight);
        try {
          return await super.readBlob(path);
        } finally {
          seen.inFlight -= 1;
        }
      }
    }
    const parser: FileParser = async (path, bytes, limits) => {
      seen.budgets.set(path, [...(seen.budgets.get(path) ?? []), limits.budget]);
      const i = Number(/f(\d+)/.exec(path)?.[1]);
      await new Promise((r) => setTimeout(r, 2 * (READ_AHEAD - (i % READ_AHEAD))));
      return parseInline(path, bytes, limits);
    };
    return { snapshot: new Counting(root), parser, seen };
  }

  test("reads several files at once and keeps file order", async () => {
    const { snapshot, parser, seen } = setup();
    const result = await render(snapshot, "app", { parser });
    expect(result.errors).toEqual([]);
    expect(result.objects.map((o) => o.ref.name)).toEqual(
      Array.from({ length: 40 }, (_, i) => [0, 1, 2].map((d) => `c${i}-${d}`)).flat(),
    );
    expect(result.digest).toBe((await render(new FsSnapshot(snapshot.rootDir), "app")).digest);
    expect(seen.most).toBeGreaterThan(1);
    expect(seen.most).toBeLessThanOrEqual(READ_AHEAD + 1);
  });

  test("a file read ahead with more budget than was left is parsed again: the limit falls where it would one at a time", async () => {
    const { snapshot, parser, seen } = setup();
    // 16 files fit in 50 documents (48); the 17th has 3 documents and 2 left.
    const result = await render(snapshot, "app", { parser, limits: { maxDocuments: 50 } });
    expect(result.objects).toHaveLength(48);
    expect(result.objects.at(-1)?.ref.name).toBe("c15-2");
    expect(result.errors).toEqual([
      {
        path: expect.stringMatching(/^app\/f16\.yaml/),
        message: "too many documents: the limit is 50 per app (render.maxDocuments)",
      },
    ]);
    // Started with the budget left before the file the render was at, then parsed again with its own.
    expect(seen.budgets.get(name(16))?.at(-1)).toBe(2);
    expect(seen.budgets.get(name(16))?.length).toBe(2);
  });
});

describe("huge files", () => {
  test("a 150k-key ConfigMap parses (linear, not quadratic), and a duplicate key in it is found with its line", async () => {
    const { snapshot } = repo({ "app/huge.yaml": hugeConfigMap(150_000) });
    const started = performance.now();
    const result = await render(snapshot, "app");
    // Generous: quadratic duplicate-key checks took over 120 s here; linear parsing takes about a second.
    expect(performance.now() - started).toBeLessThan(60_000);
    expect(result.errors).toEqual([]);
    expect(Object.keys(result.objects[0]?.object.data as object)).toHaveLength(150_000);

    const dup = repo({ "app/huge.yaml": hugeConfigMap(150_000, "  k7: again\n") });
    expect((await render(dup.snapshot, "app")).errors).toEqual([
      { path: "app/huge.yaml:150006:3", message: "invalid YAML: Map keys must be unique" },
    ]);
  }, 120_000);

  test("the parse pool parses in a worker: the event loop keeps running during a huge parse", async () => {
    const pool = new ParsePool();
    try {
      const bytes = new TextEncoder().encode(hugeConfigMap(150_000));
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      const parsed = await pool.parse("huge.yaml", bytes, FILE_LIMITS);
      clearInterval(timer);
      expect(pool.fallback).toBeUndefined();
      expect(parsed.errors).toEqual([]);
      expect(Object.keys(parsed.objects[0]?.object.data as object)).toHaveLength(150_000);
      // Parsing in this thread runs to the end in one go: no timer could fire before it resolved.
      expect(ticks).toBeGreaterThan(3);
      const inline = await parseInline("huge.yaml", bytes, FILE_LIMITS);
      expect(parsed).toEqual(inline);
    } finally {
      await pool.close();
    }
  }, 120_000);

  test("files of at most INLINE_BYTES are parsed in this thread, larger ones in a worker", async () => {
    const pool = new ParsePool({ size: 1 });
    const workers = () => (pool as unknown as { slots: unknown[] }).slots.length;
    try {
      const small = new TextEncoder().encode(cm("a", `data:\n  k: "${"x".repeat(INLINE_BYTES - 80)}"\n`));
      expect(small.byteLength).toBeLessThanOrEqual(INLINE_BYTES);
      expect(await pool.parse("a.yaml", small, FILE_LIMITS)).toEqual(
        await parseInline("a.yaml", small, FILE_LIMITS),
      );
      expect(workers()).toBe(0);
      const large = new TextEncoder().encode(cm("b", `data:\n  k: "${"x".repeat(INLINE_BYTES)}"\n`));
      expect(await pool.parse("b.yaml", large, FILE_LIMITS)).toEqual(
        await parseInline("b.yaml", large, FILE_LIMITS),
      );
      expect(workers()).toBe(1);
      expect(pool.fallback).toBeUndefined();
      // Over the size limit: refused here, not copied to a worker first.
      const fresh = new ParsePool({ size: 1 });
      const over = await fresh.parse("c.yaml", large, { ...FILE_LIMITS, maxFileBytes: INLINE_BYTES });
      expect(over.errors).toEqual([{ path: "c.yaml", message: expect.stringContaining("over the limit") }]);
      expect((fresh as unknown as { slots: unknown[] }).slots).toHaveLength(0);
      await fresh.close();
    } finally {
      await pool.close();
    }
  });

  test("an idle worker is stopped after idleMs; the next parse starts one again", async () => {
    const pool = new ParsePool({ size: 1, idleMs: 100, inlineBytes: -1 });
    const workers = () => (pool as unknown as { slots: unknown[] }).slots.length;
    try {
      const first = await pool.parse("a.yaml", new TextEncoder().encode(cm("a")), FILE_LIMITS);
      expect(first.objects.map((o) => o.source)).toEqual(["a.yaml#0"]);
      expect(workers()).toBe(1);
      await new Promise((r) => setTimeout(r, 400));
      expect(workers()).toBe(0);
      const second = await pool.parse("b.yaml", new TextEncoder().encode(cm("b")), FILE_LIMITS);
      expect(second.objects.map((o) => o.source)).toEqual(["b.yaml#0"]);
      expect(pool.fallback).toBeUndefined();
    } finally {
      await pool.close();
    }
  }, 60_000);

  test("an aborted parse stops its worker at once; the next parse gets a new one", async () => {
    const pool = new ParsePool({ size: 1 });
    try {
      const bytes = new TextEncoder().encode(hugeConfigMap(150_000));
      const abort = new AbortController();
      const waiting = pool.parse("huge.yaml", bytes, FILE_LIMITS, abort.signal);
      setTimeout(() => abort.abort(new Error("stopping")), 50);
      await expect(waiting).rejects.toThrow("stopping");
      const small = await pool.parse("a.yaml", new TextEncoder().encode(cm("a")), FILE_LIMITS);
      expect(small.objects.map((o) => o.source)).toEqual(["a.yaml#0"]);
    } finally {
      await pool.close();
    }
  }, 60_000);

  test("when no worker can start, files are parsed in this thread and the reason is given", async () => {
    const reasons: string[] = [];
    const pool = new ParsePool({
      inlineBytes: -1,
      workerUrl: new URL("file:///nonexistent/parse-worker.js"),
      onFallback: (why) => reasons.push(why),
    });
    try {
      const done = await pool.parse("a.yaml", new TextEncoder().encode(cm("a")), FILE_LIMITS);
      expect(done.objects.map((o) => o.source)).toEqual(["a.yaml#0"]);
      expect(reasons).toEqual([expect.stringContaining("could not start")]);
      expect(pool.fallback).toContain("could not start");
    } finally {
      await pool.close();
    }
  });
});

describe("moving large containers between threads", () => {
  test("detached pieces put back give the same object, key order, __proto__ keys and non-JSON numbers kept", async () => {
    const data: Record<string, unknown> = {};
    for (let i = 0; i < 10_000; i++) data[`k${i}`] = i % 3 === 0 ? { n: i } : `v${i}`;
    Object.defineProperty(data, "__proto__", {
      value: "x",
      enumerable: true,
      configurable: true,
      writable: true,
    });
    data.nan = Number.NaN;
    const list = Array.from({ length: 9_000 }, (_, i) => ({ i, inner: i === 5 ? Array(5_000).fill(1) : [] }));
    const original = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x" }, data, list };
    const copy = structuredClone(original);
    const detached = detachLarge([copy]);
    expect(detached.map((d) => d.path)).toEqual([["list"], ["list", 5, "inner"], ["data"]]);
    expect(Object.keys(copy.data)).toHaveLength(0);
    const wire = structuredClone({ objects: [copy], detached });
    await attachLarge(wire.objects, wire.detached);
    expect(wire.objects[0]).toEqual(original);
    expect(Object.keys(wire.objects[0]?.data as object)).toEqual(Object.keys(original.data));
    expect(Object.getPrototypeOf(wire.objects[0]?.data)).toBe(Object.prototype);
  });
});

describe("the fast path for simple YAML", () => {
  const KEYS = [
    "a",
    "b",
    "data",
    "toString",
    "constructor",
    "x.y",
    "a/b",
    "k-1",
    "_k",
    "true",
    "1a",
    "__proto__",
    "<<",
    "k k",
    '"q"',
    "y",
    "No",
  ];
  const VALUES = [
    "v",
    "0644",
    "0o17",
    "0x1F",
    "1e3",
    "1.5",
    ".inf",
    "-.Inf",
    ".nan",
    "-0",
    "+1",
    "007",
    "09",
    "1_000",
    "12345678901234567890",
    "true",
    "True",
    "TRUE",
    "yes",
    "on",
    "~",
    "null",
    "Null",
    "NULL",
    "false",
    "a#b",
    "a #b",
    "a: b",
    "a:b",
    "a:",
    "-a",
    "- a",
    "-",
    "?a",
    "? a",
    ":a",
    "a,b",
    "[a",
    "{a",
    "a]",
    "@a",
    "%a",
    "`a",
    "!a",
    "&a",
    "*a",
    "|",
    ">",
    "'q'",
    "'it''s'",
    "'bad'x",
    '"q"',
    '"a\\nb"',
    '"\\u00e9"',
    '"\\x41"',
    '"a"b',
    '"tab\\t"',
    "  padded  ",
    "é",
    "a  b",
    "1.0.0",
    "2024-01-01",
    "0b101",
  ];
  /** A random document: nested maps, some values from the lists above, odd indents and comments now and then. */
  function randomDoc(seed: number): string {
    let s = seed;
    const rnd = (n: number) => {
      s = (s * 1103515245 + 12345) & 0x7fffffff;
      return s % n;
    };
    const lines: string[] = [];
    const walk = (indent: number, depth: number) => {
      const n = 1 + rnd(4);
      for (let i = 0; i < n; i++) {
        const key = rnd(3) === 0 ? (KEYS[rnd(KEYS.length)] as string) : `k${rnd(1000)}`;
        const pad = " ".repeat(indent + (rnd(40) === 0 ? 1 : 0));
        if (rnd(15) === 0) lines.push(`${pad}# comment`);
        if (rnd(20) === 0) lines.push("");
        if (depth < 3 && rnd(4) === 0) {
          lines.push(`${pad}${key}:${rnd(10) === 0 ? "   " : ""}`);
          if (rnd(10) !== 0) walk(indent + 2 + 2 * rnd(2), depth + 1);
        } else lines.push(`${pad}${key}: ${VALUES[rnd(VALUES.length)]}`);
      }
    };
    walk(0, 0);
    return `${lines.join("\n")}${rnd(2) ? "\n" : ""}`;
  }

  test("reads exactly what the yaml package reads, or leaves the text to it", () => {
    const limits = { documentBudget: 10, maxAliases: 100, maxDepth: 200 };
    let fast = 0;
    for (let seed = 1; seed <= 3000; seed++) {
      const text = randomDoc(seed);
      const value = fastParseYaml(text, SCALAR_TAGS);
      if (value === undefined) continue;
      fast++;
      const full = parseYamlWithPackage(text, limits);
      expect(Array.isArray(full), text).toBe(true);
      const docs = full as Array<{ value: unknown }>;
      expect(docs.length, text).toBe(1);
      expect(value, text).toEqual(docs[0]?.value as Record<string, unknown>);
      // Same key order, and __proto__-like names as own properties in both.
      expect(JSON.stringify(value), text).toBe(JSON.stringify(docs[0]?.value));
    }
    // The generator must exercise the fast path, not only its refusals.
    expect(fast).toBeGreaterThan(300);
  });

  test("a small file reads the same as with the yaml package, and an error in it is found at its line", async () => {
    const limits = { documentBudget: 10, maxAliases: 100, maxDepth: 200 };
    const small = cm("small", 'data:\n  a: "1"\n');
    const parsed = parseYamlFile(small, limits) as Array<{ value: unknown; at?: unknown }>;
    expect(parsed[0]?.value).toEqual((parseYamlWithPackage(small, limits) as typeof parsed)[0]?.value);
    const { snapshot } = repo({
      "app/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  namespace: x\n",
    });
    expect((await render(snapshot, "app")).errors).toEqual([
      { path: "app/bad.yaml:3:1", message: expect.stringContaining("metadata.name") },
    ]);
  });

  test("a big file takes it; a big file outside its shape gets the same answer from the yaml package", () => {
    const limits = { documentBudget: 10, maxAliases: 100, maxDepth: 200 };
    const big = hugeConfigMap(10_000);
    expect(fastParseYaml(big, SCALAR_TAGS)).toBeDefined();
    expect(parseYamlFile(big, limits)).toEqual(
      (parseYamlWithPackage(big, limits) as Array<{ index: number; value: unknown }>).map((d) => ({
        ...d,
        at: expect.any(Function),
      })),
    );
    const withList = `${big}list:\n  - a\n`;
    expect(fastParseYaml(withList, SCALAR_TAGS)).toBeUndefined();
    expect((parseYamlFile(withList, limits) as Array<{ value: { list: unknown } }>)[0]?.value.list).toEqual([
      "a",
    ]);
  });
});

describe("the rendered digest", () => {
  const secret = (value: string, keys = "password") =>
    `apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: ns}\nstringData:\n${keys
      .split(",")
      .map((k) => `  ${k}: ${value}`)
      .join("\n")}\n`;

  test("holds no Secret value: a guess cannot be checked against it", async () => {
    const a = await render(repo({ "s.yaml": secret("hunter2") }).snapshot, "");
    const b = await render(repo({ "s.yaml": secret("correct-horse") }).snapshot, "");
    expect(a.errors).toEqual([]);
    expect(a.digest).toBe(b.digest);
    expect(digestOfObjects(a.objects.map((o) => o.object))).toBe(a.digest);
  });

  test("still changes with a Secret's keys and with every other object", async () => {
    const one = await render(repo({ "s.yaml": secret("x") }).snapshot, "");
    const two = await render(repo({ "s.yaml": secret("x", "password,user") }).snapshot, "");
    const three = await render(repo({ "s.yaml": secret("x"), "c.yaml": cm("c") }).snapshot, "");
    expect(new Set([one.digest, two.digest, three.digest]).size).toBe(3);
  });
});
