/** substituteText/substituteObject (Flux postBuild semantics) and the config fields of rendering and sources. */
import { describe, expect, test } from "bun:test";
import { parseConfig, type SourceConfig } from "../../agent/config/config.ts";
import { isRemoteReference } from "../../agent/render/kustomize.ts";
import { substituteObject, substituteText } from "../../agent/render/substitute.ts";
import { shellQuote, sshCommand } from "../../agent/source/ssh-git.ts";

const vars = new Map([
  ["NAME", "web"],
  ["EMPTY", ""],
  ["N", "3"],
]);

describe("substituteText()", () => {
  test.each([
    ["${NAME}", "web"],
    ["a-${NAME}-b", "a-web-b"],
    ["${MISSING:=fallback}", "fallback"],
    ["${EMPTY:=fallback}", "fallback"],
    ["${EMPTY=fallback}", ""],
    ["${MISSING:-x}", "x"],
    ["$${NAME}", "${NAME}"],
    ["$NAME stays", "$NAME stays"],
    ["${not a var}", "${not a var}"],
  ])("%p → %p", (input, expected) => {
    expect(substituteText(input, vars)).toBe(expected);
  });

  test("an undefined variable without default names the variable", () => {
    expect(() => substituteText("x: ${NOPE}", vars)).toThrow(
      'variable "NOPE" is not defined and has no default',
    );
  });
});

describe("substituteObject()", () => {
  const object = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "${NAME}", namespace: "ns" },
    spec: { replicas: "${N}" },
  };

  test("a number substituted into YAML becomes a number, as in Flux", () => {
    const out = substituteObject(object as never, vars) as unknown as {
      metadata: { name: string };
      spec: { replicas: unknown };
    };
    expect(out.metadata.name).toBe("web");
    expect(out.spec.replicas).toBe(3);
  });

  test("quotes around a reference do not keep a string (as in Flux); ${quote}…${quote} does", () => {
    const cm = (data: Record<string, string>) => ({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c", namespace: "ns" },
      data,
    });
    const quoting = new Map([...vars, ["quote", '"']]);
    // The manifest's quotes are gone once parsed (kustomize drops them too): the value becomes a number.
    expect((substituteObject(cm({ port: "${N}" }) as never, quoting) as any).data.port).toBe(3);
    expect((substituteObject(cm({ port: "${quote}${N}${quote}" }) as never, quoting) as any).data.port).toBe(
      "3",
    );
  });

  test("the opt-out label or annotation leaves the object as it is", () => {
    for (const where of ["labels", "annotations"]) {
      const opted = {
        ...object,
        metadata: { ...object.metadata, [where]: { "kustomize.toolkit.fluxcd.io/substitute": "disabled" } },
      };
      expect(substituteObject(opted as never, new Map())).toBe(opted as never);
    }
  });

  test("an undefined variable names the object", () => {
    expect(() => substituteObject(object as never, new Map())).toThrow(
      'Deployment/ns/${NAME}: variable "NAME" is not defined',
    );
  });
});

describe("remote kustomize bases", () => {
  test.each([
    ["https://github.com/org/repo//base?ref=v1", true],
    ["git@github.com:org/repo.git//base", true],
    ["github.com/org/repo/base", true],
    ["ssh://git@host/repo", true],
    ["../base", false],
    ["deployment.yaml", false],
  ])("%p remote: %p", (entry, remote) => {
    expect(isRemoteReference(entry)).toBe(remote);
  });
});

describe("ssh command line", () => {
  test("every argument is quoted for git's shell, host keys are checked strictly", () => {
    const line = sshCommand({ keyFile: "/keys/deploy key's", knownHostsFile: "/k/known_hosts" });
    expect(line).toContain("-i '/keys/deploy key'\\''s'");
    expect(line).toContain("StrictHostKeyChecking=yes");
    expect(line).toContain("UserKnownHostsFile=/k/known_hosts");
    expect(shellQuote("$(rm -rf /)")).toBe("'$(rm -rf /)'");
  });
});

describe("config", () => {
  const base = (source: string, extra = "") =>
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: ${source}\napps:\n  - {name: a, path: a${extra}}\n`;

  test("an SSH URL with ssh settings, verify, render and app render fields load with absolute paths", () => {
    const c = parseConfig(
      `${base('{url: "git@git.example:infra.git", ssh: {keyFile: k, knownHostsFile: kh}, verify: {allowedSignersFile: s}}', ", helm: {chart: c, set: {x: 1}}, vars: {A: b}, varsFrom: [{file: v.env}, {kind: Secret, name: s}]")}render: {kustomize: bin/kustomize, timeout: 10s, ageKeyFile: age.key}\n`,
      "/etc/berth/berth.yaml",
    );
    expect((c.source as SourceConfig).ssh).toEqual({
      keyFile: "/etc/berth/k",
      knownHostsFile: "/etc/berth/kh",
    });
    expect((c.source as SourceConfig).verify).toEqual({ allowedSignersFile: "/etc/berth/s" });
    expect(c.render).toEqual({
      tools: { kustomize: "/etc/berth/bin/kustomize" },
      timeout: 10_000,
      ageKeyFile: "/etc/berth/age.key",
    });
    expect(c.apps[0]?.varsFrom).toEqual([{ file: "/etc/berth/v.env" }, { kind: "Secret", name: "s" }]);
    expect(c.apps[0]?.helm).toEqual({ chart: "c", set: { x: 1 } });
  });

  test("an SSH URL without ssh settings, or with auth, is a problem naming the field", () => {
    expect(() => parseConfig(base('{url: "ssh://git@host/infra.git"}'), "b.yaml")).toThrow("source.ssh");
    expect(() =>
      parseConfig(base('{url: "https://h/x.git", ssh: {keyFile: k, knownHostsFile: kh}}'), "b.yaml"),
    ).toThrow("only used with an ssh:// or user@host:path URL");
  });

  test("ageKeyFile and ageKeyEnv together are refused", () => {
    expect(() =>
      parseConfig(`${base('{url: "https://h/x.git"}')}render: {ageKeyFile: a, ageKeyEnv: B}\n`, "b.yaml"),
    ).toThrow("expected only one of ageKeyFile, ageKeyEnv");
  });
});
