/**
 * `notify:` in berth.yaml: checks a JSON Schema cannot express (where each receiver's secret comes from,
 * its `when` compiles as CEL) and the normalised receiver settings. The CEL is compiled here, at config
 * load, so a bad expression is a config error naming `notify[i].when`, not a surprise at the first event.
 */
import { CelEnvironment, type CelProgram } from "../cel/cel.ts";
import { messageOf } from "../object/errors.ts";
import { parseDuration } from "./duration.ts";
import { type ConfigProblem, problemAt } from "./problems.ts";

export type ReceiverType = "webhook" | "slack" | "msteams" | "discord" | "alertmanager";

/** One receiver of `notify:`; file paths absolute, durations in milliseconds. */
export interface ReceiverConfig {
  name: string;
  type: ReceiverType;
  url?: string;
  urlFile?: string;
  urlEnv?: string;
  secretFile?: string;
  secretEnv?: string;
  /** The CEL source of `when`; absent: every event. */
  when?: string;
  repeatInterval: number;
  /** Deliveries per minute. */
  rateLimit: number;
  timeout: number;
  /** Git unreachable this long (ms) is a SourceUnreachable event. */
  sourceUnreachableAfter: number;
}

export const NOTIFY_DEFAULTS = {
  repeatInterval: 4 * 3600_000,
  rateLimit: 30,
  timeout: 10_000,
  sourceUnreachableAfter: 600_000,
} as const;

/** The CEL environment of `when`: one variable, the event (see agent/notify/event.ts for its fields). */
export const notifyEnvironment = new CelEnvironment({ variables: { event: "map" } });

/** Compiles a receiver's `when`; throws CelError. */
export function compileWhen(source: string): CelProgram {
  return notifyEnvironment.compile(source, ["bool"]);
}

/** Types whose URL carries its own credential (a Slack/Teams/Discord webhook URL is the secret). */
const SECRET_URL: ReadonlySet<string> = new Set(["slack", "msteams", "discord"]);

type Raw = Record<string, unknown>;

/** Plaintext secrets in receivers (`secret`, `token`, `password`); checked before the schema so the hint wins. */
export function notifyPlaintextProblems(data: unknown): ConfigProblem[] {
  const list = (data as Raw | null)?.notify;
  if (!Array.isArray(list)) return [];
  const problems: ConfigProblem[] = [];
  list.forEach((r, i) => {
    if (r === null || typeof r !== "object") return;
    for (const key of ["secret", "token", "password"])
      if (key in r)
        problems.push(
          problemAt(
            ["notify", i, key],
            "plaintext secrets are not allowed in the config file; use secretFile or secretEnv",
          ),
        );
  });
  return problems;
}

/** Problems of `notify:` and `api.externalURL` in a config that passed the schema. */
export function notifyProblems(data: Raw): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const external = (data.api as Raw | undefined)?.externalURL;
  if (typeof external === "string" && !/^https?:\/\/[^/\s]+/i.test(external))
    problems.push(
      problemAt(["api", "externalURL"], `expected an http or https URL, got ${JSON.stringify(external)}`),
    );
  const list = (data.notify as Raw[] | undefined) ?? [];
  const seen = new Set<string>();
  list.forEach((r, i) => {
    const at = (key: string) => ["notify", i, key];
    const name = String(r.name);
    if (seen.has(name)) problems.push(problemAt(at("name"), `receiver "${name}" is named twice`));
    seen.add(name);
    const type = String(r.type);
    const urlSources = ["url", "urlFile", "urlEnv"].filter((k) => r[k] !== undefined);
    if (SECRET_URL.has(type) && r.url !== undefined)
      problems.push(
        problemAt(
          at("url"),
          `a ${type} webhook URL is a secret; plaintext secrets are not allowed in the config file, use urlFile or urlEnv`,
        ),
      );
    else if (urlSources.length === 0)
      problems.push(problemAt(at("url"), "set one of url, urlFile or urlEnv"));
    else if (urlSources.length > 1)
      problems.push(problemAt(at(urlSources[1] ?? "url"), `set only one of ${urlSources.join(", ")}`));
    if (r.secretFile !== undefined && r.secretEnv !== undefined)
      problems.push(problemAt(at("secretEnv"), "set only one of secretFile or secretEnv"));
    if (type === "webhook" && r.secretFile === undefined && r.secretEnv === undefined)
      problems.push(
        problemAt(at("secretFile"), "a webhook receiver signs its deliveries: set secretFile or secretEnv"),
      );
    if (SECRET_URL.has(type) && (r.secretFile !== undefined || r.secretEnv !== undefined))
      problems.push(
        problemAt(at(r.secretFile !== undefined ? "secretFile" : "secretEnv"), `not used by ${type}`),
      );
    if (typeof r.url === "string" && !/^https?:\/\/[^/\s]+/i.test(r.url))
      problems.push(problemAt(at("url"), `expected an http or https URL, got ${JSON.stringify(r.url)}`));
    if (typeof r.when === "string") {
      try {
        compileWhen(r.when);
      } catch (err) {
        problems.push(problemAt(at("when"), `invalid CEL: ${messageOf(err)}`));
      }
    }
  });
  return problems;
}

/** The normalised receivers. */
export function normaliseNotify(raw: Raw[] | undefined, abs: (path: string) => string): ReceiverConfig[] {
  const ms = (v: unknown, fallback: number) =>
    typeof v === "string" ? (parseDuration(v) ?? fallback) : fallback;
  return (raw ?? []).map((r) => {
    const out: ReceiverConfig = {
      name: String(r.name),
      type: r.type as ReceiverType,
      repeatInterval: ms(r.repeatInterval, NOTIFY_DEFAULTS.repeatInterval),
      rateLimit: typeof r.rateLimit === "number" ? r.rateLimit : NOTIFY_DEFAULTS.rateLimit,
      timeout: ms(r.timeout, NOTIFY_DEFAULTS.timeout),
      sourceUnreachableAfter: ms(r.sourceUnreachableAfter, NOTIFY_DEFAULTS.sourceUnreachableAfter),
    };
    if (typeof r.url === "string") out.url = r.url;
    if (typeof r.urlFile === "string") out.urlFile = abs(r.urlFile);
    if (typeof r.urlEnv === "string") out.urlEnv = r.urlEnv;
    if (typeof r.secretFile === "string") out.secretFile = abs(r.secretFile);
    if (typeof r.secretEnv === "string") out.secretEnv = r.secretEnv;
    if (typeof r.when === "string") out.when = r.when;
    return out;
  });
}
