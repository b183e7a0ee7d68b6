/**
 * `sources:` and `generate:` in berth.yaml: named sources beside the top-level one, apps naming their source,
 * generator globs and templates, and what a directory listing expands to. Bad inputs are ConfigErrors naming
 * the file, the field and what was expected; `berth validate` exits 2 on them and lists generated apps.
 */
import { describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cli } from "../../agent/cli/cli.ts";
import { parseConfig } from "../../agent/config/config.ts";
import { expandGenerators, globRegExp } from "../../agent/config/generate.ts";
import { ConfigError } from "../../agent/config/problems.ts";
import { FsSnapshot } from "../../agent/render/fs-snapshot.ts";
import { configErrorOf } from "../support/config.ts";

const HEAD = "apiVersion: berth.dev/v1alpha1\nkind: Agent\n";
const FILE = "/etc/berth/berth.yaml";

const errorOf = (yaml: string): string => configErrorOf(yaml, FILE, ConfigError);

/** A checkout with these directories (each holding one file). */
function tree(dirs: string[]): string {
  const root = mkdtempSync(join(tmpdir(), "berth-gen-"));
  for (const d of dirs) {
    mkdirSync(join(root, d), { recursive: true });
    writeFileSync(join(root, d, "cm.yaml"), "");
  }
  return root;
}

describe("sources", () => {
  test("each Git source may name its own forge for commit statuses; the default's is `status` or `source.status`", () => {
    const forge = (repo: string) =>
      `{provider: gitea, url: "https://gitea.example/org/${repo}", tokenFile: forge.token}`;
    const c = parseConfig(
      `${HEAD}source: {url: "https://git.example/infra.git"}\nsources:\n  apps: {url: "https://git.example/apps.git", status: ${forge("apps")}}\napps: [{name: web, path: web, source: apps}]\nstatus: ${forge("infra")}\n`,
      FILE,
    );
    expect(c.status?.url).toBe("https://gitea.example/org/infra");
    expect(c.sources.apps).toMatchObject({
      status: {
        provider: "gitea",
        url: "https://gitea.example/org/apps",
        tokenFile: "/etc/berth/forge.token",
        timeout: 10_000,
      },
    });
    const viaSource = parseConfig(
      `${HEAD}source: {url: "https://git.example/infra.git", status: ${forge("infra")}}\napps: [{name: web, path: web}]\n`,
      FILE,
    );
    expect(viaSource.status?.url).toBe("https://gitea.example/org/infra");
    expect(
      errorOf(
        `${HEAD}source: {url: "https://git.example/infra.git", status: ${forge("infra")}}\napps: [{name: web, path: web}]\nstatus: ${forge("infra")}\n`,
      ),
    ).toContain("source.status: the default source's forge is already set by the top-level `status`");
    expect(
      errorOf(
        `${HEAD}source: {url: "https://git.example/infra.git"}\nsources:\n  apps: {url: "https://git.example/apps.git", status: {provider: forgejo, url: "https://f.example/o/r", tokenFile: t}}\napps: [{name: web, path: web}]\n`,
      ),
    ).toContain("sources.apps.status.provider");
  });

  test("named sources beside the top-level one; apps pick theirs, default is `default`", () => {
    const c = parseConfig(
      `${HEAD}source: {url: https://git.example/a.git}\nsources:\n  infra: {url: https://git.example/infra.git, ref: prod, interval: 5m, webhook: {secretFile: hook}}\napps:\n  - {name: a, path: a}\n  - {name: b, path: b, source: infra, dependsOn: [a]}\n`,
      FILE,
    );
    expect(Object.keys(c.sources)).toEqual(["default", "infra"]);
    expect(c.sources.infra).toEqual({
      url: "https://git.example/infra.git",
      ref: "prod",
      interval: 300_000,
      timeout: 60_000,
      webhook: { secretFile: "/etc/berth/hook" },
    });
    expect(c.apps.map((a) => [a.name, a.source, a.interval])).toEqual([
      ["a", "default", 60_000],
      ["b", "infra", 300_000],
    ]);
  });

  test("an unknown source, a missing default, a clash with `default` and per-source checks name the field", () => {
    const two = `${HEAD}sources:\n  infra: {url: https://git.example/infra.git}\n`;
    expect(errorOf(`${two}apps:\n  - {name: a, path: a, source: infar}\n`)).toContain(
      `${FILE}: apps[0].source: app "a": no source is named "infar" (expected one of infra)`,
    );
    expect(errorOf(`${two}apps:\n  - {name: a, path: a}\n`)).toContain(
      `${FILE}: apps[0]: app "a" names no source and there is no top-level \`source\` to default to`,
    );
    expect(
      errorOf(
        `${HEAD}source: {url: https://git.example/a.git}\nsources:\n  default: {url: https://git.example/b.git}\napps: []\n`,
      ),
    ).toContain("sources.default: the top-level `source` is the source named default");
    expect(errorOf(`${HEAD}apps: []\n`)).toContain("expected `source` (one Git repository) or `sources`");
    expect(errorOf(`${HEAD}sources:\n  infra: {url: "ftp://x/y"}\napps: []\n`)).toContain(
      'sources.infra.url: expected an http or https URL, got scheme "ftp"',
    );
    expect(errorOf(`${HEAD}sources:\n  infra: {url: https://x/y, auth: {token: abc}}\napps: []\n`)).toContain(
      "sources.infra.auth.token: plaintext secrets are not allowed",
    );
    expect(errorOf(`${HEAD}sources:\n  Infra: {url: https://x/y}\napps: []\n`)).toContain("sources");
  });
});

describe("generate", () => {
  const GEN = (gen: string, apps = "[]") =>
    `${HEAD}sources:\n  infra: {url: https://git.example/infra.git}\napps: ${apps}\ngenerate:\n  - ${gen}\n`;

  test("bad globs, an unknown source, unknown placeholders and template fields name generator and field", () => {
    const T = 'template: {name: "{{dir}}", path: "{{path}}"}';
    // [the generator's source, dirs, exclude … and template, the error it gives]
    const cases: Array<[string, string]> = [
      [`source: infra, dirs: "apps/[ab", ${T}`, 'generate[0].dirs: unclosed "[" in "apps/[ab"'],
      [`source: infra, dirs: "../x/*", ${T}`, "generate[0].dirs: expected path segments without"],
      [
        `source: infra, dirs: "a/*", exclude: ["/abs"], ${T}`,
        "generate[0].exclude[0]: expected a glob relative to the repository root",
      ],
      [`source: nope, dirs: "a/*", ${T}`, 'generate[0].source: no source is named "nope"'],
      [
        'source: infra, dirs: "a/*", template: {name: "{{name}}", path: "{{path}}"}',
        "generate[0].template.name: unknown placeholder {{name}}",
      ],
      [
        'source: infra, dirs: "a/*", template: {name: "fixed", path: "{{path}}"}',
        "generate[0].template.name: expected a name using {{dir}}",
      ],
      [
        'source: infra, dirs: "a/*", template: {name: "{{dir}}", path: "{{path}}", timout: 30s}',
        "generate[0].template.timout: unknown field",
      ],
      [
        'source: infra, dirs: "a/*", template: {path: "{{path}}"}',
        "generate[0].template.name: required field is missing",
      ],
    ];
    for (const [gen, error] of cases) expect(errorOf(GEN(`{${gen}}`))).toContain(error);
  });

  test("globs match directory paths: * within a segment, ** across, [set], exclude", () => {
    expect(globRegExp("apps/*").test("apps/web")).toBe(true);
    expect(globRegExp("apps/*").test("apps/web/x")).toBe(false);
    expect(globRegExp("apps/**").test("apps/web/x")).toBe(true);
    expect(globRegExp("**/base").test("a/b/base")).toBe(true);
    expect(globRegExp("**/base").test("base")).toBe(true);
    expect(globRegExp("env-[ab]").test("env-a")).toBe(true);
    expect(globRegExp("env-[!ab]").test("env-a")).toBe(false);
    expect(globRegExp("a.b/*").test("aXb/c")).toBe(false);
  });

  test("expands a listing into apps; a directory's invalid name or a collision names generator and directory", async () => {
    const root = tree(["apps/web", "apps/api", "apps/skip", "apps/web/nested", "other/x"]);
    const c = parseConfig(
      GEN(
        `{source: infra, dirs: "apps/*", exclude: ["apps/sk*"], template: {name: "{{dir}}", path: "{{path}}", namespace: "{{dir}}", dependsOn: [core]}}`,
        "[{name: core, path: core, source: infra}]",
      ),
      FILE,
    );
    const snap = new FsSnapshot(root);
    const apps = await expandGenerators(c, (s) => (s === "infra" ? snap : undefined));
    expect(apps.map((a) => [a.name, a.path, a.namespace, a.source, a.dependsOn, a.generated])).toEqual([
      ["api", "apps/api", "api", "infra", ["core"], { index: 0, dir: "apps/api" }],
      ["web", "apps/web", "web", "infra", ["core"], { index: 0, dir: "apps/web" }],
    ]);

    const bad = tree(["apps/Web_1"]);
    const err = await expandGenerators(c, () => new FsSnapshot(bad)).catch((e: Error) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain(
      `${FILE}: generate[0].template.name: directory apps/Web_1: expected`,
    );

    const clash = parseConfig(
      GEN(
        `{source: infra, dirs: "apps/*", template: {name: "{{dir}}", path: "{{path}}"}}`,
        "[{name: web, path: web, source: infra}]",
      ),
      FILE,
    );
    const collided = await expandGenerators(clash, () => snap).catch((e: Error) => e);
    expect((collided as Error).message).toContain(
      `${FILE}: generate[0].template.name: "web" from generate[0] directory apps/web is also the name of apps[0]`,
    );
  });

  test("a static app may depend on a generated one: a name a template can make passes, and must exist once expanded", async () => {
    const gen = `{source: infra, dirs: "apps/*", template: {name: "gen-{{dir}}", path: "{{path}}"}}`;
    const c = parseConfig(
      GEN(gen, "[{name: after, path: after, source: infra, dependsOn: [gen-web]}]"),
      FILE,
    );
    expect(c.apps[0]?.dependsOn).toEqual(["gen-web"]);
    const apps = await expandGenerators(c, () => new FsSnapshot(tree(["apps/web"])));
    expect(apps.map((a) => a.name)).toEqual(["gen-web"]);

    // Once the directory is gone, so is the app it depended on: the expansion says which dependency.
    const gone = await expandGenerators(c, () => new FsSnapshot(tree(["apps/api"]))).catch((e: Error) => e);
    expect(gone).toBeInstanceOf(ConfigError);
    expect((gone as Error).message).toContain(
      `${FILE}: apps[0].dependsOn[0]: no app is named "gen-web": no generator made one from the source's directories`,
    );

    // A name no template can make is a typo, found when berth.yaml is read.
    expect(() =>
      parseConfig(GEN(gen, "[{name: after, path: after, source: infra, dependsOn: [web]}]"), FILE),
    ).toThrow(`apps[0].dependsOn[0]: no app is named "web" and no generator's template.name can make it`);
  });

  test("berth validate --dir lists the generated apps; a collision is exit 2 naming both", async () => {
    const root = tree(["apps/web", "apps/api"]);
    const dir = mkdtempSync(join(tmpdir(), "berth-gen-cfg-"));
    const config = join(dir, "berth.yaml");
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (s: string) => out.push(s), err: (s: string) => err.push(s), tty: false };
    writeFileSync(
      config,
      GEN(`{source: infra, dirs: "apps/*", template: {name: "{{dir}}", path: "{{path}}"}}`),
    );
    expect(await cli(["validate", "--config", config, "--dir", root], io)).toBe(0);
    expect(out.join("")).toContain(
      "generate[0] (source infra, dirs apps/*): 2 apps: api (apps/api), web (apps/web)",
    );
    writeFileSync(
      config,
      GEN(
        `{source: infra, dirs: "apps/*", template: {name: "{{dir}}", path: "{{path}}"}}`,
        "[{name: api, path: x, source: infra}]",
      ),
    );
    err.length = 0;
    expect(await cli(["validate", "--config", config, "--dir", root], io)).toBe(2);
    expect(err.join("")).toContain(
      'generate[0].template.name: "api" from generate[0] directory apps/api is also the name of apps[0]',
    );
    writeFileSync(
      config,
      `${HEAD}sources:\n  infra: {url: https://x/y}\napps:\n  - {name: a, path: a, source: nope}\n`,
    );
    err.length = 0;
    expect(await cli(["validate", "--config", config], io)).toBe(2);
    expect(err.join("")).toContain('apps[0].source: app "a": no source is named "nope"');
  });

  test("berth validate -o json lists each generator's apps beside the configured ones", async () => {
    const root = tree(["apps/web", "apps/api"]);
    const config = join(mkdtempSync(join(tmpdir(), "berth-gen-cfg-")), "berth.yaml");
    writeFileSync(
      config,
      GEN(
        `{source: infra, dirs: "apps/*", template: {name: "{{dir}}", path: "{{path}}"}}`,
        "[{name: core, path: apps/web, source: infra}]",
      ),
    );
    const out: string[] = [];
    const io = { out: (s: string) => out.push(s), err: () => {}, tty: false };
    expect(await cli(["validate", "--config", config, "--dir", root, "-o", "json"], io)).toBe(0);
    const report = JSON.parse(out.join(""));
    expect(report.apps.map((a: { name: string }) => a.name)).toEqual(["core", "api", "web"]);
    expect(report.generate).toEqual([
      {
        index: 0,
        source: "infra",
        dirs: "apps/*",
        apps: [
          { name: "api", path: "apps/api" },
          { name: "web", path: "apps/web" },
        ],
      },
    ]);
  });

  test("berth status shows SOURCE only with several sources, in the table, -o wide and -o json", async () => {
    const dir = mkdtempSync(join(tmpdir(), "berth-status-src-"));
    const config = join(dir, "berth.yaml");
    const out: string[] = [];
    const io = { out: (s: string) => out.push(s), err: () => {}, tty: false };
    const run = async (args: string[]) => {
      out.length = 0;
      expect(await cli(["status", "--config", config, ...args], io)).toBe(0);
      return out.join("");
    };
    writeFileSync(
      config,
      `${HEAD}source: {url: https://git.example/apps.git}\nsources:\n  infra: {url: https://git.example/infra.git}\nledger: {path: ${join(dir, "l.db")}}\napps:\n  - {name: a, path: a}\n  - {name: b, path: b, source: infra}\n`,
    );
    const text = await run([]);
    expect(text.split("\n")[0]).toMatch(/^APP\s+SOURCE\s+REVISION\s+STATUS/);
    expect(text).toMatch(/\na\s+default\s+-\s+never synced/);
    expect(text).toMatch(/\nb\s+infra\s+-\s+never synced/);
    for (const line of text.split("\n")) expect(line.length).toBeLessThanOrEqual(100);
    expect((await run(["-o", "wide"])).split("\n")[0]).toMatch(/^APP\s+SOURCE\s+REVISION\s+OUTCOME/);
    const rows = JSON.parse(await run(["-o", "json", "b"]));
    expect(rows.map((r: { app: string; source: string }) => [r.app, r.source])).toEqual([["b", "infra"]]);

    writeFileSync(
      config,
      `${HEAD}source: {url: https://git.example/apps.git}\nledger: {path: ${join(dir, "l.db")}}\napps:\n  - {name: a, path: a}\n`,
    );
    expect((await run([])).split("\n")[0]).toMatch(/^APP\s+REVISION\s+STATUS/);
    expect((await run(["-o", "wide"])).split("\n")[0]).toMatch(/^APP\s+REVISION\s+OUTCOME/);
  });
});
