/**
 * kubeconfig resolution as kubectl (and @kubernetes/client-node, whose rules this follows) does it: an explicit
 * file, else every file in KUBECONFIG merged, else ~/.kube/config, else the in-cluster ServiceAccount.
 *
 * Why not client-node's KubeConfig for everything: importing it loads the whole generated API client (~20 MB
 * resident in the compiled binary, scripts/bench/README.md ## Footprint) for what is a YAML file, some PEM
 * blocks and a header. The forms an agent meets — certificates, a token or token file, basic auth, the
 * in-cluster account — are handled here; a user with `exec` or `auth-provider`, or a cluster behind
 * `proxy-url`, is left to client-node, loaded only then (`delegated`).
 */
import { readFileSync, statSync } from "node:fs";
import { isIPv6 } from "node:net";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import { parse } from "yaml";

/** The cluster and user a kubeconfig's current context names, with paths made absolute. */
export interface KubeAccess {
  server: string;
  /** Where the config came from, for messages. */
  origin: string;
  caData?: string;
  caFile?: string;
  skipTLSVerify: boolean;
  tlsServerName?: string;
  certData?: string;
  certFile?: string;
  keyData?: string;
  keyFile?: string;
  token?: string;
  /** A file holding the token, re-read at most once a minute (the in-cluster account's rotates). */
  tokenFile?: string;
  username?: string;
  password?: string;
  /** `as:` of the user: every request impersonates this user. */
  impersonateUser?: string;
  /** Set when auth or transport needs client-node (exec, auth-provider, proxy-url): how to load it there. */
  delegated?: { files: string[]; inCluster: boolean; context: string };
}

const SA_ROOT = "/var/run/secrets/kubernetes.io/serviceaccount";

interface Named<T> {
  name: string;
  value: T;
}
interface RawConfig {
  clusters: Array<Named<Record<string, unknown>>>;
  users: Array<Named<Record<string, unknown>>>;
  contexts: Array<Named<Record<string, unknown>>>;
  current?: string;
}

/** Loads the kubeconfig and resolves its current (or the given) context; throws naming what is wrong. */
export function loadKubeAccess(target: { kubeconfig?: string; context?: string } = {}): KubeAccess {
  let files: string[] = [];
  let raw: RawConfig;
  let inCluster = false;
  if (target.kubeconfig) files = [target.kubeconfig];
  else if (process.env.KUBECONFIG) files = process.env.KUBECONFIG.split(delimiter).filter((f) => f);
  else {
    const home = homeDir();
    const config = home ? join(home, ".kube", "config") : undefined;
    if (config && exists(config)) files = [config];
  }
  if (files.length > 0) {
    raw = readConfig(files[0] as string);
    for (const file of files.slice(1)) merge(raw, readConfig(file));
  } else if (exists(`${SA_ROOT}/token`)) {
    inCluster = true;
    raw = inClusterConfig();
  } else {
    raw = {
      clusters: [{ name: "cluster", value: { server: "http://localhost:8080" } }],
      users: [{ name: "user", value: {} }],
      contexts: [{ name: "loaded-context", value: { cluster: "cluster", user: "user" } }],
      current: "loaded-context",
    };
  }
  const origin = files.join(delimiter) || (inCluster ? "in-cluster" : "kubeconfig");
  if (target.context && !raw.contexts.some((c) => c.name === target.context))
    throw new KubeconfigError(
      `context "${target.context}" not found (contexts: ${raw.contexts.map((c) => c.name).join(", ") || "none"}); check --context`,
      origin,
    );
  const contextName = target.context ?? raw.current ?? "";
  const context = raw.contexts.find((c) => c.name === contextName)?.value;
  const cluster = context && raw.clusters.find((c) => c.name === context.cluster)?.value;
  if (!cluster) throw new KubeconfigError("no current cluster", origin);
  const user = (context && raw.users.find((u) => u.name === context.user)?.value) ?? {};
  const str = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined);
  const access: KubeAccess = {
    server: String(cluster.server).replace(/\/$/, ""),
    origin,
    skipTLSVerify: cluster["insecure-skip-tls-verify"] === true,
  };
  const set = <K extends keyof KubeAccess>(key: K, value: KubeAccess[K] | undefined) => {
    if (value !== undefined) access[key] = value;
  };
  set("caData", str(cluster["certificate-authority-data"]));
  set("caFile", str(cluster["certificate-authority"]));
  set("tlsServerName", str(cluster["tls-server-name"]));
  set("certData", str(user["client-certificate-data"]));
  set("certFile", str(user["client-certificate"]));
  set("keyData", str(user["client-key-data"]));
  set("keyFile", str(user["client-key"]));
  set("token", str(user.token));
  set("tokenFile", str(user["token-file"]));
  set("username", str(user.username));
  set("password", str(user.password));
  set("impersonateUser", str(user.as));
  if (user.exec || user["auth-provider"] || cluster["proxy-url"])
    access.delegated = { files, inCluster, context: contextName };
  return access;
}

/** A kubeconfig problem (the client wraps it with the file it came from). */
export class KubeconfigError extends Error {
  constructor(
    message: string,
    readonly origin: string,
  ) {
    super(message);
    this.name = "KubeconfigError";
  }
}

/** The TLS material and headers of one request, read from the access (files are read per request, as before). */
export function tlsOf(access: KubeAccess): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  const out: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  const ca = bytes(access.caFile, access.caData);
  const cert = bytes(access.certFile, access.certData);
  const key = bytes(access.keyFile, access.keyData);
  if (ca) out.ca = ca;
  if (cert) out.cert = cert;
  if (key) out.key = key;
  return out;
}

const tokenCache = new Map<string, { token: string; readAt: number }>();

/** The Authorization header value, if the user has one. */
export function authorizationOf(access: KubeAccess): string | undefined {
  if (access.tokenFile) {
    const cached = tokenCache.get(access.tokenFile);
    if (cached && Date.now() - cached.readAt < 60_000) return `Bearer ${cached.token}`;
    const token = readFileSync(access.tokenFile, "utf8").trim();
    tokenCache.set(access.tokenFile, { token, readAt: Date.now() });
    return `Bearer ${token}`;
  }
  if (access.token) return `Bearer ${access.token}`;
  if (access.username)
    return `Basic ${Buffer.from(`${access.username}:${access.password ?? ""}`).toString("base64")}`;
  return undefined;
}

function bytes(file: string | undefined, data: string | undefined): Buffer | undefined {
  if (file) return readFileSync(file);
  if (data) return Buffer.from(data, "base64");
  return undefined;
}

function readConfig(file: string): RawConfig {
  const doc = (parse(readFileSync(file, "utf8")) ?? {}) as Record<string, unknown>;
  const root = dirname(file);
  const list = (key: string, inner: string): Array<Named<Record<string, unknown>>> => {
    const items = doc[key];
    if (items === undefined || items === null) return [];
    if (!Array.isArray(items)) throw new KubeconfigError(`${key} is not a list`, file);
    return items.map((item: Record<string, unknown>, i) => {
      if (!item?.name) throw new KubeconfigError(`${key}[${i}].name is missing`, file);
      const value = { ...((item[inner] as Record<string, unknown> | undefined) ?? {}) };
      if (key === "clusters") {
        if (!item[inner]) throw new KubeconfigError(`clusters[${i}].cluster is missing`, file);
        if (!value.server) throw new KubeconfigError(`clusters[${i}].cluster.server is missing`, file);
      }
      // Relative certificate paths are relative to the kubeconfig (the token file is read as written).
      for (const field of ["certificate-authority", "client-certificate", "client-key"]) {
        const path = value[field];
        if (typeof path === "string" && path && !isAbsolute(path)) value[field] = join(root, path);
      }
      if (key === "contexts" && !item[inner])
        throw new KubeconfigError(`contexts[${i}].context is missing`, file);
      return { name: String(item.name), value };
    });
  };
  const current = doc["current-context"];
  return {
    clusters: list("clusters", "cluster"),
    users: list("users", "user"),
    contexts: list("contexts", "context"),
    ...(typeof current === "string" && current ? { current } : {}),
  };
}

/** Later files add their entries (a name twice is an error) and, when they set one, their current context. */
function merge(into: RawConfig, from: RawConfig): void {
  if (from.current) into.current = from.current;
  for (const key of ["clusters", "users", "contexts"] as const) {
    for (const item of from[key]) {
      if (into[key].some((x) => x.name === item.name))
        throw new KubeconfigError(`Duplicate ${key.slice(0, -1)}: ${item.name}`, "KUBECONFIG");
      into[key].push(item);
    }
  }
}

function inClusterConfig(): RawConfig {
  const host = process.env.KUBERNETES_SERVICE_HOST ?? "";
  const port = process.env.KUBERNETES_SERVICE_PORT ?? "";
  const scheme = ["80", "8080", "8001"].includes(port) ? "http" : "https";
  const server = `${scheme}://${isIPv6(host) ? `[${host}]` : host}:${port}`;
  return {
    clusters: [{ name: "inCluster", value: { server, "certificate-authority": `${SA_ROOT}/ca.crt` } }],
    users: [{ name: "inClusterUser", value: { "token-file": `${SA_ROOT}/token` } }],
    contexts: [{ name: "inClusterContext", value: { cluster: "inCluster", user: "inClusterUser" } }],
    current: "inClusterContext",
  };
}

function homeDir(): string | undefined {
  const home = process.env.HOME;
  return home && exists(home) ? home : undefined;
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}
