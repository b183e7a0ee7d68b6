/**
 * One setup for a test file against the real control plane: the shared cluster, a namespace of its own, a Git
 * repository on the test Git server, berth configs written for it, and the teardown of all of that. Call
 * `useClusterTest()` at the top of the file; its beforeAll runs before the file's own, its afterAll runs the
 * file's `onTeardown` steps (last first), closes what `wire()` opened, stops the Git server and deletes the
 * namespace and the CRDs named.
 */
import { afterAll, beforeAll } from "bun:test";
import type { Wired } from "../../agent/cli/wire.ts";
import type { EngineEvent } from "../../agent/engine/ports.ts";
import type { GitServerAuth } from "../../scripts/git/server.ts";
import { wireFor, writeConfig } from "./berth.ts";
import { berthBinary, startBerth } from "./binary.ts";
import { kubectl, type TestCluster, useCluster } from "./cluster.ts";
import { GitFixture, type TreeEntry } from "./git.ts";

export interface ClusterTestOptions {
  /** The namespace's prefix; a random suffix makes it unique on the shared control plane. */
  prefix: string;
  /** Create the namespace before the file's beforeAll (otherwise the repository's manifests create it). */
  createNamespace?: boolean;
  /** Start a Git server (default) with this auth, or none at all (`false`). */
  git?: GitServerAuth | boolean;
  /** The repository to create, "infra" unless given. */
  repo?: string;
  /** The first commit of the repository. */
  files?: Record<string, TreeEntry>;
  /** Build the compiled binary first (e2e tests). */
  binary?: boolean;
  /** CRDs (by name, given the namespace's) the test creates, deleted at teardown. */
  crds?: (ns: string) => string[];
}

/** One app of a berth config: its name, path and any other keys, written as a YAML flow mapping. */
export type AppSpec = { name: string; path: string } & Record<string, string | string[] | undefined>;

export interface AgentConfigOptions {
  /** Source keys besides the URL (interval, ref, auth …), as YAML flow-mapping text (`interval: 1s`). */
  source?: string;
  /** The ledger path (default $DIR/ledger.db, in the config's directory). */
  ledger?: string;
  /** More top-level YAML after the ledger (api, rules, previews …), ending in a newline. */
  extra?: string;
  /** Top-level YAML between source and apps (render tools …), ending in a newline. */
  before?: string;
}

/** The value of a flow-mapping key, quoted where YAML would read it otherwise. */
const flowValue = (v: string | string[]): string => (Array.isArray(v) ? `[${v.join(", ")}]` : v);

/** A berth.yaml's text for a source URL and apps. */
export function agentConfig(url: string, apps: AppSpec[], o: AgentConfigOptions = {}): string {
  const source = `{url: "${url}"${o.source ? `, ${o.source}` : ""}}`;
  const appLines = apps.map(
    (a) =>
      `  - {${Object.entries(a)
        .filter((e): e is [string, string | string[]] => e[1] !== undefined)
        .map(([k, v]) => `${k}: ${flowValue(v)}`)
        .join(", ")}}\n`,
  );
  return `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: ${source}\n${o.before ?? ""}apps:\n${appLines.join("")}ledger: {path: ${o.ledger ?? "$DIR/ledger.db"}}\n${o.extra ?? ""}`;
}

export interface ClusterTest {
  readonly cluster: TestCluster;
  readonly git: GitFixture;
  /** The namespace's name (known at once, created in beforeAll when `createNamespace`). */
  readonly ns: string;
  /** The repository's URL. */
  readonly url: string;
  /** The repository's name. */
  readonly repo: string;
  /** Commits to the repository; returns the SHA. */
  commit(files: Record<string, TreeEntry>, message?: string): string;
  /** Writes a berth.yaml for this repository and these apps (in a fresh directory); returns its path. */
  writeConfig(apps: AppSpec[], options?: AgentConfigOptions): string;
  /** Wires berth in-process from a config (closed at teardown). */
  wire(configPath: string, events?: EngineEvent[]): Promise<Wired>;
  /** Wires berth from a config, runs `use` with it and closes it again. */
  withWired<T>(configPath: string, use: (w: Wired) => Promise<T>): Promise<T>;
  /** Runs kubectl against the cluster. */
  kubectl(...args: string[]): string;
  /** Runs kubectl in the namespace. */
  inNs(...args: string[]): string;
  /** Environment for the compiled binary: the kubeconfig and, with a token-protected repository, the token. */
  env(): Record<string, string>;
  /** A step for teardown (runs before the shared ones, last registered first). */
  onTeardown(step: () => unknown): void;
  /** Objects (kubectl `kind/name`, e.g. more namespaces) to delete at teardown, after the namespace. */
  removeAtTeardown(...names: string[]): void;
  /** Starts `berth run` of the compiled binary on a config, stopped (SIGTERM) at teardown. */
  startRun(configPath: string, env?: Record<string, string>): ReturnType<typeof startBerth>;
}

/** The environment variable that carries the Git token of a token-protected test repository. */
export const GIT_TOKEN_ENV = "E2E_GIT_TOKEN";

/** Registers beforeAll/afterAll for a cluster test file; see the module comment. */
export function useClusterTest(options: ClusterTestOptions): ClusterTest {
  const ns = `${options.prefix}-${Math.random().toString(16).slice(2, 8)}`;
  const repo = options.repo ?? "infra";
  const token = typeof options.git === "object" ? options.git.token : undefined;
  let cluster: TestCluster | undefined;
  let git: GitFixture | undefined;
  let url = "";
  const wired: Wired[] = [];
  const teardown: Array<() => unknown> = [];
  const removals: string[] = [];
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`useClusterTest: ${what} is used before beforeAll ran`);
    return v;
  };

  beforeAll(async () => {
    if (options.binary) berthBinary();
    cluster = await useCluster();
    if (options.createNamespace) {
      await cluster.core.createNamespace({
        body: { metadata: { name: ns, labels: { "berth.dev/test": "true" } } },
      });
    }
    if (options.git !== false) {
      git = await GitFixture.start(typeof options.git === "object" ? options.git : undefined);
      url = git.createRepo(repo);
      if (options.files) git.commit(repo, options.files);
    }
  }, 600_000);

  afterAll(async () => {
    for (const step of teardown.reverse()) await step();
    for (const w of wired) w.close();
    await git?.close();
    if (!cluster) return;
    for (const name of [
      `namespace/${ns}`,
      ...removals,
      ...(options.crds?.(ns) ?? []).map((c) => `crd/${c}`),
    ]) {
      try {
        kubectl(cluster, "delete", name, "--wait=false", "--ignore-not-found");
      } catch {}
    }
  });

  const t: ClusterTest = {
    get cluster() {
      return need(cluster, "the cluster");
    },
    get git() {
      return need(git, "the Git server");
    },
    ns,
    get url() {
      return need(url || undefined, "the repository URL");
    },
    repo,
    commit: (files, message) => t.git.commit(repo, files, message ? { message } : {}),
    writeConfig: (apps, o) => writeConfig(agentConfig(t.url, apps, o)),
    wire: async (configPath, events) => {
      const w = await wireFor(configPath, t.cluster.kubeconfigPath, events);
      wired.push(w);
      return w;
    },
    withWired: async (configPath, use) => {
      const w = await wireFor(configPath, t.cluster.kubeconfigPath);
      try {
        return await use(w);
      } finally {
        w.close();
      }
    },
    kubectl: (...args) => kubectl(t.cluster, ...args),
    inNs: (...args) => kubectl(t.cluster, ...args, "-n", ns),
    env: () => ({
      KUBECONFIG: t.cluster.kubeconfigPath,
      ...(token ? { [GIT_TOKEN_ENV]: token } : {}),
    }),
    onTeardown: (step) => void teardown.push(step),
    removeAtTeardown: (...names) => void removals.push(...names),
    startRun: (configPath, env = {}) => {
      const run = startBerth(["run", "--config", configPath, "--kubeconfig", t.cluster.kubeconfigPath], env);
      t.onTeardown(async () => {
        run.child.kill("SIGTERM");
        await run.exited;
      });
      return run;
    },
  };
  return t;
}

/** Merge-patches a ConfigMap's data by hand (another manager than berth): the usual drift in these tests. */
export function patchConfigMap(
  cluster: TestCluster,
  ns: string,
  name: string,
  data: Record<string, string>,
): string {
  return kubectl(
    cluster,
    "patch",
    "configmap",
    name,
    "-n",
    ns,
    "--type=merge",
    "-p",
    JSON.stringify({ data }),
  );
}
