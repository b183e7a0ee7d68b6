/** `source: { oci: … }` in berth.yaml: normalised form, and errors naming file, line and field. */
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../agent/config/config.ts";

const FILE = "/etc/berth/berth.yaml";
const config = (source: string) =>
  `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: ${source}\napps:\n  - {name: a, path: a}\n`;
const problem = (source: string): string => {
  try {
    parseConfig(config(source), FILE);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error("expected a config error");
};

describe("an OCI artifact as source", () => {
  test("loads with defaults, absolute paths and insecure false unless written", () => {
    const c = parseConfig(
      config(
        "{oci: oci://reg.example:5000/team/app, semver: '>=1.0.0 <2.0.0', interval: 30s, auth: {username: u, passwordFile: pw}, caFile: ca.pem}",
      ),
      FILE,
    );
    expect(c.source).toEqual({
      kind: "oci",
      oci: "oci://reg.example:5000/team/app",
      semver: ">=1.0.0 <2.0.0",
      interval: 30_000,
      timeout: 60_000,
      insecure: false,
      auth: { username: "u", passwordFile: "/etc/berth/pw" },
      caFile: "/etc/berth/ca.pem",
    });
    expect(c.apps[0]?.interval).toBe(30_000);
  });

  test("a Git field beside oci is an unknown field, named", () => {
    expect(problem("{oci: oci://reg.example/team/app, tag: v1, ref: main}")).toBe(
      `${FILE}: source.ref: unknown field (allowed here: oci, tag, semver, digest, interval, timeout, auth, caFile, insecure) (line 3)`,
    );
    expect(problem("{url: https://git.example/x.git, tag: v1}")).toContain(
      "source.tag: unknown field (allowed here: url, ssh, verify, ref, interval, timeout, auth)",
    );
  });

  test("exactly one of tag, semver and digest", () => {
    expect(problem("{oci: oci://reg.example/team/app}")).toContain(
      "source.tag: an OCI source needs exactly one of tag, semver or digest; none is set",
    );
    expect(
      problem("{oci: oci://reg.example/team/app, tag: v1, digest: 'sha256:" + "a".repeat(64) + "'}"),
    ).toContain(
      "source.digest: an OCI source needs exactly one of tag, semver or digest; got tag and digest",
    );
  });

  test("malformed values say what was expected", () => {
    expect(problem("{oci: 'https://reg.example/app', tag: v1}")).toContain(
      'source.oci: expected oci://<registry host[:port]>/<repository> (no tag or digest: those go in tag, semver or digest), got "https://reg.example/app"',
    );
    expect(problem("{oci: oci://reg.example/app, digest: 'sha256:abc'}")).toContain(
      "source.digest: expected a manifest digest sha256:<64 lowercase hex>",
    );
    expect(problem("{oci: oci://reg.example/app, semver: 'one.two'}")).toContain(
      'source.semver: expected a semver range like ">=1.0.0 <2.0.0" or "1.x"',
    );
    expect(problem("{oci: oci://reg.example/app, tag: v1, insecure: 'yes'}")).toContain(
      'source.insecure: expected boolean, got "yes"',
    );
    expect(problem("{oci: oci://reg.example/app, tag: v1, auth: {username: u, password: p}}")).toContain(
      "source.auth.password",
    );
  });
});
