/** Builds the engine's dependencies from a loaded config: the one place concrete adapters meet. */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { type AgentConfig, loadConfig } from "../config/config.ts";
import { readSecretEnv, readSecretFile, resolveGitCredentials } from "../config/credentials.ts";
import { EventBus } from "../engine/events.ts";
import type { Logger } from "../engine/log.ts";
import { Metrics } from "../engine/metrics.ts";
import type { EngineDeps, EngineEvent } from "../engine/ports.ts";
import { defaultHealthChecker } from "../health/assess.ts";
import { KubeClient, type KubeTarget } from "../kube/client.ts";
import { Ledger } from "../ledger/ledger.ts";
import { BerthError } from "../object/errors.ts";
import { RuleHealthJudge } from "../policy/health-rules.ts";
import { RulePolicy } from "../policy/policy.ts";
import { RuleSet } from "../policy/rule-set.ts";
import { render } from "../render/render.ts";
import { GitSource } from "../source/git-source.ts";

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
  kube: KubeClient;
  source: GitSource;
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
  const events = new EventBus();
  const metrics = new Metrics();
  const source = new GitSource({
    url: config.source.url,
    ref: config.source.ref,
    cacheDir: join(dirname(config.ledger.path), "git-cache"),
    credentials: () => resolveGitCredentials(config.source.auth),
    timeoutMs: config.source.timeout,
    onRequest: (_kind, ok) => metrics.gitRequest(ok),
  });
  const deps: EngineDeps = {
    source,
    render: (snapshot, path) => render(snapshot, path),
    cluster: kube,
    ledger,
    health: new RuleHealthJudge(() => rules.health, defaultHealthChecker),
    policy: new RulePolicy(rules),
    log,
    emit: (e) => {
      emit?.(e);
      metrics.observe(e);
      events.emit(e);
    },
  };
  return { config, deps, ledger, kube, source, events, metrics, close: () => ledger.close() };
}

/** Opens the ledger named by the config, with the Secret encryption key if one is configured. */
export async function openLedger(config: AgentConfig): Promise<Ledger> {
  mkdirSync(dirname(config.ledger.path), { recursive: true });
  const key = ledgerKey(config);
  return Ledger.open(config.ledger.path, key ? { secretKey: key } : {});
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
