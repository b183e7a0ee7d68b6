import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentConfig, loadConfig, parseConfig } from "../../agent/config/config.ts";
import { resolveGitCredentials } from "../../agent/config/credentials.ts";
import { parseDuration } from "../../agent/config/duration.ts";
import { ConfigError } from "../../agent/config/problems.ts";
import { dependencyOrder } from "../../agent/object/dependency-order.ts";
import { configErrorOf } from "../support/config.ts";

const dir = mkdtempSync(join(tmpdir(), "berth-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const VALID = `# yaml-language-server: $schema=../schemas/config.schema.json
apiVersion: berth.dev/v1alpha1
kind: Agent
source:
  url: https://git.example.com/infra.git
  interval: 30s
  auth: { tokenFile: secrets/git-token }
apps:
  - { name: base, path: ./clusters/prod/base/, prune: false }
  - name: web
    path: apps/web
    namespace: web
    dependsOn: [base]
    timeout: 2m
    interval: 1m30s
    suspend: true
ledger: { path: state/ledger.db, secretKeyEnv: BERTH_KEY }
api: { listen: "0.0.0.0:8080" }
`;

/** The message parseConfig throws for `text`. */
const errorOf = (text: string, file = "berth.yaml"): string => configErrorOf(text, file);

/** VALID with one line replaced. */
const replace = (from: string, to: string): string => {
  expect(VALID).toContain(from);
  return VALID.replace(from, to);
};

describe("parseConfig()", () => {
  test("normalises durations, defaults, app paths and relative file paths", () => {
    const config: AgentConfig = parseConfig(VALID, join(dir, "berth.yaml"));
    expect(config).toEqual({
      apiVersion: "berth.dev/v1alpha1",
      kind: "Agent",
      configPath: join(dir, "berth.yaml"),
      source: {
        url: "https://git.example.com/infra.git",
        ref: "main",
        interval: 30_000,
        timeout: 60_000,
        auth: { tokenFile: join(dir, "secrets/git-token") },
      },
      sources: {
        default: {
          url: "https://git.example.com/infra.git",
          ref: "main",
          interval: 30_000,
          timeout: 60_000,
          auth: { tokenFile: join(dir, "secrets/git-token") },
        },
      },
      generate: [],
      apps: [
        {
          name: "base",
          path: "clusters/prod/base",
          source: "default",
          dependsOn: [],
          prune: false,
          interval: 30_000,
          timeout: 300_000,
          suspend: false,
          force: false,
          allowEmpty: false,
        },
        {
          name: "web",
          path: "apps/web",
          source: "default",
          namespace: "web",
          dependsOn: ["base"],
          prune: true,
          interval: 90_000,
          timeout: 120_000,
          suspend: true,
          force: false,
          allowEmpty: false,
        },
      ],
      concurrency: 4,
      rules: [],
      ledger: {
        path: join(dir, "state/ledger.db"),
        secretKeyEnv: "BERTH_KEY",
        retention: { maxAgeMs: 90 * 86_400_000, keepLast: 500 },
      },
      api: { listen: "0.0.0.0:8080" },
    });
  });

  test("fills defaults for a minimal file", () => {
    const config = parseConfig(
      "apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: { url: http://git/x.git }\napps: []\n",
      "/etc/berth/berth.yaml",
    );
    expect(config.source).toEqual({
      url: "http://git/x.git",
      ref: "main",
      interval: 60_000,
      timeout: 60_000,
    });
    expect(config.ledger).toEqual({
      path: "/etc/berth/berth-ledger.db",
      retention: { maxAgeMs: 90 * 86_400_000, keepLast: 500 },
    });
    expect(config.api).toEqual({ listen: "127.0.0.1:7420" });
  });

  test("reads ledger.retention; rejects an unknown key and a bad duration in it", () => {
    const base = "apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: { url: http://git/x.git }\napps: []\n";
    const config = parseConfig(
      `${base}ledger: { retention: { maxAge: 30d, keepLast: 50 } }\n`,
      "/b/berth.yaml",
    );
    expect(config.ledger.retention).toEqual({ maxAgeMs: 30 * 86_400_000, keepLast: 50 });
    expect(() => parseConfig(`${base}ledger: { retention: { maxAge: soon } }\n`, "/b/berth.yaml")).toThrow(
      "ledger.retention.maxAge",
    );
    expect(() => parseConfig(`${base}ledger: { retention: { keep: 5 } }\n`, "/b/berth.yaml")).toThrow(
      "ledger.retention",
    );
  });

  test.each([
    [
      "    timeout: 2m",
      "    timeout: soon",
      'berth.yaml: apps[1].timeout: expected a duration like "30s", got "soon"',
    ],
    ["  interval: 30s", "  interval: 30", "berth.yaml: source.interval: expected string, got 30"],
    ["    suspend: true", "    suspend: maybe", 'berth.yaml: apps[1].suspend: expected boolean, got "maybe"'],
    [
      "    namespace: web",
      "    namespace: Web_1",
      "berth.yaml: apps[1].namespace: expected a lowercase name",
    ],
    ["kind: Agent", "kind: Agnet", 'berth.yaml: kind: expected "Agent", got "Agnet"'],
    ["kind: Agent", "kind: Agent\nconcurrency: 0", "berth.yaml: concurrency: expected"],
    ["kind: Agent", "kind: Agent\nconcurrency: two", "berth.yaml: concurrency: expected"],
    [
      'api: { listen: "0.0.0.0:8080" }',
      'api: { listen: "0.0.0.0:8080", tokens: [{ file: t, scope: operate, name: "ops team" }] }',
      "berth.yaml: api.tokens[0].name: expected",
    ],
    [
      "  url: https://git.example.com/infra.git",
      "  url: ssh://git@example.com/infra.git",
      "berth.yaml: source.ssh: an SSH URL needs ssh.keyFile and ssh.knownHostsFile",
    ],
    [
      "  url: https://git.example.com/infra.git",
      "  url: https://me:hunter2@example.com/x.git",
      "berth.yaml: source.url: credentials in the URL are not allowed",
    ],
    [
      "path: ./clusters/prod/base/",
      "path: ../elsewhere",
      'berth.yaml: apps[0].path: expected a path without "..", got "../elsewhere"',
    ],
    [
      "path: ./clusters/prod/base/",
      "path: /abs",
      "berth.yaml: apps[0].path: expected a path relative to the repository root",
    ],
    [
      "    dependsOn: [base]",
      "    dependsOn: [bsae]",
      'berth.yaml: apps[1].dependsOn[0]: no app is named "bsae"',
    ],
    ["  - name: web", "  - name: base", 'berth.yaml: apps[1].name: "base" is already the name of apps[0]'],
    ["    path: apps/web\n", "", "berth.yaml: apps[1].path: required field is missing"],
    [
      'api: { listen: "0.0.0.0:8080" }',
      "api: { listen: 8080 }",
      "berth.yaml: api.listen: expected string, got 8080",
    ],
    [
      "ledger: { path: state/ledger.db, secretKeyEnv: BERTH_KEY }",
      "ledger: { secretKeyFile: k, secretKeyEnv: K }",
      "berth.yaml: ledger: expected only one of secretKeyFile, secretKeyEnv",
    ],
    [
      "auth: { tokenFile: secrets/git-token }",
      "auth: { tokenFile: a, tokenEnv: B }",
      "berth.yaml: source.auth: expected only one of tokenFile, tokenEnv",
    ],
    [
      "auth: { tokenFile: secrets/git-token }",
      "auth: { passwordFile: p }",
      "berth.yaml: source.auth.passwordFile: needs username as well",
    ],
  ])("rejects %p → %p naming file and field", (from, to, expected) => {
    expect(errorOf(replace(from, to))).toContain(expected);
  });

  test("rejects unknown fields, naming the field and what is allowed", () => {
    const message = errorOf(replace("    suspend: true", "    suspnd: true"));
    expect(message).toContain(
      "berth.yaml: apps[1].suspnd: unknown field (allowed here: name, path, source, namespace",
    );
    expect(message).toContain("(line 16)");
    expect(errorOf(`${VALID}extra: 1\n`)).toContain("berth.yaml: extra: unknown field");
  });

  test("lists every problem, one line each", () => {
    const message = errorOf(replace("    timeout: 2m", "    timeout: soon\n    force: 1"));
    expect(message.split("\n")).toEqual([
      expect.stringContaining("berth.yaml: apps[1].timeout:"),
      expect.stringContaining("berth.yaml: apps[1].force:"),
    ]);
  });

  test("names dependency cycles", () => {
    const text = replace("prune: false }", "prune: false, dependsOn: [web] }");
    expect(errorOf(text)).toContain("berth.yaml: apps[0].dependsOn: dependency cycle: base → web → base");
    expect(errorOf(replace("    dependsOn: [base]", "    dependsOn: [web]"))).toContain(
      "dependency cycle: web → web",
    );
  });

  test("rejects plaintext secrets and says what to use instead", () => {
    const token = errorOf(replace("auth: { tokenFile: secrets/git-token }", "auth: { token: ghp_secret }"));
    expect(token).toBe(
      "berth.yaml: source.auth.token: plaintext secrets are not allowed in the config file; use tokenFile or tokenEnv (line 7)",
    );
    expect(token).not.toContain("ghp_secret");
    const password = errorOf(
      replace("auth: { tokenFile: secrets/git-token }", "auth: { username: me, password: pw }"),
    );
    expect(password).toContain(
      "source.auth.password: plaintext secrets are not allowed in the config file; use passwordFile or passwordEnv",
    );
  });

  test("YAML syntax errors carry line and column; other shapes are explained", () => {
    expect(errorOf("apiVersion: berth.dev/v1alpha1\nkind: [Agent\nsource: {}\n", "cfg/berth.yaml")).toMatch(
      /^cfg\/berth\.yaml: 3:1: invalid YAML: /,
    );
    expect(errorOf("a: 1\na: 2\n")).toMatch(/^berth\.yaml: 2:1: invalid YAML: .*unique/);
    expect(errorOf("")).toContain("berth.yaml: expected a mapping with apiVersion, kind, source and apps");
  });
});

describe("loadConfig()", () => {
  test("reads the file and resolves paths against its directory", () => {
    const file = join(dir, "berth.yaml");
    writeFileSync(file, VALID);
    expect(loadConfig(file).source?.auth).toEqual({ tokenFile: join(dir, "secrets/git-token") });
  });

  test("a missing file is a ConfigError naming it", () => {
    const missing = join(dir, "nope.yaml");
    expect(() => loadConfig(missing)).toThrow(
      new ConfigError(missing, [
        { field: "", segments: [], message: "cannot read config file: no such file" },
      ]),
    );
  });
});

describe("resolveGitCredentials()", () => {
  test("reads a token from a file or an environment variable at call time", () => {
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, "t0k3n\n");
    expect(resolveGitCredentials({ tokenFile })).toEqual({ username: "x-access-token", password: "t0k3n" });
    writeFileSync(tokenFile, "rotated");
    expect(resolveGitCredentials({ tokenFile })).toEqual({ username: "x-access-token", password: "rotated" });
    expect(resolveGitCredentials({ tokenEnv: "GIT_TOKEN" }, { GIT_TOKEN: "envtok" })).toEqual({
      username: "x-access-token",
      password: "envtok",
    });
    expect(resolveGitCredentials({ username: "bot", passwordEnv: "PW" }, { PW: "pw" })).toEqual({
      username: "bot",
      password: "pw",
    });
    expect(resolveGitCredentials(undefined)).toBeUndefined();
  });

  test("a missing or empty secret is an error naming the file or variable, never a secret", () => {
    const missing = join(dir, "missing-token");
    expect(() => resolveGitCredentials({ tokenFile: missing })).toThrow(
      `${missing}: cannot read token file: no such file`,
    );
    const empty = join(dir, "empty");
    writeFileSync(empty, "  \n");
    expect(() => resolveGitCredentials({ username: "u", passwordFile: empty })).toThrow(
      `${empty}: password file is empty`,
    );
    expect(() => resolveGitCredentials({ tokenEnv: "NOPE" }, {})).toThrow(
      "$NOPE: token environment variable is not set",
    );
    const secretDir = join(dir, "secret-dir");
    writeFileSync(join(dir, "secret-dir"), "");
    expect(() => resolveGitCredentials({ tokenFile: `${secretDir}/x` })).toThrow(
      `${secretDir}/x: cannot read token file: ENOTDIR`,
    );
  });
});

describe("helpers", () => {
  test("parseDuration() reads ms, s, m, h, d and sums", () => {
    expect(["7d", "500ms", "30s", "2m", "1h", "1m30s", "1.5s", "soon", "30", ""].map(parseDuration)).toEqual([
      7 * 86_400_000,
      500,
      30_000,
      120_000,
      3_600_000,
      90_000,
      1500,
      undefined,
      undefined,
      undefined,
    ]);
  });

  test("dependencyOrder() puts dependencies first and keeps file order otherwise", () => {
    const apps = [
      { name: "web", dependsOn: ["db", "base"] },
      { name: "db", dependsOn: ["base"] },
      { name: "base", dependsOn: [] },
      { name: "misc", dependsOn: [] },
    ];
    expect(dependencyOrder(apps).map((a) => a.name)).toEqual(["base", "db", "web", "misc"]);
    expect(() => dependencyOrder([{ name: "a", dependsOn: ["a"] }])).toThrow("dependency cycle: a → a");
  });
});
