/** Checks of berth.yaml that a JSON Schema cannot express: secrets, URLs, paths, app names and dependencies. */
import { messageOf } from "../object/errors.ts";
import { parseRange } from "../object/semver-range.ts";
import { findCycle } from "./dependency-order.ts";
import { type ConfigProblem, problemAt } from "./problems.ts";

type Raw = Record<string, unknown>;

const PLAINTEXT_SECRETS: { at: string[]; key: string; use: string }[] = [
  { at: ["source", "auth"], key: "token", use: "tokenFile or tokenEnv" },
  { at: ["source", "auth"], key: "password", use: "passwordFile or passwordEnv" },
  { at: ["ledger"], key: "secretKey", use: "secretKeyFile or secretKeyEnv" },
  { at: ["ledger", "replica"], key: "secretAccessKey", use: "secretAccessKeyFile or secretAccessKeyEnv" },
  { at: ["api"], key: "token", use: "tokenFile or tokenEnv" },
  { at: ["api", "webhook"], key: "secret", use: "secretFile or secretEnv" },
];

/** Plaintext secret fields (`source.auth.token`, …); each problem says which file/env field to use instead. */
export function plaintextSecretProblems(data: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const { at, key, use } of PLAINTEXT_SECRETS) {
    const parent = at.reduce<unknown>((node, k) => (isMapping(node) ? node[k] : undefined), data);
    if (isMapping(parent) && key in parent) {
      // An OCI source's password comes from a file only (as a remote chart's).
      const oci = at[0] === "source" && isMapping(data) && isMapping(data.source) && "oci" in data.source;
      problems.push(
        problemAt(
          [...at, key],
          `plaintext secrets are not allowed in the config file; use ${oci ? "passwordFile" : use}`,
        ),
      );
    }
  }
  return problems;
}

/** Problems of a config that already passed the schema. */
export function semanticProblems(data: Raw): ConfigProblem[] {
  return [...sourceProblems(data), ...exclusiveProblems(data), ...appProblems(data), ...tenantProblems(data)];
}

function sourceProblems(data: Raw): ConfigProblem[] {
  const source = data.source as Raw;
  if (source.oci !== undefined) return ociSourceProblems(source, ["source"]);
  const url = String(source.url);
  // SSH (ssh:// or scp-like user@host:path) goes through the system git with a deploy key, never source.auth.
  if (/^ssh:\/\//i.test(url) || /^[^/:@\s]+@[^/:\s]+:/.test(url)) {
    if (source.ssh === undefined)
      return [problemAt(["source", "ssh"], "an SSH URL needs ssh.keyFile and ssh.knownHostsFile")];
    if (source.auth !== undefined)
      return [problemAt(["source", "auth"], "not used with an SSH URL; use ssh.keyFile")];
    return [];
  }
  if (source.ssh !== undefined)
    return [problemAt(["source", "ssh"], "only used with an ssh:// or user@host:path URL")];
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [problemAt(["source", "url"], `expected an http or https URL, got ${JSON.stringify(url)}`)];
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    return [
      problemAt(
        ["source", "url"],
        `expected an http or https URL, got scheme "${parsed.protocol.slice(0, -1)}"`,
      ),
    ];
  }
  if (parsed.username !== "" || parsed.password !== "") {
    return [problemAt(["source", "url"], "credentials in the URL are not allowed; use source.auth")];
  }
  const auth = source.auth as Raw | undefined;
  if (auth === undefined) return [];
  const secrets = ["tokenFile", "tokenEnv", "passwordFile", "passwordEnv"].filter((k) => k in auth);
  if (secrets.length === 0) {
    return [
      problemAt(["source", "auth"], "expected one of tokenFile, tokenEnv, passwordFile or passwordEnv"),
    ];
  }
  if (secrets.length > 1) {
    return [problemAt(["source", "auth"], `expected only one of ${secrets.join(", ")}`)];
  }
  if ("username" in auth && secrets[0]?.startsWith("token")) {
    return [
      problemAt(
        ["source", "auth", "username"],
        `not used with ${secrets[0]}; use passwordFile or passwordEnv`,
      ),
    ];
  }
  return [];
}

function exclusiveProblems(data: Raw): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const [section, a, b] of [
    ["ledger", "secretKeyFile", "secretKeyEnv"],
    ["ledger.replica", "secretAccessKeyFile", "secretAccessKeyEnv"],
    ["ledger.replica", "accessKeyIdFile", "accessKeyIdEnv"],
    ["ledger.replica", "accessKeyId", "accessKeyIdFile"],
    ["ledger.replica", "accessKeyId", "accessKeyIdEnv"],
    ["render", "ageKeyFile", "ageKeyEnv"],
    ["api", "tokenFile", "tokenEnv"],
    ["api.webhook", "secretFile", "secretEnv"],
  ] as const) {
    const node = section.split(".").reduce<Raw | undefined>((n, k) => n?.[k] as Raw | undefined, data);
    if (node && a in node && b in node)
      problems.push(problemAt(section.split("."), `expected only one of ${a}, ${b}`));
  }
  return problems;
}

/** An app's tenant settings must agree: an impersonated ServiceAccount lives in the app's namespace. */
function tenantProblems(data: Raw): ConfigProblem[] {
  const apps = data.apps as {
    namespace?: string;
    serviceAccountName?: string;
    allowedNamespaces?: string[];
    varsFrom?: Array<{ namespace?: string }>;
  }[];
  const fallback = data.defaultServiceAccountName as string | undefined;
  const problems: ConfigProblem[] = [];
  apps.forEach((app, i) => {
    if (app.namespace === undefined) {
      if (app.serviceAccountName !== undefined)
        problems.push(
          problemAt(
            ["apps", i, "serviceAccountName"],
            "needs the app's namespace: the ServiceAccount is looked up there",
          ),
        );
      else if (fallback !== undefined)
        problems.push(
          problemAt(
            ["apps", i],
            `defaultServiceAccountName "${fallback}" applies to this app, which sets no namespace to find it in; set namespace (or serviceAccountName and namespace)`,
          ),
        );
    }
    const allowed = app.allowedNamespaces;
    if (!allowed) return;
    if (app.namespace !== undefined && !allowed.includes(app.namespace))
      problems.push(problemAt(["apps", i, "namespace"], `"${app.namespace}" is not in allowedNamespaces`));
    (app.varsFrom ?? []).forEach((v, j) => {
      if (v.namespace !== undefined && !allowed.includes(v.namespace))
        problems.push(
          problemAt(["apps", i, "varsFrom", j, "namespace"], `"${v.namespace}" is not in allowedNamespaces`),
        );
    });
  });
  return problems;
}

function appProblems(data: Raw): ConfigProblem[] {
  const apps = data.apps as { name: string; path: string; dependsOn?: string[] }[];
  const problems: ConfigProblem[] = [];
  const firstIndex = new Map<string, number>();
  apps.forEach((app, i) => {
    const earlier = firstIndex.get(app.name);
    if (earlier === undefined) firstIndex.set(app.name, i);
    else
      problems.push(problemAt(["apps", i, "name"], `"${app.name}" is already the name of apps[${earlier}]`));
    const pathProblem = appPathProblem(app.path);
    if (pathProblem) problems.push(problemAt(["apps", i, "path"], pathProblem));
    problems.push(...helmProblems((app as { helm?: Raw }).helm, i));
  });
  apps.forEach((app, i) => {
    (app.dependsOn ?? []).forEach((dep, j) => {
      if (!firstIndex.has(dep))
        problems.push(problemAt(["apps", i, "dependsOn", j], `no app is named "${dep}"`));
    });
  });
  const cycle = findCycle(apps.map((app) => ({ name: app.name, dependsOn: app.dependsOn ?? [] })));
  if (cycle) {
    const at = firstIndex.get(cycle[0] ?? "") ?? 0;
    problems.push(problemAt(["apps", at, "dependsOn"], `dependency cycle: ${cycle.join(" → ")}`));
  }
  return problems;
}

/** An OCI source follows exactly one of tag, semver and digest, and a semver range must parse. */
export function ociSourceProblems(source: Raw, at: (string | number)[]): ConfigProblem[] {
  const set = ["tag", "semver", "digest"].filter((k) => source[k] !== undefined);
  if (set.length === 0)
    return [
      problemAt([...at, "tag"], "an OCI source needs exactly one of tag, semver or digest; none is set"),
    ];
  if (set.length > 1)
    return [
      problemAt(
        [...at, set[1] as string],
        `an OCI source needs exactly one of tag, semver or digest; got ${set.join(" and ")}`,
      ),
    ];
  if (source.semver !== undefined) {
    try {
      parseRange(String(source.semver));
    } catch (err) {
      return [
        problemAt(
          [...at, "semver"],
          `expected a semver range like ">=1.0.0 <2.0.0" or "1.x": ${messageOf(err)}`,
        ),
      ];
    }
  }
  return [];
}

/** A remote chart's fields make sense together: `repo` or `oci://`, not both; version/auth/caFile only for one. */
function helmProblems(helm: Raw | undefined, i: number): ConfigProblem[] {
  if (helm === undefined) return [];
  const at = (field: string) => ["apps", i, "helm", field];
  const oci = String(helm.chart).startsWith("oci://");
  if (helm.repo !== undefined && oci)
    return [problemAt(at("repo"), "not used with an oci:// chart; the chart reference names the registry")];
  if (helm.repo !== undefined || oci) {
    if (!oci && String(helm.chart).includes("/"))
      return [
        problemAt(
          at("chart"),
          `expected the chart's name in the repository's index, got "${String(helm.chart)}"`,
        ),
      ];
    return [];
  }
  for (const field of ["version", "auth", "caFile"])
    if (helm[field] !== undefined)
      return [
        problemAt(at(field), "only used with a chart from a Helm repository (repo) or an oci:// chart"),
      ];
  return [];
}

/** Why an app path is unusable, or undefined: it must be relative, "/"-separated and stay inside the repository. */
function appPathProblem(path: string): string | undefined {
  const shown = JSON.stringify(path);
  if (path.startsWith("/") || /^[A-Za-z]:/.test(path)) {
    return `expected a path relative to the repository root, got ${shown}`;
  }
  if (path.includes("\\")) return `expected "/" as separator, got ${shown}`;
  if (path.split("/").includes("..")) return `expected a path without "..", got ${shown}`;
  return undefined;
}

/** An app path in the form snapshots use: no "./", no trailing "/", "" for the root. */
export function normaliseAppPath(path: string): string {
  return path
    .split("/")
    .filter((part) => part !== "" && part !== ".")
    .join("/");
}

function isMapping(value: unknown): value is Raw {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
