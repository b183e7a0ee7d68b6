/** berth.yaml's remote chart fields: normalised paths, and errors naming file, field and what was expected. */
import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../agent/config/config.ts";
import { configErrorOf } from "../support/config.ts";

const config = (helm: string) => `apiVersion: berth.dev/v1alpha1
kind: Agent
source: { url: https://git.example.com/infra.git }
apps:
  - name: certs
    path: apps/certs
    helm: ${helm}
`;

const errorOf = (text: string): string => configErrorOf(text);

describe("helm: charts from repositories in berth.yaml", () => {
  test("repo, version, auth and caFile are kept; files are made absolute beside berth.yaml", () => {
    const c = parseConfig(
      config(
        '{ repo: "https://charts.jetstack.io", chart: cert-manager, version: "1.16.x", auth: { username: ci, passwordFile: secrets/charts }, caFile: ca.pem, values: [apps/certs/values.yaml] }',
      ),
      "/etc/berth/berth.yaml",
    );
    expect(c.apps[0]?.helm).toEqual({
      repo: "https://charts.jetstack.io",
      chart: "cert-manager",
      version: "1.16.x",
      auth: { username: "ci", passwordFile: "/etc/berth/secrets/charts" },
      caFile: "/etc/berth/ca.pem",
      values: ["apps/certs/values.yaml"],
    });
  });

  test("an oci:// chart needs no repo", () => {
    const c = parseConfig(
      config('{ chart: "oci://registry.example/charts/redis", version: "^19" }'),
      "/b.yaml",
    );
    expect(c.apps[0]?.helm).toEqual({ chart: "oci://registry.example/charts/redis", version: "^19" });
  });

  test("a plaintext password is refused, naming the field", () => {
    const message = errorOf(
      config('{ repo: "https://c.example", chart: x, auth: { username: u, password: hunter2 } }'),
    );
    expect(message).toContain("/etc/berth/berth.yaml");
    expect(message).toContain("apps[0].helm.auth");
    expect(message).not.toContain("hunter2");
  });

  test("repo with an oci:// chart, a path as chart name, and version without a remote chart are errors", () => {
    expect(errorOf(config('{ repo: "https://c.example", chart: "oci://r.example/c/x" }'))).toContain(
      "apps[0].helm.repo: not used with an oci:// chart",
    );
    expect(errorOf(config('{ repo: "https://c.example", chart: charts/x }'))).toContain(
      `apps[0].helm.chart: expected the chart's name in the repository's index, got "charts/x"`,
    );
    expect(errorOf(config('{ chart: charts/x, version: "1.x" }'))).toContain(
      "apps[0].helm.version: only used with a chart from a Helm repository (repo) or an oci:// chart",
    );
    expect(errorOf(config('{ repo: "ftp://c.example", chart: x }'))).toContain("apps[0].helm.repo");
  });
});
