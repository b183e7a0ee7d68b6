/**
 * Loads `berth.yaml`: YAML → JSON Schema (schemas/config.schema.json) → extra checks → a normalised
 * `AgentConfig` (durations in milliseconds, defaults filled, file paths absolute).
 *
 * Editors complete and check the file when it starts with
 * `# yaml-language-server: $schema=https://berth.dev/schemas/config.schema.json` (or a path to
 * schemas/config.schema.json).
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { messageOf } from "../object/errors.ts";
import type { HelmChart } from "../object/object.ts";
import { PositionedYaml, YamlSyntaxError } from "../object/yaml-schema.ts";
import { normaliseAppPath, ociWebhookProblems, plaintextSecretProblems, semanticProblems } from "./checks.ts";
import { parseDuration } from "./duration.ts";
import { normaliseNotify, notifyPlaintextProblems, notifyProblems, type ReceiverConfig } from "./notify.ts";
import { ConfigError, type ConfigProblem, fieldPath, problemAt } from "./problems.ts";
import { schemaProblems } from "./schema-check.ts";

/** Where the Git credentials come from; file paths are absolute. Exactly one secret source is set. */
export interface GitAuthConfig {
  tokenFile?: string;
  tokenEnv?: string;
  username?: string;
  passwordFile?: string;
  passwordEnv?: string;
}

/** The Git repository to follow. Durations in milliseconds. */
export interface SourceConfig {
  kind?: "git";
  url: string;
  ref: string;
  interval: number;
  timeout: number;
  auth?: GitAuthConfig;
  /** SSH transport: deploy key and known_hosts files (absolute). */
  ssh?: { keyFile: string; knownHostsFile: string };
  /** Accept only commits signed by a key in this allowed-signers file (absolute). */
  verify?: { allowedSignersFile: string };
  /** This source's own webhook secret (file absolute); absent: `api.webhook`'s. */
  webhook?: { secretFile?: string; secretEnv?: string };
  /** Where this source's commit statuses go (`sources.<name>.status`; the default source's is `status:`). */
  status?: StatusConfig;
  /** What one fetch may bring, where berth.yaml sets it (the rest: agent/source/pack-check.ts's defaults). */
  limits?: FetchLimits;
}

/** `limits:` of a Git source. */
export interface FetchLimits {
  maxFetchBytes?: number;
  maxObjectBytes?: number;
  maxUnpackedBytes?: number;
  maxObjects?: number;
}

/** The name of the top-level `source:`, which apps without `source:` use. */
export const DEFAULT_SOURCE = "default";

/** One `generate:` entry: an app per directory of `source` matching `dirs` (agent/config/generate.ts). */
export interface GeneratorConfig {
  /** Its index in `generate`, for messages. */
  index: number;
  source: string;
  dirs: string;
  exclude: string[];
  /** The app fields with `{{dir}}` and `{{path}}` placeholders, as written. */
  template: Record<string, unknown>;
}

/**
 * An OCI artifact to follow (`source: { oci: … }`, schema `#/definitions/ociSource`): exactly one of tag, semver
 * and digest is set. Durations in milliseconds; file paths absolute.
 */
export interface OciSourceConfig {
  kind: "oci";
  /** `oci://host[:port]/repository`. */
  oci: string;
  tag?: string;
  semver?: string;
  digest?: string;
  interval: number;
  timeout: number;
  /** Basic auth, as for remote charts: the password is read from the file at every request. */
  auth?: { username: string; passwordFile: string };
  caFile?: string;
  /** Plain HTTP; false unless the config says `insecure: true`. */
  insecure: boolean;
}

/** Any source berth can follow. */
export type AnySourceConfig = SourceConfig | OciSourceConfig;

/** Whether a source is an OCI artifact. */
export function isOciSource(source: AnySourceConfig): source is OciSourceConfig {
  return source.kind === "oci";
}

/** What a push webhook's ref is compared with: the Git ref, or the OCI tag (or "" for semver/digest). */
export function sourceRefOf(source: AnySourceConfig): string {
  return isOciSource(source) ? (source.tag ?? "") : source.ref;
}

/** `render:` in berth.yaml: tool binaries (absent: PATH), limits, and the age key source; paths absolute. */
export interface RenderConfig {
  tools: { kustomize?: string; helm?: string; sops?: string };
  /** Milliseconds one tool run may take. */
  timeout: number;
  maxOutputBytes?: number;
  /** Bytes of one manifest file read from a source (render's default: 2 MiB). */
  maxFileBytes?: number;
  /** Documents and List items one app may render (render's default: 10,000). */
  maxDocuments?: number;
  /** Address space one tool run may map, bytes (0: no ceiling). */
  maxMemoryBytes?: number;
  /** CPU seconds one tool run may use (0: no limit). */
  maxCpuSeconds?: number;
  ageKeyFile?: string;
  ageKeyEnv?: string;
}

/** The share of an app's inventory one plan may delete without an approval. */
export const DEFAULT_PRUNE_MAX_FRACTION = 0.5;

/** `prune: { cascade, maxFraction }`: when pruning needs an approval. */
export interface PruneSafety {
  /** `allow`: Namespaces, CRDs, PVs and PVCs are pruned without an approval; `hold` (default) holds the sync. */
  cascade: "allow" | "hold";
  /** A plan deleting more than this fraction of the app's inventory is held (default 0.5). */
  maxFraction: number;
}

/** One app: the plain manifests under `path` (normalised: "/"-separated, no "./", "" for the root). */
export interface AppConfig {
  name: string;
  path: string;
  /** The source the path is read from (a key of AgentConfig.sources). */
  source: string;
  /** Set on an app made by `generate[index]` from the directory `dir`. */
  generated?: { index: number; dir: string };
  namespace?: string;
  dependsOn: string[];
  /** Delete objects that left Git (`prune: true|false`, or `prune: { enabled }`). */
  prune: boolean;
  /** The prune guards' settings, when `prune` is written as a mapping (agent/plan/prune-guard.ts has the defaults). */
  pruneSafety?: PruneSafety;
  /** Milliseconds; the source interval unless set. */
  interval: number;
  /** Milliseconds. */
  timeout: number;
  suspend: boolean;
  force: boolean;
  allowEmpty: boolean;
  /** Rendered objects left out (listed as skipped): by API group and optionally kind. */
  exclude?: Array<{ group: string; kind?: string }>;
  /** Kustomize settings, when the app path holds a kustomization. */
  kustomize?: { allowRemoteBases?: boolean };
  /**
   * A chart rendered with `helm template`: a chart directory in the repository, a chart from the Helm repository
   * `repo`, or an `oci://` chart (auth.passwordFile and caFile absolute). Values files are repository paths.
   */
  helm?: HelmChart;
  /** Variables substituted after rendering; substitution runs only when vars or varsFrom is set. */
  vars?: Record<string, string>;
  /** More variables, merged in order: local files (absolute paths) or ConfigMaps/Secrets in the cluster. */
  varsFrom?: Array<
    { file: string } | { kind: "ConfigMap" | "Secret"; name: string; namespace?: string; optional?: boolean }
  >;
  /** What to do about drift (agent/drift/policy.ts); absent: heal everything. */
  drift?: DriftSettings;
  /**
   * The ServiceAccount (in the app's `namespace`) berth impersonates for everything it does for this app, so
   * the API server's RBAC bounds it; the app's own setting, else `defaultServiceAccountName`.
   */
  serviceAccountName?: string;
  /** Namespaces the app's namespaced objects may be in; anything else is a plan error. Absent: any. */
  allowedNamespaces?: string[];
  /** Whether the app may hold cluster-scoped objects; absent: true. */
  clusterScoped?: boolean;
}

/** An app's drift policy, normalised from `drift: heal|alert` or its object form. */
export interface DriftSettings {
  action: "heal" | "alert";
  rules: Array<{ when: string; action: "heal" | "alert" | "ignore" }>;
  ignore: Record<string, string[]>;
}

/** The ledger database and the key that encrypts Secret data in it; paths absolute. */
export interface LedgerConfig {
  path: string;
  secretKeyFile?: string;
  secretKeyEnv?: string;
  /** What gc drops: entries older than maxAgeMs beyond each app's newest keepLast. */
  retention: RetentionConfig;
  replica?: ReplicaConfig;
}

/** `ledger.replica`: where the off-box copy lives and where its credentials come from (paths absolute). */
export interface ReplicaConfig {
  url: string;
  endpoint?: string;
  region?: string;
  accessKeyId?: string;
  accessKeyIdFile?: string;
  accessKeyIdEnv?: string;
  secretAccessKeyFile?: string;
  secretAccessKeyEnv?: string;
  /** Milliseconds between shipments. */
  interval: number;
}

/** `ledger.retention`; maxAge in milliseconds. */
export interface RetentionConfig {
  maxAgeMs: number;
  keepLast: number;
}

/**
 * 90 days and 500 entries an app: a quarter of history for audits and `replay --to`, and with no-op
 * resyncs folded into one entry, 500 entries are months of real changes for a busy app.
 */
export const DEFAULT_RETENTION: RetentionConfig = { maxAgeMs: 90 * 86_400_000, keepLast: 500 };

/** The HTTP API listener and its token source; paths absolute. */
export interface ApiConfig {
  listen: string;
  /** A token with the `operate` scope. */
  tokenFile?: string;
  tokenEnv?: string;
  /** More tokens, each from a file with its scope and a name (recorded as `api:<name>` on syncs it starts). */
  tokens?: Array<{ file: string; scope: "read" | "operate"; name?: string }>;
  /** Tokenless reads; honoured only on a loopback listener. */
  anonymousRead?: boolean;
  /** The webhook secret's source; maxAge in milliseconds. */
  webhook?: { secretFile?: string; secretEnv?: string; maxAge: number };
  /** The URL people reach the status page at; notifications link to it. */
  externalURL?: string;
}

/** A loaded, checked and normalised berth.yaml. */
export interface AgentConfig {
  apiVersion: "berth.dev/v1alpha1";
  kind: "Agent";
  /** Absolute path of the file this came from. */
  configPath: string;
  /** The top-level `source:`, when written (also `sources.default`): a Git repository or an OCI artifact. */
  source?: AnySourceConfig;
  /** Every source by name: `default` for the top-level `source:`, and each entry of `sources:`. */
  sources: Record<string, AnySourceConfig>;
  /** The static apps (`apps:`); generated apps come from expandGenerators (agent/config/generate.ts). */
  apps: AppConfig[];
  /** App generators; empty when none. */
  generate: GeneratorConfig[];
  /** Attempts of different apps at once (`berth run`, `berth sync`). */
  concurrency: number;
  /** Extra rule files or directories (a directory: its *.yaml/*.yml, not recursive), absolute. */
  rules: string[];
  ledger: LedgerConfig;
  api: ApiConfig;
  /** Render tools and keys; absent: tools on PATH, no age key. */
  render?: RenderConfig;
  /** Leader election between instances: only the Lease holder applies. */
  ha?: HaConfig;
  /** The ServiceAccount every app without its own `serviceAccountName` is synced as (Flux's default SA). */
  defaultServiceAccountName?: string;
  /** Notification receivers (agent/notify); absent or empty: none. */
  notify?: ReceiverConfig[];
  /** Previews of unmerged changes; absent: none. */
  previews?: PreviewsConfig;
  /** Commit statuses on the forge (agent/forge); absent: none. */
  status?: StatusConfig;
}

/** `previews:` in berth.yaml (agent/engine/previews.ts); interval in milliseconds. */
export interface PreviewsConfig {
  /** Full ref patterns, e.g. pull-request heads under refs/pull/. */
  refs: string[];
  /** Branch patterns, matched under refs/heads/. */
  branches: string[];
  /** The apps previewed at each head. */
  apps: string[];
  /** The newest this many matching refs are followed (default 20). */
  maxRefs: number;
  interval: number;
  /** Refs previewed at once (default 1). */
  concurrency: number;
  /** Also comment on the pull request with the changes (needs `status:`, the forge). */
  comment: boolean;
}

/** `status:` in berth.yaml: where commit statuses go; tokenFile absolute, timeout in milliseconds. */
export interface StatusConfig {
  provider: "github" | "gitlab" | "gitea";
  url: string;
  tokenFile: string;
  timeout: number;
}

/** `ha:` in berth.yaml; duration in milliseconds. */
export interface HaConfig {
  lease: string;
  namespace: string;
  duration: number;
}

/** Defaults for fields berth.yaml may leave out. */
export const CONFIG_DEFAULTS = {
  ref: "main",
  interval: 60_000,
  sourceTimeout: 60_000,
  appTimeout: 300_000,
  ledgerPath: "berth-ledger.db",
  listen: "127.0.0.1:7420",
  webhookMaxAge: 300_000,
  concurrency: 4,
  previewMaxRefs: 20,
} as const;

/** Reads and parses a config file; errors name the file. */
export function loadConfig(path: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const code = (err as { code?: string }).code;
    const why = code === "ENOENT" ? "no such file" : messageOf(err);
    throw new ConfigError(path, [{ field: "", segments: [], message: `cannot read config file: ${why}` }]);
  }
  return parseConfig(text, path);
}

/** Parses config text; `file` names it in messages and anchors relative paths. Throws ConfigError. */
export function parseConfig(text: string, file: string): AgentConfig {
  let yaml: PositionedYaml;
  try {
    yaml = PositionedYaml.parse(text);
  } catch (err) {
    if (!(err instanceof YamlSyntaxError)) throw err;
    const { line, col, message } = err.problem;
    throw new ConfigError(file, [problemAt([], line === undefined ? message : `${line}:${col}: ${message}`)]);
  }
  const data = yaml.data;
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    const problem = problemAt([], "expected a mapping with apiVersion, kind, source and apps");
    throw new ConfigError(file, [problem]);
  }
  // Checked before the schema: these say more than its "unknown field" for the same key.
  const secrets = [
    ...plaintextSecretProblems(data),
    ...notifyPlaintextProblems(data),
    ...ociWebhookProblems(data),
  ];
  const secretFields = new Set(secrets.map((p) => p.field));
  let problems = [...secrets, ...schemaProblems(data).filter((p) => !secretFields.has(p.field))];
  if (problems.length === 0)
    problems = [
      ...semanticProblems(data as Record<string, unknown>),
      ...notifyProblems(data as Record<string, unknown>),
    ];
  if (problems.length > 0)
    throw new ConfigError(
      file,
      problems.map((p) => yaml.locate(p)),
    );
  const config = normalise(data as RawConfig, resolve(file));
  // A template is checked now on a sample directory, so a wrong field fails at start-up, not at the first poll.
  const sample = config.generate.flatMap((g) => {
    const fields = fillSample(g.template) as Record<string, unknown>;
    const app = generatedApp(config, g, fields);
    if (!Array.isArray(app)) return [];
    return app.map((p) => {
      const segments = ["generate", g.index, "template", ...p.segments];
      const message = `${p.message} (checked with {{dir}} = example, {{path}} = apps/example)`;
      return yaml.locate(problemAt(segments, message));
    });
  });
  if (sample.length > 0) throw new ConfigError(file, sample);
  return config;
}

/** A template filled for a made-up directory `apps/example`. */
function fillSample(template: unknown): unknown {
  if (typeof template === "string")
    return template.replace(/\{\{\s*(dir|path)\s*\}\}/g, (_, n: string) =>
      n === "dir" ? "example" : "apps/example",
    );
  if (Array.isArray(template)) return template.map(fillSample);
  if (template !== null && typeof template === "object")
    return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, fillSample(v)]));
  return template;
}

/** `source:` (or a `sources:` entry) as written for an OCI artifact. */
interface RawOciSource {
  oci: string;
  tag?: string;
  semver?: string;
  digest?: string;
  interval?: string;
  timeout?: string;
  auth?: { username: string; passwordFile: string };
  caFile?: string;
  insecure?: boolean;
}

interface RawGitSource {
  url: string;
  ref?: string;
  interval?: string;
  timeout?: string;
  auth?: Record<string, string>;
  ssh?: { keyFile: string; knownHostsFile: string };
  verify?: { allowedSignersFile: string };
  webhook?: { secretFile?: string; secretEnv?: string };
  status?: RawStatus;
  limits?: FetchLimits;
}

type RawSource = RawGitSource | RawOciSource;
type RawStatus = { provider: StatusConfig["provider"]; url: string; tokenFile: string; timeout?: string };

type RawApp = Omit<
  AppConfig,
  "dependsOn" | "prune" | "interval" | "timeout" | "suspend" | "force" | "allowEmpty" | "drift" | "source"
> & {
  source?: string;
  drift?: "heal" | "alert" | Partial<DriftSettings>;
  dependsOn?: string[];
  prune?: boolean | { enabled?: boolean; cascade?: "allow" | "hold"; maxFraction?: number };
  interval?: string;
  timeout?: string;
  suspend?: boolean;
  force?: boolean;
  allowEmpty?: boolean;
};

interface RawConfig {
  source?: RawSource;
  sources?: Record<string, RawSource>;
  generate?: Array<{ source?: string; dirs: string; exclude?: string[]; template: Record<string, unknown> }>;
  render?: {
    kustomize?: string;
    helm?: string;
    sops?: string;
    timeout?: string;
    maxOutputBytes?: number;
    maxFileBytes?: number;
    maxDocuments?: number;
    maxMemory?: number | string;
    maxCpu?: string;
    ageKeyFile?: string;
    ageKeyEnv?: string;
  };
  apps: RawApp[];
  rules?: string[];
  ledger?: {
    path?: string;
    secretKeyFile?: string;
    secretKeyEnv?: string;
    replica?: Omit<ReplicaConfig, "interval"> & { interval?: string };
    retention?: { maxAge?: string; keepLast?: number };
  };
  api?: {
    listen?: string;
    tokenFile?: string;
    tokenEnv?: string;
    tokens?: Array<{ file: string; scope: "read" | "operate"; name?: string }>;
    anonymousRead?: boolean;
    webhook?: { secretFile?: string; secretEnv?: string; maxAge?: string };
    externalURL?: string;
  };
  notify?: Record<string, unknown>[];
  previews?: {
    refs?: string[];
    branches?: string[];
    apps: string[];
    maxRefs?: number;
    interval?: string;
    concurrency?: number;
    comment?: boolean;
  };
  status?: RawStatus;
  ha?: { lease: string; namespace: string; duration?: string };
  defaultServiceAccountName?: string;
  concurrency?: number;
}

function normalise(raw: RawConfig, configPath: string): AgentConfig {
  const base = dirname(configPath);
  const abs = (path: string): string => (isAbsolute(path) ? path : resolve(base, path));
  const ms = (text: string | undefined, fallback: number): number =>
    text === undefined ? fallback : (parseDuration(text) ?? fallback);
  const sources: Record<string, AnySourceConfig> = {};
  const defaultStatus = raw.status ?? (raw.source && "url" in raw.source ? raw.source.status : undefined);
  if (raw.source) sources[DEFAULT_SOURCE] = sourceConfig(raw.source, abs, ms);
  for (const [name, s] of Object.entries(raw.sources ?? {})) sources[name] = sourceConfig(s, abs, ms);
  const context = { abs, ms, sources, defaultServiceAccountName: raw.defaultServiceAccountName };
  const apps = raw.apps.map((app) => normaliseApp(app, context));
  const generate = (raw.generate ?? []).map(
    (g, index): GeneratorConfig => ({
      index,
      source: g.source ?? DEFAULT_SOURCE,
      dirs: g.dirs,
      exclude: g.exclude ?? [],
      template: g.template,
    }),
  );
  const ledger: LedgerConfig = {
    path: abs(raw.ledger?.path ?? CONFIG_DEFAULTS.ledgerPath),
    retention: {
      maxAgeMs: ms(raw.ledger?.retention?.maxAge, DEFAULT_RETENTION.maxAgeMs),
      keepLast: raw.ledger?.retention?.keepLast ?? DEFAULT_RETENTION.keepLast,
    },
  };
  if (raw.ledger?.secretKeyFile !== undefined) ledger.secretKeyFile = abs(raw.ledger.secretKeyFile);
  if (raw.ledger?.secretKeyEnv !== undefined) ledger.secretKeyEnv = raw.ledger.secretKeyEnv;
  const replica = raw.ledger?.replica;
  if (replica) {
    const { interval, accessKeyIdFile, secretAccessKeyFile, ...rest } = replica;
    ledger.replica = {
      ...rest,
      ...(accessKeyIdFile !== undefined ? { accessKeyIdFile: abs(accessKeyIdFile) } : {}),
      ...(secretAccessKeyFile !== undefined ? { secretAccessKeyFile: abs(secretAccessKeyFile) } : {}),
      interval: ms(interval, 2000),
    };
  }
  const api: ApiConfig = { listen: raw.api?.listen ?? CONFIG_DEFAULTS.listen };
  if (raw.api?.tokens)
    api.tokens = raw.api.tokens.map((t) => ({
      file: abs(t.file),
      scope: t.scope,
      ...(t.name !== undefined ? { name: t.name } : {}),
    }));
  if (raw.api?.anonymousRead !== undefined) api.anonymousRead = raw.api.anonymousRead;
  if (raw.api?.tokenFile !== undefined) api.tokenFile = abs(raw.api.tokenFile);
  if (raw.api?.tokenEnv !== undefined) api.tokenEnv = raw.api.tokenEnv;
  if (raw.api?.externalURL !== undefined) api.externalURL = raw.api.externalURL.replace(/\/+$/, "");
  const hook = raw.api?.webhook;
  if (hook) {
    api.webhook = { maxAge: ms(hook.maxAge, CONFIG_DEFAULTS.webhookMaxAge) };
    if (hook.secretFile !== undefined) api.webhook.secretFile = abs(hook.secretFile);
    if (hook.secretEnv !== undefined) api.webhook.secretEnv = hook.secretEnv;
  }
  return {
    apiVersion: "berth.dev/v1alpha1",
    kind: "Agent",
    configPath,
    ...(sources[DEFAULT_SOURCE] && raw.source ? { source: sources[DEFAULT_SOURCE] } : {}),
    sources,
    apps,
    generate,
    concurrency: raw.concurrency ?? CONFIG_DEFAULTS.concurrency,
    rules: (raw.rules ?? []).map(abs),
    ledger,
    api,
    ...(raw.render ? { render: renderConfig(raw.render, abs, ms) } : {}),
    ...(raw.defaultServiceAccountName !== undefined
      ? { defaultServiceAccountName: raw.defaultServiceAccountName }
      : {}),
    ...(raw.ha
      ? { ha: { lease: raw.ha.lease, namespace: raw.ha.namespace, duration: ms(raw.ha.duration, 15_000) } }
      : {}),
    ...(raw.notify && raw.notify.length > 0 ? { notify: normaliseNotify(raw.notify, abs) } : {}),
    ...(raw.previews
      ? {
          previews: {
            refs: raw.previews.refs ?? [],
            branches: raw.previews.branches ?? [],
            apps: raw.previews.apps,
            maxRefs: raw.previews.maxRefs ?? CONFIG_DEFAULTS.previewMaxRefs,
            interval: ms(
              raw.previews.interval,
              sources[DEFAULT_SOURCE]?.interval ?? CONFIG_DEFAULTS.interval,
            ),
            concurrency: raw.previews.concurrency ?? 1,
            comment: raw.previews.comment ?? false,
          },
        }
      : {}),
    // `source.status` is the same as the top-level `status` (the checks refuse both at once).
    ...(defaultStatus ? { status: statusConfig(defaultStatus, abs, ms) } : {}),
  };
}

/** A `status:` block's normalised form. */
function statusConfig(
  raw: RawStatus,
  abs: (path: string) => string,
  ms: (text: string | undefined, fallback: number) => number,
): StatusConfig {
  return {
    provider: raw.provider,
    url: raw.url.replace(/\/+$/, ""),
    tokenFile: abs(raw.tokenFile),
    timeout: ms(raw.timeout, 10_000),
  };
}

/** What normalising one app needs from the rest of the config. */
interface AppContext {
  abs: (path: string) => string;
  ms: (text: string | undefined, fallback: number) => number;
  sources: Record<string, AnySourceConfig>;
  defaultServiceAccountName: string | undefined;
}

/** A source's normalised form: a mapping with `oci` is an OCI artifact (as the schema reads it), else Git. */
function sourceConfig(
  raw: RawSource,
  abs: (path: string) => string,
  ms: (text: string | undefined, fallback: number) => number,
): AnySourceConfig {
  return "oci" in raw ? ociSource(raw, abs, ms) : gitSource(raw, abs, ms);
}

function normaliseApp(app: RawApp, ctx: AppContext): AppConfig {
  const { abs, ms } = ctx;
  const source = app.source ?? DEFAULT_SOURCE;
  const out: AppConfig = {
    name: app.name,
    path: normaliseAppPath(app.path),
    source,
    dependsOn: app.dependsOn ?? [],
    prune: typeof app.prune === "object" ? (app.prune.enabled ?? true) : (app.prune ?? true),
    interval: ms(app.interval, ctx.sources[source]?.interval ?? CONFIG_DEFAULTS.interval),
    timeout: ms(app.timeout, CONFIG_DEFAULTS.appTimeout),
    suspend: app.suspend ?? false,
    force: app.force ?? false,
    allowEmpty: app.allowEmpty ?? false,
  };
  if (app.clusterScoped !== undefined) out.clusterScoped = app.clusterScoped;
  const serviceAccountName = app.serviceAccountName ?? ctx.defaultServiceAccountName;
  if (serviceAccountName !== undefined) out.serviceAccountName = serviceAccountName;
  if (app.allowedNamespaces !== undefined) out.allowedNamespaces = app.allowedNamespaces;
  if (app.drift !== undefined) out.drift = driftSettings(app.drift);
  if (typeof app.prune === "object")
    out.pruneSafety = {
      cascade: app.prune.cascade ?? "hold",
      maxFraction: app.prune.maxFraction ?? DEFAULT_PRUNE_MAX_FRACTION,
    };
  if (app.namespace !== undefined) out.namespace = app.namespace;
  if (app.kustomize !== undefined) out.kustomize = app.kustomize;
  if (app.exclude !== undefined) out.exclude = app.exclude;
  if (app.helm !== undefined) {
    const { auth, caFile, ...helm } = app.helm;
    out.helm = {
      ...helm,
      ...(auth ? { auth: { username: auth.username, passwordFile: abs(auth.passwordFile) } } : {}),
      ...(caFile !== undefined ? { caFile: abs(caFile) } : {}),
    };
  }
  if (app.vars !== undefined) out.vars = app.vars;
  if (app.varsFrom !== undefined)
    out.varsFrom = app.varsFrom.map((v) => ("file" in v ? { file: abs(v.file) } : v));
  return out;
}

/**
 * One generated app from its already substituted fields: checked like an app in `apps` (schema, path, chart
 * and tenant checks; its dependsOn is checked once every app is known), then normalised. Problems come back
 * with fields relative to the app (`namespace`, `helm.chart`).
 */
export function generatedApp(
  config: AgentConfig,
  generator: GeneratorConfig,
  fields: Record<string, unknown>,
): AppConfig | ConfigProblem[] {
  const { dependsOn, ...rest } = fields;
  // The app alone in a config of its own: the same schema and checks as a written app, fields under apps[0].
  const wrapper: Record<string, unknown> = {
    apiVersion: "berth.dev/v1alpha1",
    kind: "Agent",
    source: { url: "https://generated.invalid/" },
    apps: [rest],
    ...(config.defaultServiceAccountName !== undefined
      ? { defaultServiceAccountName: config.defaultServiceAccountName }
      : {}),
  };
  let problems = schemaProblems(wrapper);
  if (dependsOn !== undefined && (!Array.isArray(dependsOn) || dependsOn.some((d) => typeof d !== "string")))
    problems.push(problemAt(["apps", 0, "dependsOn"], "expected a list of app names"));
  if (problems.length === 0) problems = semanticProblems(wrapper);
  if (problems.length > 0)
    return problems.map((p) => {
      const segments = p.segments.slice(2);
      return { ...p, segments, field: fieldPath(segments) };
    });
  const base = dirname(config.configPath);
  return normaliseApp(
    { ...(rest as RawApp), source: generator.source, dependsOn: (dependsOn as string[]) ?? [] },
    {
      abs: (path) => (isAbsolute(path) ? path : resolve(base, path)),
      ms: (text, fallback) => (text === undefined ? fallback : (parseDuration(text) ?? fallback)),
      sources: config.sources,
      defaultServiceAccountName: config.defaultServiceAccountName,
    },
  );
}

function driftSettings(raw: "heal" | "alert" | Partial<DriftSettings>): DriftSettings {
  if (typeof raw === "string") return { action: raw, rules: [], ignore: {} };
  return { action: raw.action ?? "heal", rules: raw.rules ?? [], ignore: raw.ignore ?? {} };
}

function renderConfig(
  raw: NonNullable<RawConfig["render"]>,
  abs: (path: string) => string,
  ms: (text: string | undefined, fallback: number) => number,
): RenderConfig {
  const tools: RenderConfig["tools"] = {};
  if (raw.kustomize !== undefined) tools.kustomize = abs(raw.kustomize);
  if (raw.helm !== undefined) tools.helm = abs(raw.helm);
  if (raw.sops !== undefined) tools.sops = abs(raw.sops);
  const out: RenderConfig = { tools, timeout: ms(raw.timeout, 60_000) };
  if (raw.maxOutputBytes !== undefined) out.maxOutputBytes = raw.maxOutputBytes;
  if (raw.maxFileBytes !== undefined) out.maxFileBytes = raw.maxFileBytes;
  if (raw.maxDocuments !== undefined) out.maxDocuments = raw.maxDocuments;
  if (raw.maxMemory !== undefined) out.maxMemoryBytes = quantityBytes(raw.maxMemory);
  if (raw.maxCpu !== undefined) out.maxCpuSeconds = Math.ceil(ms(raw.maxCpu, 60_000) / 1000);
  if (raw.ageKeyFile !== undefined) out.ageKeyFile = abs(raw.ageKeyFile);
  if (raw.ageKeyEnv !== undefined) out.ageKeyEnv = raw.ageKeyEnv;
  return out;
}

/** Bytes of a schema-checked quantity: an integer, or digits with Ki/Mi/Gi. */
function quantityBytes(q: number | string): number {
  if (typeof q === "number") return q;
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30 }[q.replace(/^[0-9]+/, "")] ?? 1;
  return Number.parseInt(q, 10) * unit;
}

function gitAuth(raw: Record<string, string>, abs: (path: string) => string): GitAuthConfig {
  const auth: GitAuthConfig = {};
  if (raw.tokenFile !== undefined) auth.tokenFile = abs(raw.tokenFile);
  if (raw.tokenEnv !== undefined) auth.tokenEnv = raw.tokenEnv;
  if (raw.username !== undefined) auth.username = raw.username;
  if (raw.passwordFile !== undefined) auth.passwordFile = abs(raw.passwordFile);
  if (raw.passwordEnv !== undefined) auth.passwordEnv = raw.passwordEnv;
  return auth;
}

function gitSource(
  raw: RawGitSource,
  abs: (path: string) => string,
  ms: (text: string | undefined, fallback: number) => number,
): SourceConfig {
  const source: SourceConfig = {
    url: raw.url,
    ref: raw.ref ?? CONFIG_DEFAULTS.ref,
    interval: ms(raw.interval, CONFIG_DEFAULTS.interval),
    timeout: ms(raw.timeout, CONFIG_DEFAULTS.sourceTimeout),
  };
  if (raw.auth) source.auth = gitAuth(raw.auth, abs);
  if (raw.ssh) source.ssh = { keyFile: abs(raw.ssh.keyFile), knownHostsFile: abs(raw.ssh.knownHostsFile) };
  if (raw.verify) source.verify = { allowedSignersFile: abs(raw.verify.allowedSignersFile) };
  if (raw.status) source.status = statusConfig(raw.status, abs, ms);
  if (raw.limits) source.limits = { ...raw.limits };
  if (raw.webhook)
    source.webhook = {
      ...(raw.webhook.secretFile !== undefined ? { secretFile: abs(raw.webhook.secretFile) } : {}),
      ...(raw.webhook.secretEnv !== undefined ? { secretEnv: raw.webhook.secretEnv } : {}),
    };
  return source;
}

/** An OCI source's normalised form (the top-level `source` or a `sources:` entry). */
export function ociSource(
  raw: RawOciSource,
  abs: (path: string) => string,
  ms: (text: string | undefined, fallback: number) => number,
): OciSourceConfig {
  const source: OciSourceConfig = {
    kind: "oci",
    oci: raw.oci.replace(/\/+$/, ""),
    interval: ms(raw.interval, CONFIG_DEFAULTS.interval),
    timeout: ms(raw.timeout, CONFIG_DEFAULTS.sourceTimeout),
    insecure: raw.insecure === true,
  };
  if (raw.tag !== undefined) source.tag = raw.tag;
  if (raw.semver !== undefined) source.semver = raw.semver;
  if (raw.digest !== undefined) source.digest = raw.digest;
  if (raw.auth) source.auth = { username: raw.auth.username, passwordFile: abs(raw.auth.passwordFile) };
  if (raw.caFile !== undefined) source.caFile = abs(raw.caFile);
  return source;
}
