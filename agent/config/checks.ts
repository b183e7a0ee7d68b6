/** Checks of berth.yaml that a JSON Schema cannot express: secrets, URLs, paths, app names and dependencies. */
import { findCycle } from "../object/dependency-order.ts";
import { messageOf } from "../object/errors.ts";
import { escapeRegExp } from "../object/regexp.ts";
import { parseRange } from "../object/semver-range.ts";
import { type ConfigProblem, fieldPath as fieldPathOf, problemAt } from "./problems.ts";

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
  const sources = isMapping(data) && isMapping(data.sources) ? Object.keys(data.sources) : [];
  // Every named source takes the same secrets as the top-level one.
  const perSource = sources.flatMap((name) => [
    { at: ["sources", name, "auth"], key: "token", use: "tokenFile or tokenEnv" },
    { at: ["sources", name, "auth"], key: "password", use: "passwordFile or passwordEnv" },
    { at: ["sources", name, "webhook"], key: "secret", use: "secretFile or secretEnv" },
  ]);
  const top = [{ at: ["source", "webhook"], key: "secret", use: "secretFile or secretEnv" }];
  for (const { at, key, use } of [...PLAINTEXT_SECRETS, ...top, ...perSource]) {
    const parent = at.reduce<unknown>((node, k) => (isMapping(node) ? node[k] : undefined), data);
    if (isMapping(parent) && key in parent) {
      // An OCI source's password comes from a file only (as a remote chart's).
      const oci = key === "password" && isOciMapping(sourceAt(data, at));
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

/** The source mapping a secret's path lies in: `source` or `sources.<name>`. */
function sourceAt(data: unknown, at: string[]): unknown {
  if (!isMapping(data)) return undefined;
  if (at[0] === "source") return data.source;
  if (at[0] === "sources" && isMapping(data.sources) && at[1] !== undefined) return data.sources[at[1]];
  return undefined;
}

function isOciMapping(node: unknown): boolean {
  return isMapping(node) && "oci" in node;
}

/**
 * `webhook` on an OCI source: a registry sends no Git push event, so the key is refused with why (checked
 * before the schema, whose "unknown field" would not say it).
 */
export function ociWebhookProblems(data: unknown): ConfigProblem[] {
  if (!isMapping(data)) return [];
  const named = isMapping(data.sources) ? Object.keys(data.sources).map((name) => ["sources", name]) : [];
  return [["source"], ...named]
    .filter((at) => {
      const source = sourceAt(data, at);
      return isOciMapping(source) && isMapping(source) && "webhook" in source;
    })
    .map((at) =>
      problemAt(
        [...at, "webhook"],
        "push webhooks do not apply to an OCI source (a registry sends no push event); drop webhook: the source is polled every interval, and `berth sync` fetches it at once",
      ),
    );
}

/** Problems of a config that already passed the schema. */
export function semanticProblems(data: Raw): ConfigProblem[] {
  return [
    ...sourcesProblems(data),
    ...exclusiveProblems(data),
    ...appProblems(data),
    ...tenantProblems(data),
    ...generateProblems(data),
    ...previewProblems(data),
    ...statusProblems(data),
  ];
}

/** The default source's forge is `status:` or `source.status`, not both. */
function statusProblems(data: Raw): ConfigProblem[] {
  const source = data.source as Raw | undefined;
  if (data.status !== undefined && source?.status !== undefined)
    return [
      problemAt(
        ["source", "status"],
        "the default source's forge is already set by the top-level `status`; keep one of them",
      ),
    ];
  return [];
}

/** `previews:` follows some refs, previews apps the config has, and comments only with a forge. */
function previewProblems(data: Raw): ConfigProblem[] {
  const previews = data.previews as
    | { refs?: string[]; branches?: string[]; apps: string[]; comment?: boolean }
    | undefined;
  if (previews === undefined) return [];
  const problems: ConfigProblem[] = [];
  if (previews.refs === undefined && previews.branches === undefined)
    problems.push(
      problemAt(["previews", "refs"], "set refs (e.g. refs/pull/*/head) or branches (e.g. preview/*)"),
    );
  if (previews.comment === true && data.status === undefined && (data.source as Raw)?.status === undefined)
    problems.push(problemAt(["previews", "comment"], "comments go to the forge of `status:`; set status"));
  const apps = data.apps as Array<{ name: string; source?: string }>;
  const names = new Set(apps.map((a) => a.name));
  previews.apps.forEach((name, i) => {
    if (!names.has(name)) problems.push(problemAt(["previews", "apps", i], `no app is named "${name}"`));
    // Previews follow Git refs (branches, pull requests); an OCI artifact has none.
    const source = apps.find((a) => a.name === name)?.source ?? "default";
    const node =
      source === "default" && data.source !== undefined ? data.source : (data.sources as Raw)?.[source];
    if (isOciMapping(node))
      problems.push(
        problemAt(
          ["previews", "apps", i],
          `app "${name}" reads source ${source}, an OCI artifact: previews follow Git refs (branches, pull requests), which it has none of`,
        ),
      );
  });
  return problems;
}

/** The names of every source: `default` for the top-level `source`, and the keys of `sources`. */
export function sourceNames(data: Raw): string[] {
  return [...(data.source !== undefined ? ["default"] : []), ...Object.keys((data.sources as Raw) ?? {})];
}

/** Each source's own checks, `source` or `sources`, never both for one name, and apps naming a known source. */
function sourcesProblems(data: Raw): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const named = (data.sources as Raw | undefined) ?? {};
  if (data.source === undefined && data.sources === undefined)
    return [problemAt([], "expected `source` (one Git repository) or `sources` (named sources)")];
  if (data.source !== undefined) problems.push(...sourceProblems(data.source as Raw, ["source"]));
  if (data.source !== undefined && "default" in named)
    problems.push(
      problemAt(
        ["sources", "default"],
        "the top-level `source` is the source named default; name this one differently, or drop `source`",
      ),
    );
  for (const [name, s] of Object.entries(named))
    problems.push(...sourceProblems(s as Raw, ["sources", name]));
  for (const [name, s] of Object.entries({ source: data.source, ...named })) {
    const hook = (s as Raw | undefined)?.webhook as Raw | undefined;
    if (hook && "secretFile" in hook && "secretEnv" in hook)
      problems.push(
        problemAt(
          [...(name === "source" ? ["source"] : ["sources", name]), "webhook"],
          "expected only one of secretFile, secretEnv",
        ),
      );
  }
  const names = sourceNames(data);
  const apps = (data.apps as { source?: string; name: string }[]) ?? [];
  apps.forEach((app, i) => {
    const name = app.source ?? "default";
    if (!names.includes(name))
      problems.push(
        problemAt(
          app.source === undefined ? ["apps", i] : ["apps", i, "source"],
          app.source === undefined
            ? `app "${app.name}" names no source and there is no top-level \`source\` to default to; expected source: one of ${names.join(", ")}`
            : `app "${app.name}": no source is named "${name}" (expected one of ${names.join(", ")})`,
        ),
      );
  });
  return problems;
}

/** A generator's source exists, its globs compile and its template expands to a valid app (checked on a sample). */
function generateProblems(data: Raw): ConfigProblem[] {
  const gens = (data.generate as Raw[] | undefined) ?? [];
  const names = sourceNames(data);
  const problems: ConfigProblem[] = [];
  gens.forEach((g, i) => {
    const source = (g.source as string | undefined) ?? "default";
    if (!names.includes(source))
      problems.push(
        problemAt(
          g.source === undefined ? ["generate", i] : ["generate", i, "source"],
          g.source === undefined
            ? `names no source and there is no top-level \`source\` to default to; expected source: one of ${names.join(", ")}`
            : `no source is named "${source}" (expected one of ${names.join(", ")})`,
        ),
      );
    const dirs = globProblem(String(g.dirs));
    if (dirs) problems.push(problemAt(["generate", i, "dirs"], dirs));
    ((g.exclude as string[] | undefined) ?? []).forEach((x, j) => {
      const bad = globProblem(x);
      if (bad) problems.push(problemAt(["generate", i, "exclude", j], bad));
    });
    const template = g.template as Raw;
    if ("source" in template)
      problems.push(
        problemAt(["generate", i, "template", "source"], "not used here; the generator's `source` names it"),
      );
    const placeholders = templatePlaceholders(template);
    for (const p of placeholders.unknown)
      problems.push(
        problemAt(
          ["generate", i, "template", ...p.at],
          `unknown placeholder {{${p.name}}}; expected {{dir}} or {{path}}`,
        ),
      );
    if (!/\{\{\s*(dir|path)\s*\}\}/.test(String(template.name)))
      problems.push(
        problemAt(
          ["generate", i, "template", "name"],
          `expected a name using {{dir}} (every directory needs an app name of its own), got ${JSON.stringify(template.name)}`,
        ),
      );
  });
  return problems;
}

/** What each generator's template.name can make: its {{dir}} and {{path}} stand for any text. */
function generatedNamePatterns(data: Raw): RegExp[] {
  const gens = Array.isArray(data.generate) ? (data.generate as Raw[]) : [];
  return gens.flatMap((g) => {
    const name = isMapping(g.template) ? g.template.name : undefined;
    if (typeof name !== "string") return [];
    const parts = name.split(/\{\{\s*(?:dir|path)\s*\}\}/).map(escapeRegExp);
    return [new RegExp(`^${parts.join(".+")}$`)];
  });
}

/** Why a directory glob cannot be used, or undefined. */
export function globProblem(glob: string): string | undefined {
  const shown = JSON.stringify(glob);
  if (glob.startsWith("/")) return `expected a glob relative to the repository root, got ${shown}`;
  if (glob.includes("\\")) return `expected "/" as separator, got ${shown}`;
  if (glob.split("/").some((s) => s === ".." || s === "." || s === ""))
    return `expected path segments without "", "." or "..", got ${shown}`;
  let open = false;
  for (const c of glob) {
    if (c === "[") {
      if (open) return `expected "]" before "[" in ${shown}`;
      open = true;
    } else if (c === "]") {
      if (!open) return `unbalanced "]" in ${shown}`;
      open = false;
    }
  }
  if (open) return `unclosed "[" in ${shown}`;
  if (/\*\*[^/]|[^/]\*\*/.test(glob)) return `expected "**" as a whole path segment, got ${shown}`;
  return undefined;
}

/** Placeholders in a template's string values: those berth does not know, with where they are. */
function templatePlaceholders(template: unknown): { unknown: { name: string; at: (string | number)[] }[] } {
  const unknown: { name: string; at: (string | number)[] }[] = [];
  const walk = (node: unknown, at: (string | number)[]) => {
    if (typeof node === "string") {
      for (const m of node.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g))
        if (m[1] !== "dir" && m[1] !== "path") unknown.push({ name: m[1] ?? "", at });
    } else if (Array.isArray(node)) {
      node.forEach((v, i) => {
        walk(v, [...at, i]);
      });
    } else if (isMapping(node)) for (const [k, v] of Object.entries(node)) walk(v, [...at, k]);
  };
  walk(template, []);
  return { unknown };
}

function sourceProblems(source: Raw, at: string[]): ConfigProblem[] {
  if (source.oci !== undefined) return ociSourceProblems(source, at);
  const url = String(source.url);
  // SSH (ssh:// or scp-like user@host:path) goes through the system git with a deploy key, never source.auth.
  if (/^ssh:\/\//i.test(url) || /^[^/:@\s]+@[^/:\s]+:/.test(url)) {
    if (source.ssh === undefined)
      return [problemAt([...at, "ssh"], "an SSH URL needs ssh.keyFile and ssh.knownHostsFile")];
    if (source.auth !== undefined)
      return [problemAt([...at, "auth"], "not used with an SSH URL; use ssh.keyFile")];
    return [];
  }
  if (source.ssh !== undefined)
    return [problemAt([...at, "ssh"], "only used with an ssh:// or user@host:path URL")];
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return [problemAt([...at, "url"], `expected an http or https URL, got ${JSON.stringify(url)}`)];
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    return [
      problemAt(
        [...at, "url"],
        `expected an http or https URL, got scheme "${parsed.protocol.slice(0, -1)}"`,
      ),
    ];
  }
  if (parsed.username !== "" || parsed.password !== "") {
    return [problemAt([...at, "url"], `credentials in the URL are not allowed; use ${fieldPathOf(at)}.auth`)];
  }
  const auth = source.auth as Raw | undefined;
  if (auth === undefined) return [];
  const secrets = ["tokenFile", "tokenEnv", "passwordFile", "passwordEnv"].filter((k) => k in auth);
  if (secrets.length === 0) {
    return [problemAt([...at, "auth"], "expected one of tokenFile, tokenEnv, passwordFile or passwordEnv")];
  }
  if (secrets.length > 1) {
    return [problemAt([...at, "auth"], `expected only one of ${secrets.join(", ")}`)];
  }
  if ("username" in auth && secrets[0]?.startsWith("token")) {
    return [
      problemAt([...at, "auth", "username"], `not used with ${secrets[0]}; use passwordFile or passwordEnv`),
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
  // A generated app is named once its directories are known (agent/config/generate.ts checks it then): a name
  // one of the generators' templates can make may be depended on now.
  const generated = generatedNamePatterns(data);
  apps.forEach((app, i) => {
    (app.dependsOn ?? []).forEach((dep, j) => {
      if (firstIndex.has(dep) || generated.some((re) => re.test(dep))) return;
      const also = generated.length > 0 ? " and no generator's template.name can make it" : "";
      problems.push(problemAt(["apps", i, "dependsOn", j], `no app is named "${dep}"${also}`));
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
