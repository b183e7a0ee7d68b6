/** `source: { oci: … }` in berth.yaml: normalised form, and errors naming file, line and field. */
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../agent/config/config.ts";
import { configErrorOf } from "../support/config.ts";

const FILE = "/etc/berth/berth.yaml";
const config = (source: string) =>
  `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: ${source}\napps:\n  - {name: a, path: a}\n`;
const problem = (source: string): string => configErrorOf(config(source), FILE);

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
      "source.tag: unknown field (allowed here: url, ssh, verify, ref, interval, timeout, limits, auth, webhook, status)",
    );
  });

  test("exactly one of tag, semver and digest", () => {
    expect(problem("{oci: oci://reg.example/team/app}")).toContain(
      "source.tag: an OCI source needs exactly one of tag, semver or digest; none is set",
    );
    expect(
      problem(`{oci: oci://reg.example/team/app, tag: v1, digest: 'sha256:${"a".repeat(64)}'}`),
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

describe("an OCI artifact as an entry of sources", () => {
  const named = (sources: string, top = "") =>
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\n${top}sources:\n${sources}apps:\n  - {name: a, path: a, source: git}\n  - {name: b, path: b, source: art}\n`;
  const problemOf = (text: string): string => configErrorOf(text, FILE);

  test("loads next to a Git source, each app on its own", () => {
    const c = parseConfig(
      named(
        "  git: {url: https://git.example/infra.git}\n  art: {oci: oci://reg.example/team/app, tag: v1, interval: 20s}\n",
      ),
      FILE,
    );
    expect(c.sources.git).toEqual({
      url: "https://git.example/infra.git",
      ref: "main",
      interval: 60_000,
      timeout: 60_000,
    });
    expect(c.sources.art).toEqual({
      kind: "oci",
      oci: "oci://reg.example/team/app",
      tag: "v1",
      interval: 20_000,
      timeout: 60_000,
      insecure: false,
    });
    expect(c.apps.map((a) => [a.name, a.source, a.interval])).toEqual([
      ["a", "git", 60_000],
      ["b", "art", 20_000],
    ]);
  });

  test("errors name the entry's field, against the form it was meant as", () => {
    const text = named(
      "  git: {url: https://git.example/infra.git}\n  art: {oci: oci://reg.example/team/app}\n",
    );
    expect(problemOf(text)).toBe(
      `${FILE}: sources.art.tag: an OCI source needs exactly one of tag, semver or digest; none is set (line 5)`,
    );
    const wrong = problemOf(
      named("  git: {url: https://git.example/infra.git, tag: v1}\n  art: {oci: 'https://x/y', tag: v1}\n"),
    );
    expect(wrong).toContain("sources.git.tag: unknown field (allowed here: url, ssh, verify, ref,");
    expect(wrong).toContain("sources.art.oci: expected oci://<registry host[:port]>/<repository>");
    expect(wrong).not.toContain("sources.art.url");
    expect(
      problemOf(
        named(
          "  git: {url: https://git.example/infra.git}\n  art: {oci: oci://reg.example/team/app, tag: v1, auth: {username: u, password: p}}\n",
        ),
      ),
    ).toContain(
      "sources.art.auth.password: plaintext secrets are not allowed in the config file; use passwordFile",
    );
  });

  test("a webhook on an OCI source is refused, saying why", () => {
    const msg = problemOf(
      named(
        "  git: {url: https://git.example/infra.git, webhook: {secretFile: h}}\n  art: {oci: oci://reg.example/team/app, tag: v1, webhook: {secretFile: h}}\n",
      ),
    );
    expect(msg).toBe(
      `${FILE}: sources.art.webhook: push webhooks do not apply to an OCI source (a registry sends no push event); drop webhook: the source is polled every interval, and \`berth sync\` fetches it at once (line 5)`,
    );
    expect(problem("{oci: oci://reg.example/team/app, tag: v1, webhook: {secretFile: h}}")).toContain(
      "source.webhook: push webhooks do not apply to an OCI source",
    );
  });

  test("previewing an app of an OCI source is refused: previews follow Git refs", () => {
    const text = `${named("  git: {url: https://git.example/infra.git}\n  art: {oci: oci://reg.example/team/app, tag: v1}\n")}previews: {refs: ["refs/pull/*/head"], apps: [a, b]}\n`;
    expect(problemOf(text)).toBe(
      `${FILE}: previews.apps[1]: app "b" reads source art, an OCI artifact: previews follow Git refs (branches, pull requests), which it has none of (line 9)`,
    );
  });
});
