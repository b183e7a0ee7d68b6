/**
 * The shared real control plane for cluster and e2e tests: started once per
 * test run by scripts/cluster/cluster.sh (reused if already up), with a fresh
 * namespace per test.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fstatSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  statSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";

const SCRIPT = join(import.meta.dir, "..", "..", "scripts", "cluster", "cluster.sh");

export interface TestCluster {
  kubeconfigPath: string;
  kubeConfig: k8s.KubeConfig;
  /** Path of the kubectl built with the control plane. */
  kubectl: string;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
  objects: k8s.KubernetesObjectApi;
}

let shared: Promise<TestCluster> | undefined;

/** Starts (or reuses) the control plane; the first call may take a while. */
export function useCluster(): Promise<TestCluster> {
  // The shared control plane outlives the run: it must not keep the run's temporary directory (test/support/tmp.ts).
  const outer = process.env.BERTH_TEST_OUTER_TMPDIR;
  shared ??= Promise.resolve().then(() => connect(outer ? { ...process.env, TMPDIR: outer } : process.env));
  return shared;
}

/** A control plane of one test file's own (its own state directory and ports), for tests that restart or tune it. */
export interface PrivateCluster extends TestCluster {
  /** The state directory (BERTH_CLUSTER_DIR): logs, audit log, ports. */
  dir: string;
  /** Runs a cluster.sh command (e.g. restart-apiserver) against this control plane. */
  script(command: string): string;
  /**
   * The same without blocking this process, so code under test keeps running (and writing) meanwhile,
   * e.g. while the API server restarts; resolves when the command has finished.
   */
  scriptAsync(command: string): Promise<void>;
  /** Stops every component and removes the state directory. */
  down(): void;
}

/**
 * Starts a control plane of its own in a fresh state directory; `env` may tune it (BERTH_KCM_EXTRA_ARGS,
 * BERTH_APISERVER_EXTRA_ARGS, BERTH_NODE_LEASE_SECONDS, BERTH_CLUSTER_NODES). Call down() in afterAll.
 */
export function privateCluster(env: Record<string, string> = {}): PrivateCluster {
  const dir = mkdtempSync(join(tmpdir(), "berth-private-cluster-"));
  const fullEnv = { ...process.env, ...env, BERTH_CLUSTER_DIR: dir };
  const script = (command: string) =>
    execFileSync("bash", [SCRIPT, command], {
      encoding: "utf8",
      env: fullEnv,
      stdio: ["ignore", "pipe", "inherit"],
    });
  const scriptAsync = (command: string) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn("bash", [SCRIPT, command], { env: fullEnv, stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      child.stderr.on("data", (d) => {
        err += String(d);
      });
      child.on("error", reject);
      child.on("exit", (code) =>
        code === 0 ? resolve() : reject(new Error(`cluster.sh ${command} exited ${code}: ${err}`)),
      );
    });
  return { ...connect(fullEnv), dir, script, scriptAsync, down: () => void script("down") };
}

function connect(env: NodeJS.ProcessEnv): TestCluster {
  const out = execFileSync("bash", [SCRIPT, "up"], {
    encoding: "utf8",
    env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const kubeconfigPath = /^KUBECONFIG=(.+)$/m.exec(out)?.[1];
  if (!kubeconfigPath) throw new Error(`cluster.sh up printed no KUBECONFIG line: ${out}`);
  const envOut = execFileSync("bash", [SCRIPT, "env"], { encoding: "utf8", env });
  const bin = /^BERTH_CLUSTER_BIN=(.+)$/m.exec(envOut)?.[1] ?? "";
  const kubeConfig = new k8s.KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  return {
    kubeconfigPath,
    kubeConfig,
    kubectl: join(bin, "kubectl"),
    core: kubeConfig.makeApiClient(k8s.CoreV1Api),
    apps: kubeConfig.makeApiClient(k8s.AppsV1Api),
    objects: k8s.KubernetesObjectApi.makeApiClient(kubeConfig),
  };
}

/** Creates a namespace with a unique name for one test. */
export async function freshNamespace(cluster: TestCluster, prefix = "t"): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString("hex")}`;
  await cluster.core.createNamespace({ body: { metadata: { name, labels: { "berth.dev/test": "true" } } } });
  return name;
}

/** Runs kubectl against the test cluster and returns stdout. */
export function kubectl(cluster: TestCluster, ...args: string[]): string {
  return execFileSync(cluster.kubectl, ["--kubeconfig", cluster.kubeconfigPath, ...args], {
    encoding: "utf8",
  });
}

/** Polls `check` until it returns a value other than undefined, or fails with `what` after `timeoutMs`. */
export async function eventually<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const cause = lastError instanceof Error ? `: last error ${lastError.message}` : "";
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** One request from the API server's audit log. */
export interface AuditEvent {
  verb: string;
  requestURI: string;
  userAgent?: string;
  requestReceivedTimestamp: string;
  responseStatus?: { code?: number };
}

/**
 * Audit events received at or after `since` (a Date), optionally only those sent by `userAgent` and only those
 * about `namespace` (its objects and the Namespace itself): other test files may run berth against the same
 * control plane at the same time. A log rotated since then (at 200 MB, as `audit-<time>.log`) is read too, so a
 * rotation in the middle of a test loses nothing.
 */
export function auditEvents(
  cluster: TestCluster,
  since: Date,
  userAgent?: string,
  namespace?: string,
): AuditEvent[] {
  const dir = join(cluster.kubeconfigPath, "..");
  const rotated = readdirSync(dir)
    .filter((f) => /^audit-.+\.log$/.test(f) && statSync(join(dir, f)).mtime >= since)
    .sort();
  const text = [...rotated, "audit.log"].map((f) => readFileSync(join(dir, f), "utf8")).join("\n");
  const out: AuditEvent[] = [];
  const lines = text.split("\n");
  // The API server may be writing the last line right now: only a complete line ends with a newline.
  if (!text.endsWith("\n")) lines.pop();
  for (const line of lines) {
    if (!line) continue;
    const e = JSON.parse(line) as AuditEvent;
    if (new Date(e.requestReceivedTimestamp) < since) continue;
    if (userAgent !== undefined && e.userAgent !== userAgent) continue;
    if (namespace !== undefined && !new RegExp(`/namespaces/${namespace}(/|\\?|$)`).test(e.requestURI))
      continue;
    out.push(e);
  }
  return out;
}

/**
 * Audit events appended after this call, read incrementally: each call returns the events written since the
 * previous one, cheap enough to poll every few milliseconds (a rotated log starts over from its beginning).
 */
export function auditTail(cluster: TestCluster): () => AuditEvent[] {
  const path = join(cluster.kubeconfigPath, "..", "audit.log");
  let offset = statSync(path).size;
  let rest = "";
  return () => {
    const fd = openSync(path, "r");
    try {
      const size = fstatSync(fd).size;
      if (size < offset) offset = 0;
      const buf = Buffer.alloc(size - offset);
      readSync(fd, buf, 0, buf.length, offset);
      offset = size;
      const lines = (rest + buf.toString("utf8")).split("\n");
      rest = lines.pop() ?? "";
      return lines.filter(Boolean).map((l) => JSON.parse(l) as AuditEvent);
    } finally {
      closeSync(fd);
    }
  };
}

/** Audit events that really wrote (create, update, patch, delete without dryRun). */
export function writesIn(events: AuditEvent[]): AuditEvent[] {
  return events.filter(
    (e) =>
      ["create", "update", "patch", "delete", "deletecollection"].includes(e.verb) &&
      !/[?&]dryRun=All/.test(e.requestURI),
  );
}

/** A start time for counting audit events: waits until requests of earlier steps have landed, then returns now. */
export async function quietSince(ms = 300): Promise<Date> {
  await new Promise((r) => setTimeout(r, ms));
  return new Date();
}

/** Who holds the Lease `name` in `namespace` (empty while nobody does, or before it exists). */
export function leaseHolder(cluster: TestCluster, namespace: string, name = "berth-ha"): string {
  return kubectl(
    cluster,
    "get",
    "lease",
    name,
    "-n",
    namespace,
    "--ignore-not-found",
    "-o",
    "jsonpath={.spec.holderIdentity}",
  );
}
