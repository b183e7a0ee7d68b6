/** Object names the API server refuses, per kind (rules from Kubernetes 1.36's validation code). */
import { describe, expect, test } from "bun:test";
import { invalidNameMessage, nameProblems, nameRuleFor } from "../../agent/object/names.ts";
import type { KubeObject } from "../../agent/object/object.ts";

const obj = (
  apiVersion: string,
  kind: string,
  name: string,
  extra: Partial<KubeObject> = {},
): KubeObject => ({
  apiVersion,
  kind,
  ...extra,
  metadata: { name, ...(extra.metadata ?? {}) },
});

describe("nameRuleFor", () => {
  test.each([
    ["", "ConfigMap", "dns-subdomain"],
    ["", "Secret", "dns-subdomain"],
    ["apps", "Deployment", "dns-subdomain"],
    ["", "Namespace", "dns-label"],
    ["", "Service", "dns-label"],
    ["apps", "StatefulSet", "dns-label"],
    ["rbac.authorization.k8s.io", "ClusterRole", "path-segment"],
    ["rbac.authorization.k8s.io", "RoleBinding", "path-segment"],
    ["example.com", "Widget", "dns-subdomain"],
    // Same kind name in another group is not the core kind.
    ["example.com", "Namespace", "dns-subdomain"],
  ] as const)("%p %p → %p", (group, kind, rule) => {
    expect(nameRuleFor(group, kind)).toBe(rule);
  });
});

describe("nameProblems", () => {
  const long = (n: number) => "a".repeat(n);
  const table: Array<[string, "dns-subdomain" | "dns-label" | "path-segment", boolean, RegExp?]> = [
    ["web", "dns-subdomain", true],
    ["web-1.example.com", "dns-subdomain", true],
    ["0abc", "dns-subdomain", true],
    [long(253), "dns-subdomain", true],
    [long(254), "dns-subdomain", false, /no more than 253 characters \(has 254\)/],
    ["a/b", "dns-subdomain", false, /it has "\/"/],
    ["a..b", "dns-subdomain", false, /empty part between dots/],
    ["..", "dns-subdomain", false, /empty part/],
    [".", "dns-subdomain", false, /empty part/],
    ["Web", "dns-subdomain", false, /upper case/],
    ["web_1", "dns-subdomain", false, /it has "_"/],
    ["-web", "dns-subdomain", false, /start and end with a letter or digit/],
    ["web.", "dns-subdomain", false, /empty part/],
    ["a.-b", "dns-subdomain", false, /each part between dots must start and end/],
    ["web app", "dns-subdomain", false, /it has " "/],
    ["", "dns-subdomain", false, /must not be empty/],
    ["web", "dns-label", true],
    ["1web", "dns-label", true],
    [long(63), "dns-label", true],
    [long(64), "dns-label", false, /no more than 63 characters/],
    ["web.example", "dns-label", false, /it has a '\.'/],
    ["web-", "dns-label", false, /start and end/],
    ["system:controller:Foo_bar", "path-segment", true],
    ["a/b", "path-segment", false, /may not contain '\/'/],
    ["50%", "path-segment", false, /may not contain '%'/],
    ["..", "path-segment", false, /may not be '\.\.'/],
    [".", "path-segment", false, /may not be '\.'/],
    ["a..b", "path-segment", true],
  ];
  for (const [name, rule, ok, why] of table) {
    test(`${JSON.stringify(name.length > 20 ? `${name.slice(0, 8)}…(${name.length})` : name)} as ${rule} → ${ok ? "valid" : "invalid"}`, () => {
      const problems = nameProblems(name, rule);
      expect(problems.length === 0).toBe(ok);
      if (why) expect(problems.join("; ")).toMatch(why);
    });
  }
});

describe("invalidNameMessage", () => {
  test("names the field, the name and the kind", () => {
    expect(invalidNameMessage(obj("v1", "ConfigMap", "team/settings"))).toBe(
      `metadata.name "team/settings" is not a valid ConfigMap name: must be a lowercase RFC 1123 subdomain (lower case letters, digits, '-' and '.'): it has "/"`,
    );
    expect(invalidNameMessage(obj("v1", "ConfigMap", "settings"))).toBeUndefined();
  });

  test("a Namespace or Service name must be a label; a ConfigMap may have dots", () => {
    expect(invalidNameMessage(obj("v1", "Namespace", "team.a"))).toContain("not a valid Namespace name");
    expect(invalidNameMessage(obj("v1", "Service", "api.v2"))).toContain("not a valid Service name");
    expect(invalidNameMessage(obj("v1", "ConfigMap", "api.v2"))).toBeUndefined();
    expect(invalidNameMessage(obj("apps/v1", "StatefulSet", "db.main"))).toContain("StatefulSet");
  });

  test("RBAC names may have colons and upper case, not a slash", () => {
    const cr = "rbac.authorization.k8s.io/v1";
    expect(invalidNameMessage(obj(cr, "ClusterRole", "system:Aggregate_view"))).toBeUndefined();
    expect(invalidNameMessage(obj(cr, "ClusterRole", "a/b"))).toMatch(/may not contain '\/'/);
  });

  test("a namespace that is not a label is named too", () => {
    expect(
      invalidNameMessage(obj("v1", "ConfigMap", "ok", { metadata: { name: "ok", namespace: "Team/A" } })),
    ).toMatch(/^metadata\.namespace "Team\/A" is not a valid namespace name: .*upper case/);
  });

  test("a CronJob name over 52 characters; a CRD not named plural.group", () => {
    expect(invalidNameMessage(obj("batch/v1", "CronJob", "c".repeat(52)))).toBeUndefined();
    expect(invalidNameMessage(obj("batch/v1", "CronJob", "c".repeat(53)))).toMatch(
      /no more than 52 characters/,
    );
    const crd = (name: string) =>
      obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", name, {
        spec: { group: "example.com", names: { plural: "widgets", kind: "Widget" } },
      });
    expect(invalidNameMessage(crd("widgets.example.com"))).toBeUndefined();
    expect(invalidNameMessage(crd("widget.example.com"))).toContain(
      'must be spec.names.plural+"."+spec.group ("widgets.example.com")',
    );
  });

  test("a huge name is shortened in the message", () => {
    const message = invalidNameMessage(obj("v1", "ConfigMap", "x".repeat(10_000))) ?? "";
    expect(message).toContain("(10000 characters)");
    expect(message.length).toBeLessThan(300);
  });
});
