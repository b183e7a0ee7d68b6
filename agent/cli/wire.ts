/** Builds the engine's dependencies from a loaded config: the one place concrete adapters meet. */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import {
  type AgentConfig,
  type AnySourceConfig,
  type AppConfig,
  DEFAULT_SOURCE,
  isOciSource,
  loadConfig,
  type OciSourceConfig,
  type SourceConfig,
} from "../config/config.ts";
import { readSecretEnv, readSecretFile, resolveGitCredentials } from "../config/credentials.ts";
import { compileWhen } from "../config/notify.ts";
import { type DriftReport, DriftWatcher } from "../drift/drift.ts";
import { DriftPolicy } from "../drift/policy.ts";
import { EventBus } from "../engine/events.ts";
import type { Logger } from "../engine/log.ts";
import type { SourceView } from "../engine/loop.ts";
import { Metrics } from "../engine/metrics.ts";
import type {
  EngineDeps,
  EngineEvent,
  PreviewReporter,
  RefPreview,
  RenderPort,
  SourcePort,
} from "../engine/ports.ts";
import { PreviewLane, type PreviewStore } from "../engine/previews.ts";
import { StatusTracker, statusOutlet, statusPayload } from "../forge/commit-status.ts";
import { createForgeClient, type ForgeClient } from "../forge/forge.ts";
import { defaultHealthChecker } from "../health/assess.ts";
import { waitingWords } from "../health/words.ts";
import { KubeClient, type KubeTarget, serviceAccountUser } from "../kube/client.ts";
import { LiveView } from "../kube/view.ts";
import { Ledger } from "../ledger/ledger.ts";
import { S3Store } from "../ledger/s3-store.ts";
import { driftEvent } from "../notify/event.ts";
import { Notifier, type Outlet, type Receiver } from "../notify/notifier.ts";
import { BerthError, messageOf } from "../object/errors.ts";
import { type KubeObject, refOf } from "../object/object.ts";
import type { RenderMemo } from "../object/records.ts";
import { RuleHealthJudge } from "../policy/health-rules.ts";
import { RulePolicy } from "../policy/policy.ts";
import { RuleSet } from "../policy/rule-set.ts";
import { type AppRenderSpec, type RenderEnvironment, renderApp } from "../render/app.ts";
import { sharedParsePool } from "../render/parse-pool.ts";
import type { ParseMemo } from "../render/plain.ts";
import { durableRenderKey, RenderCache, renderKey } from "../render/render-cache.ts";
import { valuesOfConfigObject } from "../render/substitute.ts";
import { findTool, type ToolSettings } from "../render/tools.ts";
import { GitSource } from "../source/git-source.ts";
import { OciSource } from "../source/oci-source.ts";
import { matchRefs, pullRequestOf } from "../source/refs.ts";
import { isSshUrl, SshSource } from "../source/ssh-source.ts";
import { VerifiedSource } from "../source/verify.ts";
import { buildInfo } from "../version.ts";
import { commentOutlet, outboxPreviewReporter } from "./preview-reporter.ts";
import { chartSources, configuredSourceStates } from "./source-watch.ts";

/** Global flags every command accepts. */
export interface GlobalFlags {
  config: string;
  kubeconfig?: string;
  context?: string;
}

/** Everything a command may use; close() releases the ledger. */
export interface Wired {
  config: AgentConfig;
  deps: EngineDeps;
  ledger: Ledger;
  /** The agent's own client; apps with a ServiceAccount must use clientFor. */
  kube: KubeClient;
  /** The client acting for an app: its ServiceAccount impersonated, or the agent's own without one. */
  clientFor(app: string): KubeClient;
  /** The `default` source (or, without one, the first named). */
  source: SourcePort & { readonly url: string };
  /** Every source by name. */
  sources: ReadonlyMap<string, SourcePort & { readonly url: string }>;
  /** A source's repository itself, unverified (default: the `default` source): previews and `plan --ref` read other refs of it. */
  repository(name?: string): GitSource | SshSource;
  /** Every engine event, for the HTTP event stream. */
  events: EventBus;
  metrics: Metrics;
  close(): void;
}

/** Loads the config, opens the ledger and connects the source and the cluster. */
export async function wire(flags: GlobalFlags, log: Logger, emit?: (e: EngineEvent) => void): Promise<Wired> {
  const config = loadConfig(flags.config);
  // Rules compile before anything opens: a bad rule is an input error naming file, line and rule.
  const rules = RuleSet.load(config.rules);
  const ledger = await openLedger(config);
  const target: KubeTarget = {};
  if (flags.kubeconfig) target.kubeconfig = flags.kubeconfig;
  if (flags.context) target.context = flags.context;
  let kube: KubeClient;
  try {
    kube = KubeClient.connect(target);
  } catch (err) {
    ledger.close();
    throw err;
  }
  const clientFor = appClients(config, kube);
  const events = new EventBus();
  const metrics = new Metrics();
  const stateDir = dirname(config.ledger.path);
  // Every source its own port: each is fetched and polled on its own (the loop asks them independently).
  const sources = new Map<string, SourcePort & { readonly url: string }>();
  for (const [name, s] of Object.entries(config.sources)) sources.set(name, sourceFor(s, stateDir, metrics));
  const source = (sources.get(DEFAULT_SOURCE) ?? sources.values().next().value) as SourcePort & {
    readonly url: string;
  };
  const deps: EngineDeps = {
    source,
    sources,
    render: renderPortFor(config, kube, clientFor, log, undefined, ledger),
    cluster: kube,
    clusterFor: (app) => {
      // A generated app is not among the configured ones clientFor knows: its own spec names its identity.
      const a = app as Partial<AppConfig>;
      return a.generated && a.serviceAccountName && a.namespace
        ? kube.as(serviceAccountUser(a.namespace, a.serviceAccountName))
        : clientFor(app.name);
    },
    ledger,
    health: new RuleHealthJudge(() => rules.health, { ...defaultHealthChecker, describe: waitingWords }),
    policy: new RulePolicy(rules, undefined, (app, revision) => ledger.approvalFor(app, revision)),
    log,
    emit: (e) => {
      emit?.(e);
      metrics.observe(e);
      events.emit(e);
    },
  };
  return {
    config,
    deps,
    ledger,
    kube,
    clientFor,
    source,
    sources,
    repository: (name) => {
      const s = config.sources[name ?? DEFAULT_SOURCE] ?? Object.values(config.sources)[0];
      if (!s) throw new BerthError("no source configured", { subject: config.configPath });
      if (isOciSource(s))
        throw new BerthError(
          `source ${name ?? DEFAULT_SOURCE} is an OCI artifact: it has no Git refs to read (previews, plan --ref)`,
          { subject: config.configPath },
        );
      return repositoryFor(s, join(stateDir, "git-cache"), metrics);
    },
    events,
    metrics,
    close: () => ledger.close(),
  };
}

/** The port of one Git source: HTTP(S) or SSH, behind signature verification when configured. */
export function gitSourceFor(
  s: SourceConfig,
  cacheDir: string,
  metrics?: Metrics,
): SourcePort & { readonly url: string } {
  const git = repositoryFor(s, cacheDir, metrics);
  return s.verify ? new VerifiedSource(git, s.verify.allowedSignersFile) : git;
}

/** The port of one source: an OCI artifact, or a Git repository (gitSourceFor). */
export function sourceFor(
  cfg: AnySourceConfig,
  stateDir: string,
  metrics?: Metrics,
): SourcePort & { readonly url: string } {
  // OCI blobs are cached by digest, so every OCI source shares one directory.
  if (isOciSource(cfg)) return ociSourceFor(cfg, join(stateDir, "oci-cache"), metrics);
  return gitSourceFor(cfg, join(stateDir, "git-cache"), metrics);
}

/** An OCI artifact source; the password file is read at every request, the CA once. */
export function ociSourceFor(cfg: OciSourceConfig, cacheDir: string, metrics?: Metrics): OciSource {
  const auth = cfg.auth;
  return new OciSource({
    url: cfg.oci,
    ...(cfg.tag !== undefined ? { tag: cfg.tag } : {}),
    ...(cfg.semver !== undefined ? { semver: cfg.semver } : {}),
    ...(cfg.digest !== undefined ? { digest: cfg.digest } : {}),
    cacheDir,
    ...(auth
      ? {
          credentials: () => ({
            username: auth.username,
            password: readSecretFile(auth.passwordFile, "the OCI source's auth.passwordFile"),
          }),
        }
      : {}),
    ...(cfg.caFile !== undefined ? { ca: readSecretFile(cfg.caFile, "the OCI source's caFile") } : {}),
    insecure: cfg.insecure,
    timeoutMs: cfg.timeout,
    ...(metrics
      ? {
          onRequest: (_m: string, _p: string, status: number | undefined) =>
            metrics.gitRequest(status !== undefined && status < 400),
        }
      : {}),
  });
}

/** The repository of one source without signature verification (previews never apply what they read). */
export function repositoryFor(s: SourceConfig, cacheDir: string, metrics?: Metrics): GitSource | SshSource {
  const { maxFetchBytes, maxObjectBytes, maxUnpackedBytes, maxObjects } = s.limits ?? {};
  const limits = {
    ...(maxFetchBytes !== undefined ? { maxPackBytes: maxFetchBytes } : {}),
    ...(maxObjectBytes !== undefined ? { maxObjectBytes } : {}),
    ...(maxUnpackedBytes !== undefined ? { maxUnpackedBytes } : {}),
    ...(maxObjects !== undefined ? { maxObjects } : {}),
  };
  return s.ssh && isSshUrl(s.url)
    ? new SshSource({ url: s.url, ref: s.ref, cacheDir, ssh: s.ssh, timeoutMs: s.timeout, limits })
    : new GitSource({
        url: s.url,
        ref: s.ref,
        cacheDir,
        credentials: () => resolveGitCredentials(s.auth),
        timeoutMs: s.timeout,
        limits,
        ...(metrics ? { onRequest: (_kind: string, ok: boolean) => metrics.gitRequest(ok) } : {}),
      });
}

/**
 * Per app, the client its syncs use: an app with a `serviceAccountName` acts as
 * `system:serviceaccount:<app namespace>:<name>` for every read and write, so the API server's RBAC bounds what
 * a push to its path can touch. Unknown names (not in the config) get the agent's own client.
 */
export function appClients(config: AgentConfig, kube: KubeClient): (app: string) => KubeClient {
  const users = new Map<string, string>();
  for (const a of config.apps)
    if (a.serviceAccountName && a.namespace)
      users.set(a.name, serviceAccountUser(a.namespace, a.serviceAccountName));
  return (app) => {
    const user = users.get(app);
    return user ? kube.as(user) : kube;
  };
}

/** A live view for one-shot commands: one list per kind instead of a GET (and dry-run) per object. */
export function wireLiveView(w: Wired): { close(): Promise<void> } {
  const view = new LiveView(w.kube, {
    clientFor: w.clientFor,
    defaultNamespace: namespaceIn(() => w.config.apps),
  });
  w.deps.live = view;
  return {
    close: async () => {
      delete w.deps.live;
      await view.close();
    },
  };
}

/** The watch view and drift watcher of `berth run`; close() stops the watches. */
export interface DriftWiring {
  view: LiveView;
  watcher: DriftWatcher;
  /** A stop began: watches ending from now on are not warned about. */
  stopping(): void;
  close(): Promise<void>;
}

/**
 * Starts drift detection for a wired agent: a live view (which the plan then reads, via deps.live),
 * a drift watcher fed by it, and the engine events that tell it when an app is mid-sync.
 */
export function wireDrift(
  w: Wired,
  log: Logger,
  onDrift?: (r: DriftReport) => void,
  apps: () => readonly AppConfig[] = () => w.config.apps,
): DriftWiring {
  // Compiled per app on first use, so a generated app (its template's `drift`) is watched like a static one.
  const policies = new Map<string, { settings: string; policy: DriftPolicy | undefined }>();
  const policyOf = (name: string): DriftPolicy | undefined => {
    const list = apps();
    const app = list.find((a) => a.name === name);
    if (!app) return undefined;
    const settings = JSON.stringify(app.drift ?? null);
    const known = policies.get(name);
    if (known?.settings === settings) return known.policy;
    // Static apps by their place in berth.yaml (not in the loop's list, which generated apps join).
    const configured = w.config.apps.findIndex((c) => c.name === name);
    const where = configured >= 0 ? `apps[${configured}].drift` : `the drift of generated app ${name}`;
    const compile = () =>
      DriftPolicy.compile(
        app.drift ?? { action: "heal", rules: [], ignore: {} },
        `${w.config.configPath}: ${where}`,
      );
    // Static apps' policies compile below, at start (a bad rule is exit 2); a generated app's bad rule leaves
    // its drift to the resync, said once per change of its settings.
    let policy: DriftPolicy;
    try {
      policy = compile();
    } catch (err) {
      if (configured >= 0) throw err;
      log.log("error", "drift: the generated app's rules do not compile; not watched", {
        app: name,
        error: messageOf(err),
      });
      policies.set(name, { settings, policy: undefined });
      return undefined;
    }
    policies.set(name, { settings, policy });
    return policy;
  };
  for (const a of w.config.apps) policyOf(a.name);
  const watcher = new DriftWatcher({
    get: (ref, app) => w.clientFor(app).get(ref),
    apply: (obj, o, app) => w.clientFor(app).apply(obj, o),
    owned: (app, ref) => w.ledger.inventoryItem(app, ref),
    getManifest: (d) => w.ledger.getManifest(d),
    recordDrift: (e) => w.ledger.recordDrift(e),
    policyOf,
    onDrift: (r) => {
      w.metrics.driftCorrected(r.app);
      onDrift?.(r);
    },
    log: (level, message, fields) => log.log(level, message, fields),
  });
  // Closing ends every watch: that is a stop, not a lost watch to warn about.
  let closing = false;
  const view = new LiveView(w.kube, {
    clientFor: w.clientFor,
    defaultNamespace: namespaceIn(apps),
    // One watch per kind for the apps on the agent's own client, not one per app and kind.
    shared: () => apps().map((a) => a.name),
    onChange: (c) => watcher.observe(c),
    onState: (app, kind, connected, error) => {
      if (closing) return;
      log.log(connected ? "info" : "warn", connected ? "watch connected" : "watch lost; reconnecting", {
        app,
        kind,
        ...(error ? { error } : {}),
      });
    },
    onWatchLimit: (app, wanted, limit) =>
      log.log("warn", "app needs more watches than it may have; the others are read at each sync", {
        app,
        wanted,
        limit,
        why: "one watch per kind and namespace (an app with its own ServiceAccount): drift of the objects not watched is found at the next resync",
      }),
  });
  const unsubscribe = w.events.subscribe(({ event }) => {
    if (event.type === "started") watcher.syncStarted(event.app);
    if (event.type === "finished") watcher.syncFinished(event.app);
  });
  w.deps.live = view;
  return {
    view,
    watcher,
    stopping: () => {
      closing = true;
    },
    close: async () => {
      closing = true;
      unsubscribe?.();
      delete w.deps.live;
      await view.close();
      // Drift being handled still reads and writes the ledger: let it finish before the caller closes it.
      await watcher.idle();
    },
  };
}

/** Each app's default namespace, by app name. */
function namespaceIn(apps: () => readonly AppConfig[]): (app: string) => string | undefined {
  return (app) => apps().find((a) => a.name === app)?.namespace;
}

/** Opens the ledger named by the config, with the Secret encryption key if one is configured. */
export async function openLedger(config: AgentConfig): Promise<Ledger> {
  const key = ledgerKey(config);
  // A path that cannot be created or opened is a setting to fix: name it.
  const subject = `${config.configPath}: ledger.path`;
  try {
    mkdirSync(dirname(config.ledger.path), { recursive: true });
  } catch (err) {
    throw new BerthError(
      `cannot create the directory ${dirname(config.ledger.path)} for ${config.ledger.path}: ${messageOf(err)}; set ledger.path to a writable place`,
      { subject, cause: err },
    );
  }
  try {
    return await Ledger.open(config.ledger.path, key ? { secretKey: key } : {});
  } catch (err) {
    if (err instanceof BerthError) throw err;
    throw new BerthError(
      `cannot open ${config.ledger.path}: ${messageOf(err)}; set ledger.path to a writable file`,
      {
        subject,
        cause: err,
      },
    );
  }
}

/** The replica's object store from `ledger.replica` (credentials read now), or undefined when none is set. */
export function replicaStore(config: AgentConfig, url?: string): S3Store | undefined {
  const r = config.ledger.replica;
  if (!r && !url) return undefined;
  const subject = "ledger.replica";
  if (!r)
    throw new BerthError(
      `--from ${url} needs ledger.replica in the config for the endpoint and credentials`,
      { subject },
    );
  const accessKeyId =
    r.accessKeyId ??
    (r.accessKeyIdFile ? readSecretFile(r.accessKeyIdFile, "S3 access key id") : undefined) ??
    (r.accessKeyIdEnv ? readSecretEnv(r.accessKeyIdEnv, "S3 access key id", process.env) : undefined);
  const secretAccessKey =
    (r.secretAccessKeyFile ? readSecretFile(r.secretAccessKeyFile, "S3 secret access key") : undefined) ??
    (r.secretAccessKeyEnv
      ? readSecretEnv(r.secretAccessKeyEnv, "S3 secret access key", process.env)
      : undefined);
  if (!accessKeyId) throw new BerthError("set accessKeyId, accessKeyIdFile or accessKeyIdEnv", { subject });
  if (!secretAccessKey) throw new BerthError("set secretAccessKeyFile or secretAccessKeyEnv", { subject });
  return new S3Store({
    url: url ?? r.url,
    ...(r.endpoint !== undefined ? { endpoint: r.endpoint } : {}),
    ...(r.region !== undefined ? { region: r.region } : {}),
    accessKeyId,
    secretAccessKey,
  });
}

/** The 32-byte ledger key from secretKeyFile/secretKeyEnv (64 hex digits or base64), if configured. */
function ledgerKey(config: AgentConfig): Uint8Array | undefined {
  const { secretKeyFile, secretKeyEnv } = config.ledger;
  let text: string | undefined;
  let where = "";
  if (secretKeyFile) {
    text = readSecretFile(secretKeyFile, "ledger secret key");
    where = secretKeyFile;
  } else if (secretKeyEnv) {
    text = readSecretEnv(secretKeyEnv, "ledger secret key", process.env);
    where = `environment variable ${secretKeyEnv}`;
  }
  if (text === undefined) return undefined;
  const t = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, "hex") : Buffer.from(t, "base64");
  if (bytes.length !== 32) {
    throw new BerthError("the ledger secret key must be 32 bytes, written as 64 hex digits or base64", {
      subject: where,
    });
  }
  return new Uint8Array(bytes);
}

/** The render port: each app rendered with its kustomize/helm/variable settings, the tools and the age key. */
export function renderPortFor(
  config: AgentConfig,
  kube?: KubeClient,
  clientFor?: (app: string) => KubeClient,
  log?: Logger,
  chartCache: string = chartCacheDir(config),
  memos?: RenderMemos,
): RenderPort {
  const settings = config.render;
  const tools = {
    paths: settings?.tools ?? {},
    ...(settings ? { timeoutMs: settings.timeout } : {}),
    ...(settings?.maxOutputBytes !== undefined ? { maxOutputBytes: settings.maxOutputBytes } : {}),
    ...(settings?.maxMemoryBytes !== undefined ? { maxMemoryBytes: settings.maxMemoryBytes } : {}),
    ...(settings?.maxCpuSeconds !== undefined ? { maxCpuSeconds: settings.maxCpuSeconds } : {}),
  };
  // Manifests are parsed in worker threads: a huge file must not stall the API or other apps.
  const parser = sharedParsePool((why) =>
    log?.log("warn", "parsing manifests in the main thread", { why }),
  ).parse;
  const limits = {
    ...(settings?.maxFileBytes !== undefined ? { maxFileBytes: settings.maxFileBytes } : {}),
    ...(settings?.maxDocuments !== undefined ? { maxDocuments: settings.maxDocuments } : {}),
  };
  const env: RenderEnvironment = {
    tools,
    limits,
    sops: { ageIdentities: ageIdentities(config), tools },
    parser,
    // Beside the Git cache: charts from Helm repositories and OCI registries, content-addressed.
    chartCache,
    ...(log ? { log: (level, message, fields) => log.log(level, message, fields) } : {}),
    onChartSource: (source, error) => chartSources.report(source, error),
  };
  // Each app's parsed files of its last render: a commit changing one file parses that file (plain.ts).
  const parseMemos = new Map<string, ParseMemo>();
  const parseMemoOf = (app: string): ParseMemo => {
    const memo = parseMemos.get(app) ?? new Map();
    parseMemos.set(app, memo);
    return memo;
  };
  // varsFrom ConfigMaps and Secrets are read as the app (its ServiceAccount): no reading what it may not.
  const envFor = (app: string): RenderEnvironment => {
    if (!kube) return { ...env, parseMemo: parseMemoOf(app) };
    const client = clientFor?.(app) ?? kube;
    return {
      ...env,
      parseMemo: parseMemoOf(app),
      readConfig: async ({ kind, namespace, name }) => {
        await client.discover();
        const found = await client.get({ group: "", version: "v1", kind, namespace, name });
        return found ? valuesOfConfigObject(found) : undefined;
      },
    };
  };
  // An unchanged app (same commit, settings and variable files) is not rendered again (render-cache.ts).
  const cache = new RenderCache<Awaited<ReturnType<RenderPort>>>(Math.max(64, config.apps.length));
  return async (snapshot, spec, signal) => {
    const { name } = spec;
    // A generated app is not in config.apps: the spec the engine passes is its full AppConfig.
    const app: AppRenderSpec = config.apps.find((a) => a.name === name) ?? (spec as AppRenderSpec);
    const key = renderKey(snapshot, app);
    const hit = key === undefined ? undefined : cache.get(name, key);
    if (hit) return hit;
    const durable =
      key === undefined
        ? undefined
        : durableRenderKey(key, durableContext(config, tools, env.sops?.ageIdentities ?? []));
    // A fresh process (the CLI) takes an unchanged app's last successful render from the ledger.
    const memo = durable === undefined ? undefined : await memoRender(memos, name, durable);
    if (key !== undefined && memo) {
      log?.log("debug", "render reused from the ledger", { app: name, entry: memo.entry });
      cache.set(name, key, memo.result);
      return memo.result;
    }
    const rendered = await renderApp(snapshot, app, envFor(name), signal);
    const result =
      durable !== undefined && rendered.errors.length === 0 ? { ...rendered, key: durable } : rendered;
    if (key !== undefined && result.errors.length === 0) cache.set(name, key, result);
    return result;
  };
}

/** Where the render port finds an app's last successful render under a durable key (the Ledger). */
export interface RenderMemos {
  renderMemo(
    app: string,
    key: string,
  ): Promise<{ entry: number; memo: RenderMemo; objects: KubeObject[] } | undefined>;
}

/** The render a memo stands for, or undefined when there is none (or the ledger cannot read it back). */
async function memoRender(
  memos: RenderMemos | undefined,
  app: string,
  key: string,
): Promise<{ entry: number; result: Awaited<ReturnType<RenderPort>> } | undefined> {
  let found: Awaited<ReturnType<RenderMemos["renderMemo"]>>;
  try {
    found = await memos?.renderMemo(app, key);
  } catch {
    return undefined; // an unreadable memo is a render
  }
  if (!found || found.objects.length !== found.memo.objects.length) return undefined;
  const { memo } = found;
  const objects = found.objects.map((object, i) => {
    // The plan gave it the app's namespace; the render did not.
    if (memo.objects[i]?.defaultedNamespace) delete object.metadata.namespace;
    return { object, ref: refOf(object), source: memo.objects[i]?.source ?? "" };
  });
  return {
    entry: found.entry,
    result: { objects, skipped: memo.skipped, errors: [], digest: memo.digest, files: memo.files, key },
  };
}

/**
 * What a render depends on beyond its app and commit that one process takes as fixed: berth's build, the
 * render settings, the age identities and each render tool's binary (durableRenderKey).
 */
function durableContext(config: AgentConfig, tools: ToolSettings, identities: readonly string[]): string[] {
  const build = buildInfo();
  const parts = [`${build.version} ${build.commit}`, JSON.stringify(config.render ?? null)];
  for (const name of ["kustomize", "helm", "sops"] as const) {
    const path = findTool(name, tools);
    let id = "none";
    if (path) {
      try {
        const st = statSync(path);
        id = `${path} ${st.size} ${st.mtimeMs} ${st.ino}`;
      } catch {
        id = `${path} unreadable`;
      }
    }
    parts.push(`${name} ${id}`);
  }
  parts.push(...identities);
  return parts;
}

/** Where remote charts are cached: beside the Git cache, next to the ledger. */
export function chartCacheDir(config: AgentConfig): string {
  return join(dirname(config.ledger.path), "chart-cache");
}

/** Age identities from render.ageKeyFile/ageKeyEnv (AGE-SECRET-KEY-1… lines); never logged. */
function ageIdentities(config: AgentConfig): string[] {
  const { ageKeyFile, ageKeyEnv } = config.render ?? {};
  let text: string | undefined;
  if (ageKeyFile) text = readSecretFile(ageKeyFile, "age key");
  else if (ageKeyEnv) text = readSecretEnv(ageKeyEnv, "age key", process.env);
  if (text === undefined) return [];
  const keys = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.startsWith("AGE-SECRET-KEY-"));
  if (keys.length === 0) {
    throw new BerthError("no AGE-SECRET-KEY-1… line found", {
      subject: ageKeyFile ?? `environment variable ${ageKeyEnv}`,
    });
  }
  return keys;
}

/**
 * The previews lane (`previews:`), or undefined when none are configured. It gets reads only: the ledger's
 * inventories, the render port and each app's client behind agent/engine/preview.ts's dry-run-only wrapper.
 */
export function wirePreviews(
  w: Wired,
  log: Logger,
  options: { reporters?: PreviewReporter[]; active?: () => boolean } = {},
): PreviewLane | undefined {
  const settings = w.config.previews;
  if (!settings) return undefined;
  const wanted = new Set(settings.apps);
  // Previews follow the refs of the previewed apps' source (the first app's).
  const first = w.config.apps.find((a) => wanted.has(a.name));
  const repository = w.repository(first?.source);
  const patterns = { refs: settings.refs, branches: settings.branches };
  return new PreviewLane({
    source: {
      refs: () => repository.refs(),
      snapshot: (ref, sha) => repository.withRef(ref).snapshot(sha),
    },
    match: (refs) => matchRefs(refs, patterns, settings.maxRefs),
    pullRequestOf,
    deps: {
      render: w.deps.render,
      clusterFor: (app) => w.clientFor(app.name),
      inventory: (app) => w.ledger.inventory(app),
      inventoryOwners: (app) => w.ledger.inventoryOwners(app),
      secretDigest: (obj) => w.ledger.secretDigest(obj),
      ...(w.deps.policy ? { policy: w.deps.policy } : {}),
    },
    apps: w.config.apps.filter((a) => wanted.has(a.name)),
    interval: settings.interval,
    concurrency: settings.concurrency,
    reporters: options.reporters ?? [],
    store: jsonPreviewStore(join(dirname(w.config.ledger.path), "previews.json"), log),
    ...(options.active ? { active: options.active } : {}),
    log: log.child({ lane: "previews" }),
  });
}

/** What the previews lane saw, in a JSON file beside the ledger (written whole, atomically). */
function jsonPreviewStore(path: string, log: Logger): PreviewStore {
  return {
    load: () => {
      if (!existsSync(path)) return [];
      try {
        const data = JSON.parse(readFileSync(path, "utf8")) as { previews?: RefPreview[] };
        return Array.isArray(data.previews) ? data.previews : [];
      } catch (err) {
        // Only a cache: previewing the heads again is the cost of losing it.
        log.log("warn", "previews: ignoring an unreadable previews file", { path, error: messageOf(err) });
        return [];
      }
    },
    save: (previews) => {
      const temporary = `${path}.tmp`;
      writeFileSync(temporary, JSON.stringify({ previews }));
      renameSync(temporary, path);
    },
  };
}

/** The forge client of `status:` (its token read now), or undefined without one; a problem names the field. */
export function forgeOf(config: AgentConfig, source = DEFAULT_SOURCE): ForgeClient | undefined {
  const own = config.sources[source];
  const fromSource = own && !isOciSource(own) ? own.status : undefined;
  const status = source === DEFAULT_SOURCE ? (config.status ?? fromSource) : fromSource;
  if (!status) return undefined;
  const prefix =
    source !== DEFAULT_SOURCE ? `sources.${source}.status` : config.status ? "status" : "source.status";
  const field = (key: string) => `${config.configPath}: ${prefix}.${key}`;
  let token: string;
  try {
    token = readSecretFile(status.tokenFile, `${status.provider} token`).trim();
  } catch (err) {
    throw new BerthError(messageOf(err), { subject: field("tokenFile") });
  }
  if (token === "") throw new BerthError("the token file is empty", { subject: field("tokenFile") });
  try {
    return createForgeClient({
      provider: status.provider,
      url: status.url,
      token,
      timeoutMs: status.timeout,
    });
  } catch (err) {
    throw new BerthError(messageOf(err), { subject: field("url") });
  }
}

/** The source an app reads (a generated app, absent from `apps`, is told by its ledger entry instead). */
function sourceOfApp(config: AgentConfig, app: string): string {
  return config.apps.find((a) => a.name === app)?.source ?? DEFAULT_SOURCE;
}

/** The notifier of `berth run` and the listeners that feed it; close() stops delivery. */
export interface NotifyWiring {
  notifier: Notifier;
  /** With `status:` and `previews:`: reports each preview to the forge through the outbox. */
  previewReporter?: PreviewReporter;
  onDrift: (r: DriftReport) => void;
  /** An approval was made through the API: look at the ledger's approvals now. */
  onApproved: () => void;
  /** Starts watching the sources' reachability: each source of berth.yaml and each chart repository. */
  watchSource(view: { sourceView(name: string): SourceView | undefined }): void;
  close(): Promise<void>;
}

/** Milliseconds between looks at the ledger for approvals (`berth approve` writes it from another process). */
const APPROVAL_WATCH_MS = 2000;

/** Milliseconds between looks at the sources' reachability. */
const SOURCE_WATCH_MS = 5000;

/**
 * Notifications (`notify:`), or undefined when none are configured. Secrets are read now: a missing file or
 * variable is an input error naming the receiver's field. Finished syncs and drift reports feed the outbox.
 */
export async function wireNotify(w: Wired, log: Logger): Promise<NotifyWiring | undefined> {
  const list = w.config.notify ?? [];
  const anyStatus = Object.values(w.config.sources).some((s) => !isOciSource(s) && s.status);
  if (list.length === 0 && !w.config.status && !anyStatus) return undefined;
  const receivers = list.map((c, i): Receiver => {
    const field = (key: string) => `${w.config.configPath}: notify[${i}].${key}`;
    const read = (fileKey: "urlFile" | "secretFile", envKey: "urlEnv" | "secretEnv", what: string) => {
      const file = c[fileKey];
      const env = c[envKey];
      try {
        if (file !== undefined) return readSecretFile(file, what);
        if (env !== undefined) return readSecretEnv(env, what, process.env);
      } catch (err) {
        throw new BerthError(messageOf(err), {
          subject: field(file !== undefined ? fileKey : envKey),
        });
      }
      return undefined;
    };
    const url = c.url ?? read("urlFile", "urlEnv", `${c.type} URL`) ?? "";
    if (!/^https?:\/\//i.test(url))
      throw new BerthError("the receiver URL must be an http or https URL", {
        subject: field(c.urlFile !== undefined ? "urlFile" : c.urlEnv !== undefined ? "urlEnv" : "url"),
      });
    const secret = read("secretFile", "secretEnv", `${c.type} secret`);
    return {
      config: c,
      url,
      ...(secret !== undefined ? { secret } : {}),
      ...(c.when !== undefined ? { when: compileWhen(c.when) } : {}),
    };
  });
  // Each source's statuses go to its own repository's forge; the default source's forge also takes previews'.
  const outlets: Outlet[] = [];
  const statusOutlets = new Map<string, string>();
  for (const source of Object.keys(w.config.sources)) {
    const client = forgeOf(w.config, source);
    if (!client) continue;
    const o = statusOutlet(client, source);
    outlets.push(o);
    statusOutlets.set(source, o.name);
  }
  const forge = forgeOf(w.config);
  // Previews report through the same outbox: statuses on the status outlet, comments on their own.
  const comments = forge && w.config.previews?.comment ? commentOutlet(forge) : undefined;
  if (comments) outlets.push(comments);
  const api = w.config.api;
  const externalURL = api.externalURL ?? `http://${api.listen}`;
  const notifier = await Notifier.open(w.config.ledger.path, receivers, {
    externalURL,
    log: (level, message, fields) => log.log(level, message, fields),
    count: (receiver, result) => w.metrics.notification(receiver, result),
    outlets,
  });
  w.metrics.notifyPending = () => notifier.pending();
  w.metrics.notifyFailing = () => notifier.failing();
  const outlet = statusOutlets.get(DEFAULT_SOURCE);
  const tracker = new StatusTracker();
  const unsubscribe = w.events.subscribe(({ event }) => {
    if (event.type !== "started" && event.type !== "finished") return;
    try {
      const entry = w.ledger.get(event.entry);
      if (!entry) return;
      if (event.type === "finished") notifier.onEntry(entry);
      // The status goes to the repository that holds the commit: the forge of the app's source.
      const to = statusOutlets.get(entry.source ?? sourceOfApp(w.config, event.app));
      if (!to) return;
      const link = notifier.link(event.app);
      const sha = entry.commit?.sha ?? entry.commitSha;
      const s =
        event.type === "started"
          ? sha
            ? tracker.started(event.app, sha, link)
            : undefined
          : tracker.finished(entry, link);
      if (s) notifier.post(to, statusPayload(event.app, s));
    } catch (err) {
      // A notification problem is never a sync failure: say it and go on.
      log.log("error", "notify: could not queue a notification", { app: event.app, error: messageOf(err) });
    }
  });
  let sourceTimer: ReturnType<typeof setInterval> | undefined;
  const onDrift = (r: DriftReport) => {
    try {
      const last = w.ledger.list({ app: r.app, limit: 1 })[0];
      const full = last ? w.ledger.get(last.id) : undefined;
      const commit = {
        sha: full?.commit?.sha ?? "",
        subject: (full?.commit?.message ?? "").split("\n")[0] ?? "",
        author: full?.commit?.author ?? "",
      };
      notifier.onEvent(driftEvent(r, last?.revision ?? "", commit, notifier.link(r.app)));
    } catch (err) {
      log.log("error", "notify: could not queue a notification", { app: r.app, error: messageOf(err) });
    }
  };
  // Approvals are read from the ledger, where the API and `berth approve` both write them.
  const checkApprovals = () => {
    try {
      notifier.onApprovals();
    } catch (err) {
      log.log("error", "notify: could not queue a notification", { error: messageOf(err) });
    }
  };
  const approvalTimer = receivers.length > 0 ? setInterval(checkApprovals, APPROVAL_WATCH_MS) : undefined;
  approvalTimer?.unref?.();
  const onApproved = () => checkApprovals();
  const watchSource: NotifyWiring["watchSource"] = (view) => {
    if (sourceTimer || receivers.length === 0) return;
    sourceTimer = setInterval(() => {
      try {
        for (const state of [...configuredSourceStates(w.config.sources, view), ...chartSources.list()])
          notifier.onSource(state);
      } catch (err) {
        log.log("error", "notify: could not queue a notification", { error: messageOf(err) });
      }
    }, SOURCE_WATCH_MS);
    sourceTimer.unref?.();
  };
  const previewReporter =
    outlet && w.config.previews
      ? outboxPreviewReporter((name, payload) => notifier.post(name, payload), {
          statusOutlet: outlet,
          ...(comments ? { commentOutlet: comments.name } : {}),
          link: `${externalURL}/`,
        })
      : undefined;
  return {
    notifier,
    ...(previewReporter ? { previewReporter } : {}),
    onDrift,
    onApproved,
    watchSource,
    close: async () => {
      unsubscribe?.();
      if (sourceTimer) clearInterval(sourceTimer);
      if (approvalTimer) clearInterval(approvalTimer);
      await notifier.close();
    },
  };
}
