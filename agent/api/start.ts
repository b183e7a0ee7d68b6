/** Starts the API for `berth run`: reads tokens and the webhook secret from their files, then serves. */
import { basename } from "node:path";
import { type AnySourceConfig, type ApiConfig, isOciSource } from "../config/config.ts";
import { readSecretEnv, readSecretFile } from "../config/credentials.ts";
import type { EventBus } from "../engine/events.ts";
import type { Logger } from "../engine/log.ts";
import type { Metrics } from "../engine/metrics.ts";
import { BerthError } from "../object/errors.ts";
import { type Served, serve } from "../runtime/serve.ts";
import { type ApiDeps, createApi, type LoopControl, type PreviewView } from "./app.ts";
import type { AppSpecView, LedgerView } from "./app-view.ts";
import { isLoopback, type TokenEntry, tokenEntry } from "./auth.ts";

/** What `berth run` hands the API. */
export interface ApiStart {
  api: ApiConfig;
  apps: ReadonlyArray<AppSpecView>;
  sourceRef: string;
  /** Every configured source by name (refs and webhook secrets); absent: the one source of `sourceRef`. */
  sources?: Readonly<Record<string, AnySourceConfig>>;
  loop: LoopControl;
  ledger: LedgerView;
  metrics: Metrics;
  kubeCodes: () => Readonly<Record<string, number>>;
  events: EventBus;
  log: Logger;
  previews?: PreviewView;
  onApproved?: ApiDeps["onApproved"];
  failingDeliveries?: ApiDeps["failingDeliveries"];
}

/**
 * Reads the configured tokens (files and env), each with its scope and name (the configured one, else the
 * file's name or the variable's): syncs a token starts are recorded as `api:<name>`. Values never leave
 * this process.
 */
export function loadTokens(api: ApiConfig, env: NodeJS.ProcessEnv = process.env): TokenEntry[] {
  const tokens: TokenEntry[] = [];
  const add = (text: string, scope: "read" | "operate", where: string, name: string) => {
    if (text.trim() === "") throw new BerthError("the API token is empty", { subject: where });
    tokens.push(tokenEntry(text, scope, name));
  };
  if (api.tokenFile)
    add(readSecretFile(api.tokenFile, "API token"), "operate", api.tokenFile, basename(api.tokenFile));
  if (api.tokenEnv) add(readSecretEnv(api.tokenEnv, "API token", env), "operate", api.tokenEnv, api.tokenEnv);
  for (const t of api.tokens ?? [])
    add(readSecretFile(t.file, "API token"), t.scope, t.file, t.name ?? basename(t.file));
  return tokens;
}

/** Builds and serves the API on api.listen; throws (naming the setting) when it cannot. */
export async function startApi(s: ApiStart): Promise<Served> {
  const tokens = loadTokens(s.api);
  const anonymousRead = s.api.anonymousRead === true && isLoopback(s.api.listen);
  if (s.api.anonymousRead && !anonymousRead)
    s.log.log("warn", "api.anonymousRead is ignored: api.listen is not a loopback address", {
      listen: s.api.listen,
    });
  let webhookSecret: string | undefined;
  const hook = s.api.webhook;
  if (hook?.secretFile) webhookSecret = readSecretFile(hook.secretFile, "webhook secret").trim();
  else if (hook?.secretEnv)
    webhookSecret = readSecretEnv(hook.secretEnv, "webhook secret", process.env).trim();
  const maxAge = hook?.maxAge ?? 300_000;
  // Each source's own secret (read now: a missing file is an input error naming the field).
  const sources = s.sources
    ? Object.fromEntries(
        Object.entries(s.sources).map(([name, source]) => {
          if (isOciSource(source)) return [name, { ref: source.tag ?? "", oci: source.oci }];
          const own = source.webhook;
          const secret = own?.secretFile
            ? readSecretFile(own.secretFile, `source ${name} webhook secret`).trim()
            : own?.secretEnv
              ? readSecretEnv(own.secretEnv, `source ${name} webhook secret`, process.env).trim()
              : undefined;
          return [name, { ref: source.ref, ...(secret ? { webhook: { secret, maxAge } } : {}) }];
        }),
      )
    : undefined;
  const app = createApi({
    ...(sources ? { sources } : {}),
    loop: s.loop,
    ledger: s.ledger,
    apps: s.apps,
    sourceRef: s.sourceRef,
    metrics: s.metrics,
    kubeCodes: s.kubeCodes,
    events: s.events,
    tokens,
    anonymousRead,
    ...(webhookSecret && hook ? { webhook: { secret: webhookSecret, maxAge: hook.maxAge } } : {}),
    log: s.log,
    ...(s.previews ? { previews: s.previews } : {}),
    ...(s.onApproved ? { onApproved: s.onApproved } : {}),
    ...(s.failingDeliveries ? { failingDeliveries: s.failingDeliveries } : {}),
  });
  try {
    return await serve(app.fetch, s.api.listen);
  } catch (err) {
    throw new BerthError(`cannot listen: ${(err as Error).message}`, {
      subject: `api.listen ${s.api.listen}`,
      cause: err,
    });
  }
}
