/**
 * The only importer of @kubernetes/client-node (exec and auth-provider credentials, proxies: loaded only for a
 * kubeconfig that needs them, kubeconfig.ts resolves the rest) and of the HTTP client. Requests go out as raw
 * JSON so objects keep their exact shape for diffs and digests, and every request is counted by verb.
 */
import { existsSync } from "node:fs";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import fetch, { type RequestInit } from "node-fetch";
import { BerthError } from "../object/errors.ts";
import { apiVersionOf, FIELD_MANAGER, type KubeObject, type ObjectRef, subject } from "../object/object.ts";
import { authorizationOf, type KubeAccess, KubeconfigError, loadKubeAccess, tlsOf } from "./kubeconfig.ts";

/** Where to find the cluster, resolved as kubectl does. */
export interface KubeTarget {
  kubeconfig?: string;
  context?: string;
}

/** What discovery knows about one kind. */
export interface ResourceInfo {
  group: string;
  version: string;
  kind: string;
  plural: string;
  namespaced: boolean;
  verbs: string[];
}

/** A failed API request, with the server's Status reason and message. */
export class KubeApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string,
    readonly details: unknown,
  ) {
    super(message);
    this.name = "KubeApiError";
  }
}

/** The User-Agent of every request, so audit logs attribute them to berth. */
export const USER_AGENT = "berth";

/** Default timeout of one API request, ms: kube-apiserver's own limit is 60 s, most answers take milliseconds. */
export const REQUEST_TIMEOUT_MS = 30_000;

/** Request counters by verb; `apply` is a real write, `apply-dry-run` is not. */
export type RequestCounts = Record<string, number>;

/** Loads a kubeconfig: explicit path, then KUBECONFIG, ~/.kube/config, then the in-cluster service account. */
export function loadKubeConfig(target: KubeTarget = {}): KubeAccess {
  const home = process.env.HOME ?? process.env.USERPROFILE;
  const defaultFile = home ? join(home, ".kube", "config") : undefined;
  // What the loader would read, to name it in errors (without any it falls back to http://localhost:8080).
  const file =
    target.kubeconfig ??
    (process.env.KUBECONFIG || undefined) ??
    (defaultFile && existsSync(defaultFile) ? defaultFile : undefined);
  if (!file && !process.env.KUBERNETES_SERVICE_HOST)
    throw new BerthError(
      `no kubeconfig found: KUBECONFIG is not set, ${defaultFile ?? "~/.kube/config"} does not exist and this is not a pod (KUBERNETES_SERVICE_HOST is not set); pass --kubeconfig FILE or set KUBECONFIG`,
      { subject: "kubeconfig" },
    );
  let access: KubeAccess;
  try {
    access = loadKubeAccess(target);
  } catch (err) {
    const where = err instanceof KubeconfigError ? err.origin : (file ?? "in-cluster config");
    const message =
      err instanceof KubeconfigError
        ? `${err.message}${err.message === "no current cluster" ? "; set current-context in the file or pass --context NAME" : ""}`
        : `cannot load kubeconfig: ${(err as Error).message}; pass --kubeconfig FILE or set KUBECONFIG`;
    throw new BerthError(message, { subject: where, cause: err });
  }
  if (/^http:\/\//i.test(access.server) && !access.skipTLSVerify)
    throw new BerthError(
      `server ${access.server}${target.context ? ` (context "${target.context}")` : ""}: plain HTTP is refused; use its https:// address, or set insecure-skip-tls-verify: true on the cluster`,
      { subject: access.origin },
    );
  return access;
}

/**
 * How long one access's TLS agent is used before its certificate files are read again (rotated files take
 * effect after at most this long, as a token file's do). An agent per request read three files and built one
 * for every request: a tenth of a millisecond of this thread's time per apply (scripts/bench/ssa-limit.ts).
 */
export const TLS_AGENT_TTL_MS = 60_000;

const agents = new WeakMap<KubeAccess, { agent: HttpAgent | HttpsAgent; madeAt: number }>();

/** The access's TLS agent (plain HTTP: an agent without TLS), made again once TLS_AGENT_TTL_MS passed. */
export function agentOf(access: KubeAccess, now = Date.now()): HttpAgent | HttpsAgent {
  const known = agents.get(access);
  if (known && now - known.madeAt < TLS_AGENT_TTL_MS) return known.agent;
  let agent: HttpAgent | HttpsAgent;
  if (access.server.startsWith("http:")) {
    if (!access.skipTLSVerify)
      throw new Error("HTTP protocol is not allowed when skipTLSVerify is not set or false");
    agent = new HttpAgent();
  } else {
    agent = new HttpsAgent({
      ...tlsOf(access),
      ...(access.skipTLSVerify ? { rejectUnauthorized: false } : {}),
      ...(access.tlsServerName ? { servername: access.tlsServerName } : {}),
    });
  }
  agents.set(access, { agent, madeAt: now });
  return agent;
}

/** Options of one request: TLS (the access's agent) and the auth headers. */
async function requestOptions(
  access: KubeAccess,
  delegate: () => Promise<KubeConfig>,
  method: string,
  headers: Record<string, string>,
): Promise<RequestInit> {
  if (access.delegated)
    return (await (await delegate()).applyToFetchOptions({ method, headers })) as RequestInit;
  const all: Record<string, string> = { ...headers };
  const authorization = authorizationOf(access);
  if (authorization) all.Authorization = authorization;
  if (access.impersonateUser) all["Impersonate-User"] = access.impersonateUser;
  return { method, headers: all, agent: agentOf(access) } as RequestInit;
}

/** client-node's KubeConfig for the same file and context, for credentials only it can get (exec, auth-provider). */
async function delegatedConfig(access: KubeAccess): Promise<KubeConfig> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  const how = access.delegated;
  if (how?.inCluster) kc.loadFromCluster();
  else if (how && how.files.length === 1) kc.loadFromFile(how.files[0] as string);
  else kc.loadFromDefault();
  if (how?.context) kc.setCurrentContext(how.context);
  return kc;
}

/** The user name the API server gives a ServiceAccount (what `Impersonate-User` names). */
export function serviceAccountUser(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

/** A thin, counted client for the Kubernetes REST API. */
export class KubeClient {
  readonly counts: RequestCounts;
  /** Request counters by "verb code" (HTTP status, or "error" when no answer came), for metrics. */
  readonly codes: RequestCounts;
  private resources = new Map<string, ResourceInfo>();
  private discovered = false;
  private discovering: Promise<void> | undefined;
  private discoveryStarted = 0;
  private discoveryApplied = 0;
  private readonly server: string;
  /** The agent's own client; an impersonating client shares its discovery, counters and write guard. */
  private readonly root: KubeClient;
  private readonly clients = new Map<string, KubeClient>();
  /** Sent as User-Agent; HA instances add their identity so audit logs tell them apart. */
  userAgent = USER_AGENT;
  /** When set and false, writes are refused (an HA standby must never write, whichever path asks). */
  mayWrite: (() => boolean) | undefined;
  /** How long one request may take, ms (for a watch: until its headers); then it fails naming the server. */
  requestTimeoutMs = REQUEST_TIMEOUT_MS;
  /** client-node's KubeConfig, loaded on first use by a kubeconfig only it can serve (kubeconfig.ts). */
  private delegatedKc: Promise<KubeConfig> | undefined;
  /** Until when (ms since epoch) pooled connections are not reused: one went silent, the others may too. */
  private freshUntil = 0;

  constructor(
    private readonly access: KubeAccess,
    /** Every request is sent as this user (`Impersonate-User`), so the API server's RBAC judges it. */
    readonly impersonate?: string,
    root?: KubeClient,
  ) {
    this.server = access.server.replace(/\/+$/, "");
    this.root = root ?? this;
    this.counts = root?.counts ?? {};
    this.codes = root?.codes ?? {};
  }

  /**
   * A client acting as `user` for every request but discovery (which only says what kinds exist). It shares
   * this client's counters, HA write guard and User-Agent; one instance per user.
   */
  as(user: string): KubeClient {
    const root = this.root;
    let client = root.clients.get(user);
    if (!client) {
      client = new KubeClient(root.access, user, root);
      root.clients.set(user, client);
    }
    return client;
  }

  /** client-node's KubeConfig for this kubeconfig, loaded once (the root client's). */
  private delegated(): Promise<KubeConfig> {
    this.delegatedKc ??= delegatedConfig(this.access);
    return this.delegatedKc;
  }

  /** A client for a kubeconfig resolved as kubectl does. */
  static connect(target: KubeTarget = {}): KubeClient {
    return new KubeClient(loadKubeConfig(target));
  }

  /** The API server URL. */
  get serverUrl(): string {
    return this.server;
  }

  /** Loads (or, with force, reloads) every resource type the API server serves, in two requests. */
  async discover(force = false): Promise<void> {
    if (this.root !== this) return this.root.discover(force);
    if (this.discovered && !force) return;
    // Apps syncing in parallel share one discovery; a forced one (after new CRDs) always asks again.
    if (this.discovering && !force) return this.discovering;
    const run = this.discoverNow();
    this.discovering = run;
    try {
      await run;
    } finally {
      if (this.discovering === run) this.discovering = undefined;
    }
  }

  private async discoverNow(): Promise<void> {
    // Runs may overlap (a forced one beside a plain one): the later-started run saw the newer server state.
    const seq = ++this.discoveryStarted;
    const accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    const next = new Map<string, ResourceInfo>();
    type DiscoveryList = {
      items?: Array<{
        metadata?: { name?: string };
        versions?: Array<{
          version: string;
          resources?: Array<{
            resource: string;
            responseKind?: { kind?: string };
            scope?: string;
            verbs?: string[];
          }>;
        }>;
      }>;
    };
    // Both roots at once: a fresh process (the CLI) waits for discovery before it can plan.
    const lists = (await Promise.all(
      ["/api", "/apis"].map((root) => this.request("discovery", "GET", root, undefined, { Accept: accept })),
    )) as DiscoveryList[];
    for (const list of lists) {
      for (const group of list.items ?? []) {
        const groupName = group.metadata?.name ?? "";
        // Versions come in preference order; the first one to define a kind wins for lookups without a version.
        for (const v of group.versions ?? []) {
          for (const r of v.resources ?? []) {
            const kind = r.responseKind?.kind;
            if (!kind || r.resource.includes("/")) continue;
            const info: ResourceInfo = {
              group: groupName,
              version: v.version,
              kind,
              plural: r.resource,
              namespaced: r.scope === "Namespaced",
              verbs: r.verbs ?? [],
            };
            next.set(`${groupName}/${v.version}/${kind}`, info);
            if (!next.has(`${groupName}//${kind}`)) next.set(`${groupName}//${kind}`, info);
          }
        }
      }
    }
    if (seq < this.discoveryApplied) return;
    this.discoveryApplied = seq;
    this.resources = next;
    this.discovered = true;
  }

  /** The resource type of a group/version/kind, or undefined if the server does not serve it. */
  resource(group: string, version: string, kind: string): ResourceInfo | undefined {
    return this.root.resources.get(`${group}/${version}/${kind}`);
  }

  /** Every kind the server serves, in its preferred version. */
  servedKinds(): ResourceInfo[] {
    return [...this.resources.entries()].filter(([key]) => key.includes("//")).map(([, info]) => info);
  }

  /** Lists every object of a kind, in one namespace or (without one) across all. */
  async listKind(
    kind: { group: string; version: string; kind: string },
    namespace?: string,
  ): Promise<KubeObject[]> {
    const info = this.requireResource({ ...kind, namespace: namespace ?? "", name: "" });
    return this.list(info, namespace ? { namespace } : {});
  }

  /** Reads one object; undefined if it does not exist. The signal stops the wait (a read, safe to abandon). */
  async get(ref: ObjectRef, options: { signal?: AbortSignal } = {}): Promise<KubeObject | undefined> {
    try {
      return (await this.request(
        "get",
        "GET",
        this.objectPath(ref),
        undefined,
        {},
        options.signal,
      )) as KubeObject;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  /** Lists objects of a kind, optionally in one namespace and filtered by labels. */
  async list(
    info: ResourceInfo,
    options: { namespace?: string; labelSelector?: string } = {},
  ): Promise<KubeObject[]> {
    const items: KubeObject[] = [];
    let cont = "";
    do {
      const query = new URLSearchParams({ limit: "500" });
      if (options.labelSelector) query.set("labelSelector", options.labelSelector);
      if (cont) query.set("continue", cont);
      const path = `${this.collectionPath(info, options.namespace ?? "")}?${query}`;
      const page = (await this.request("list", "GET", path)) as {
        items?: KubeObject[];
        metadata?: { continue?: string };
      };
      const apiVersion = info.group ? `${info.group}/${info.version}` : info.version;
      for (const item of page.items ?? []) items.push({ ...item, apiVersion, kind: info.kind });
      cont = page.metadata?.continue ?? "";
    } while (cont);
    return items;
  }

  /**
   * Stops reusing pooled connections for a while: after a watch stalled or a request timed out, idle pooled
   * connections over the same path are likely dead too, and a request sent on one would wait out its timeout.
   */
  distrustPool(forMs = 2 * REQUEST_TIMEOUT_MS): void {
    this.freshUntil = Math.max(this.freshUntil, Date.now() + forMs);
  }

  /**
   * Server-side applies an object as field manager `berth`; dryRun asks the server what it would store. A dry-run
   * stops at the signal (nothing is written); a write, once sent, is always awaited, so its outcome is recorded.
   */
  async apply(
    obj: KubeObject,
    options: { dryRun?: boolean; force?: boolean; signal?: AbortSignal } = {},
  ): Promise<KubeObject> {
    const ref = refFromObject(obj);
    if (!options.dryRun) this.guardWrite(subject(ref));
    const query = new URLSearchParams({ fieldManager: FIELD_MANAGER, force: String(options.force ?? false) });
    if (options.dryRun) query.set("dryRun", "All");
    const verb = options.dryRun ? "apply-dry-run" : "apply";
    return (await this.request(
      verb,
      "PATCH",
      `${this.objectPath(ref)}?${query}`,
      JSON.stringify(obj),
      { "Content-Type": "application/apply-patch+yaml" },
      options.dryRun ? options.signal : undefined,
    )) as KubeObject;
  }

  /** Deletes an object (background propagation); false if it was already gone. */
  async delete(ref: ObjectRef): Promise<boolean> {
    this.guardWrite(subject(ref));
    try {
      await this.request(
        "delete",
        "DELETE",
        this.objectPath(ref),
        JSON.stringify({ kind: "DeleteOptions", apiVersion: "v1", propagationPolicy: "Background" }),
        { "Content-Type": "application/json" },
      );
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return false;
      throw err;
    }
  }

  private guardWrite(what: string): void {
    const mayWrite = this.root.mayWrite;
    if (mayWrite && !mayWrite())
      throw new BerthError("not written: this instance is an HA standby (another one holds the Lease)", {
        subject: what,
      });
  }

  /** The URL path of one object; the kind must be known to discovery. */
  objectPath(ref: ObjectRef): string {
    const info = this.requireResource(ref);
    return `${this.collectionPath(info, info.namespaced ? ref.namespace : "")}/${encodeURIComponent(ref.name)}`;
  }

  private requireResource(ref: ObjectRef): ResourceInfo {
    const info = ref.version
      ? this.resource(ref.group, ref.version, ref.kind)
      : this.root.resources.get(`${ref.group}//${ref.kind}`);
    if (!info) {
      throw new BerthError(
        `the API server does not serve ${apiVersionOf(ref) || ref.group}, kind ${ref.kind}`,
        {
          subject: subject(ref),
        },
      );
    }
    return info;
  }

  /** The URL path of a kind's collection, in one namespace or (with "") across all. */
  collectionPath(info: ResourceInfo, namespace: string): string {
    const base = info.group === "" ? `/api/${info.version}` : `/apis/${info.group}/${info.version}`;
    const ns = info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
    return `${base}${ns}/${info.plural}`;
  }

  /**
   * Opens a streaming GET (a watch); the body is returned unread. The request timeout covers only the wait for
   * the response headers: the caller bounds the body (KindWatch's idle timer). Throws KubeApiError on a failure status.
   */
  async stream(verb: string, path: string, signal: AbortSignal): Promise<AsyncIterable<Uint8Array | string>> {
    const sent = await this.send(verb, "GET", path, { signal, fresh: true }, {});
    if (!sent.res.ok) {
      const text = await sent.read(); // settles itself when it fails
      sent.settled();
      throw apiError(sent.res.status, parseBody(text));
    }
    // The body streams on: the caller's signal still aborts it (closing the connection); the timer stops here.
    sent.answered();
    if (!sent.res.body)
      throw new BerthError("the API server sent a watch response without a body", { subject: path });
    return sent.res.body as unknown as AsyncIterable<Uint8Array | string>;
  }

  /** Sends one request with the kubeconfig's TLS and credentials; parses JSON; throws KubeApiError on failure. */
  async request(
    verb: string,
    method: string,
    path: string,
    body?: string,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<unknown> {
    const extra = { ...(body === undefined ? {} : { body }), ...(signal ? { signal } : {}) };
    const sent = await this.send(verb, method, path, extra, headers);
    const text = await sent.read(); // settles itself when it fails
    sent.settled();
    const parsed = parseBody(text);
    if (!sent.res.ok) throw apiError(sent.res.status, parsed);
    return parsed;
  }

  /**
   * Counts and sends one request under the request timeout (until `answered()` or `settled()`, which also unlinks
   * the caller's signal); a transport failure or timeout
   * becomes a BerthError naming the server.
   */
  private async send(
    verb: string,
    method: string,
    path: string,
    extra: { body?: string; signal?: AbortSignal; fresh?: boolean },
    headers: Record<string, string> = {},
  ): Promise<{
    res: Awaited<ReturnType<typeof fetch>>;
    read(): Promise<string>;
    answered(): void;
    settled(): void;
  }> {
    this.counts[verb] = (this.counts[verb] ?? 0) + 1;
    // Discovery stays the agent's own: it says which kinds exist, not what anyone may do with them.
    const as = this.impersonate && verb !== "discovery" ? { "Impersonate-User": this.impersonate } : {};
    const init = await requestOptions(this.access, () => this.root.delegated(), method, {
      Accept: "application/json",
      "User-Agent": this.root.userAgent,
      ...headers,
      ...as,
    });
    // A server (or a path to it) that accepts the connection and then says nothing must not hang a sync.
    const limit = new AbortController();
    const timeoutMs = this.requestTimeoutMs;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      limit.abort();
    }, timeoutMs);
    const callerAbort = () => limit.abort();
    extra.signal?.addEventListener("abort", callerAbort, { once: true });
    if (extra.signal?.aborted) limit.abort();
    const answered = () => clearTimeout(timer);
    const settled = () => {
      answered();
      extra.signal?.removeEventListener("abort", callerAbort);
    };
    if (extra.body !== undefined) init.body = extra.body;
    init.signal = limit.signal as NonNullable<RequestInit["signal"]>;
    // A fresh connection (Bun pools them otherwise): watches always, every request while the pool is suspect.
    if (extra.fresh || Date.now() < this.freshUntil) (init as { keepalive?: boolean }).keepalive = false;
    const failure = (err: unknown, counted = false) => {
      settled();
      if (!counted) this.codes[`${verb} error`] = (this.codes[`${verb} error`] ?? 0) + 1;
      if (timedOut) this.distrustPool();
      if (extra.signal?.aborted && !timedOut)
        return new BerthError("stopped: the request was abandoned", { subject: "kubernetes", cause: err });
      const why = timedOut ? `no answer within ${timeoutMs / 1000}s` : (err as Error).message;
      return new BerthError(`cannot reach the API server at ${this.server}: ${why}`, {
        subject: "kubernetes",
        cause: err,
      });
    };
    let res: Awaited<ReturnType<typeof fetch>>;
    try {
      res = await fetch(`${this.server}${path}`, init);
    } catch (err) {
      throw failure(err);
    }
    this.codes[`${verb} ${res.status}`] = (this.codes[`${verb} ${res.status}`] ?? 0) + 1;
    return {
      res,
      read: async () => {
        try {
          return await res.text();
        } catch (err) {
          throw failure(err, true); // counted by its status already
        }
      },
      answered,
      settled,
    };
  }
}

/** A response body as JSON, or `{message: text}` when it is not JSON. */
function parseBody(text: string): unknown {
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    return { message: text };
  }
}

/** The KubeApiError for a failure status and its (Status) body. */
function apiError(code: number, body: unknown): KubeApiError {
  const status = body as { message?: string; reason?: string; details?: unknown };
  return new KubeApiError(
    status.message ?? `HTTP ${code}`,
    code,
    status.reason ?? String(code),
    status.details,
  );
}

/** The reference of an object as the client needs it. */
function refFromObject(obj: KubeObject): ObjectRef {
  const slash = obj.apiVersion.indexOf("/");
  return {
    group: slash === -1 ? "" : obj.apiVersion.slice(0, slash),
    version: slash === -1 ? obj.apiVersion : obj.apiVersion.slice(slash + 1),
    kind: obj.kind,
    namespace: obj.metadata.namespace ?? "",
    name: obj.metadata.name,
  };
}
