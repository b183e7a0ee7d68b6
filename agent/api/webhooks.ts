/**
 * Push webhooks: verifies the provider's signature or token in constant time, refuses replays and stale
 * deliveries, validates the payload, and says which ref was pushed. Pure: the route decides what to trigger.
 */
import { createHash, createHmac } from "node:crypto";
import { secretsEqual } from "./auth.ts";
import { HttpError } from "./http-error.ts";
import { type SchemaName, validateBody } from "./schemas.ts";

/** The providers berth understands. */
export const PROVIDERS = ["github", "gitea", "gitlab", "generic"] as const;
export type Provider = (typeof PROVIDERS)[number];

/** What verification needs. */
export interface WebhookSettings {
  secret: string;
  /** Deliveries with a timestamp older than this are refused, ms. */
  maxAge: number;
  now?: () => number;
}

/** A verified push: the ref, and for the generic hook an optional app. */
export type VerifiedHook = { ref: string; app?: string } | { ignored: string };

/** How far ahead of our clock a delivery's timestamp may be (the sender's clock may run a little fast), ms. */
export const MAX_CLOCK_SKEW = 60_000;

/**
 * Remembers recent deliveries — by delivery id and by the digest of the signed bytes — so a captured request
 * sent again, with or without a (new) delivery id, is refused. Keys are kept only while a replay could still
 * pass the timestamp check (maxAge), and at most `capacity` of them, so memory stays bounded.
 */
export class DeliveryLog {
  /** Key → when it may be forgotten (ms); insertion order is nearly expiry order. */
  private readonly seen = new Map<string, number>();
  constructor(private readonly capacity = 10_000) {}

  /** How many keys are remembered. */
  get size(): number {
    return this.seen.size;
  }

  /** The first of `keys` seen before and not yet forgotten; otherwise records them all until `until`. */
  check(keys: readonly string[], now: number, until: number): string | undefined {
    for (const [key, expires] of this.seen) {
      if (expires > now) break;
      this.seen.delete(key);
    }
    const hit = keys.find((k) => {
      const expires = this.seen.get(k);
      return expires !== undefined && expires > now;
    });
    if (hit !== undefined) return hit;
    for (const k of keys) {
      this.seen.delete(k);
      this.seen.set(k, until);
    }
    // Over capacity (only a sender holding the secret can add keys): the oldest go first.
    for (const k of this.seen.keys()) {
      if (this.seen.size <= this.capacity) break;
      this.seen.delete(k);
    }
    return undefined;
  }
}

/** Verifies one delivery; throws HttpError 401 (unsigned/wrong), 403 (replayed, bad or out-of-range time) or 422 (bad payload). */
export function verifyWebhook(
  provider: Provider,
  header: (name: string) => string | undefined,
  body: Uint8Array,
  settings: WebhookSettings,
  deliveries: DeliveryLog,
): VerifiedHook {
  const now = settings.now?.() ?? Date.now();
  let timestamp: number | undefined;
  let schema: SchemaName;
  // The bytes the secret vouches for: a second delivery of the same bytes is a replay, whatever its headers.
  let signed: Uint8Array = body;
  if (provider === "gitlab") {
    const token = header("x-gitlab-token");
    if (!token) throw new HttpError(401, "Unsigned", "gitlab webhook: the X-Gitlab-Token header is missing");
    if (!secretsEqual(token, settings.secret))
      throw new HttpError(401, "BadSignature", "gitlab webhook: X-Gitlab-Token does not match the secret");
    schema = "GitLabPush";
  } else if (provider === "generic") {
    const ts = header("x-berth-timestamp");
    const sig = header("x-berth-signature");
    if (!sig || !ts)
      throw new HttpError(
        401,
        "Unsigned",
        "generic webhook: X-Berth-Signature and X-Berth-Timestamp are required",
      );
    signed = Buffer.concat([Buffer.from(`${ts}.`), body]);
    if (!secretsEqual(sig, `sha256=${hmacHex(settings.secret, signed)}`))
      throw new HttpError(401, "BadSignature", "generic webhook: X-Berth-Signature does not match");
    // The generic hook's timestamp is unix seconds only: no dates, no exponents.
    timestamp = /^[0-9]{1,11}$/.test(ts) ? Number(ts) * 1000 : undefined;
    if (timestamp === undefined)
      throw new HttpError(
        403,
        "BadTimestamp",
        `generic webhook: X-Berth-Timestamp ${quote(ts)} is not unix seconds`,
      );
    checkAge(provider, "X-Berth-Timestamp", timestamp, now, settings.maxAge);
    schema = "GenericPush";
  } else {
    const sig = header("x-hub-signature-256") ?? (provider === "gitea" ? giteaSignature(header) : undefined);
    if (!sig)
      throw new HttpError(401, "Unsigned", `${provider} webhook: the X-Hub-Signature-256 header is missing`);
    if (!secretsEqual(sig, `sha256=${hmacHex(settings.secret, body)}`))
      throw new HttpError(401, "BadSignature", `${provider} webhook: X-Hub-Signature-256 does not match`);
    schema = "GitHubPush";
  }

  // Authentic from here on. Events that trigger nothing need no replay protection.
  const event = header("x-github-event") ?? header("x-gitea-event") ?? header("x-gitlab-event");
  if (event === "ping") return { ignored: "ping" };
  if (provider !== "generic" && event && !/^(push|Push Hook|Tag Push Hook)$/.test(event))
    return { ignored: `event ${event} is not a push` };

  let payload: unknown;
  try {
    payload = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new HttpError(422, "InvalidRequest", `${provider} webhook: the body is not JSON`);
  }
  const push = validateBody<{ ref: string; app?: string; repository?: { pushed_at?: unknown } }>(
    schema,
    payload,
  );
  // GitHub sends pushed_at as unix seconds; Gitea-style senders as a number or a date string; GitLab sends none.
  const pushedAt = provider === "generic" ? undefined : push.repository?.pushed_at;
  if (pushedAt !== undefined) {
    timestamp = parseTimestamp(pushedAt);
    if (timestamp === undefined)
      throw new HttpError(
        403,
        "BadTimestamp",
        `${provider} webhook: repository.pushed_at ${quote(pushedAt)} is not unix seconds or an ISO 8601 date`,
      );
    checkAge(provider, "repository.pushed_at", timestamp, now, settings.maxAge);
  }

  const delivery =
    header("x-github-delivery") ??
    header("x-gitea-delivery") ??
    header("x-gitlab-event-uuid") ??
    header("x-berth-delivery");
  const digest = `body:${createHash("sha256").update(signed).digest("hex")}`;
  const keys = delivery ? [digest, `${provider}:${delivery}`] : [digest];
  // Remembered until a replay would be refused as too old anyway.
  const until = Math.max(now, timestamp ?? now) + settings.maxAge;
  const hit = deliveries.check(keys, now, until);
  if (hit === digest)
    throw new HttpError(
      403,
      "Replayed",
      `${provider} webhook: the same signed body was already received${delivery ? ` (now as delivery ${delivery})` : ""}`,
    );
  if (hit !== undefined)
    throw new HttpError(403, "Replayed", `${provider} webhook: delivery ${delivery} was already received`);
  return push.app === undefined ? { ref: push.ref } : { ref: push.ref, app: push.app };
}

/** Refuses a timestamp older than maxAge or more than MAX_CLOCK_SKEW ahead (403). */
function checkAge(provider: Provider, field: string, timestamp: number, now: number, maxAge: number): void {
  if (now - timestamp > maxAge)
    throw new HttpError(
      403,
      "TooOld",
      `${provider} webhook: delivered ${Math.round((now - timestamp) / 1000)}s after it was sent (${field}); at most ${maxAge / 1000}s is accepted`,
    );
  if (timestamp - now > MAX_CLOCK_SKEW)
    throw new HttpError(
      403,
      "FromTheFuture",
      `${provider} webhook: ${field} is ${Math.round((timestamp - now) / 1000)}s in the future; at most ${MAX_CLOCK_SKEW / 1000}s of clock skew is accepted`,
    );
}

/**
 * A delivery timestamp in ms: unix seconds (an integer, or a string of digits), or a date as GitHub and Gitea
 * write it (RFC 3339: `2024-05-01T10:20:30Z`, `…+02:00`) or GitLab does (`2024-05-01 10:20:30 UTC`,
 * `… +0200`). Undefined for anything else, exponents and out-of-range fields included.
 */
export function parseTimestamp(value: unknown): number | undefined {
  if (typeof value === "number")
    return Number.isSafeInteger(value) && value >= 0 && value < 1e11 ? value * 1000 : undefined;
  if (typeof value !== "string" || value.length > 40) return undefined;
  const text = value.trim();
  if (/^[0-9]{1,11}$/.test(text)) return Number(text) * 1000;
  const m =
    /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))? ?(Z|UTC|([+-])(\d{2}):?(\d{2}))$/i.exec(
      text,
    );
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const offsetHours = Number(m[10] ?? 0);
  const offsetMinutes = Number(m[11] ?? 0);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  if (offsetHours > 14 || offsetMinutes > 59) return undefined;
  const utc = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC rolls 31 February over into March: such a date is not a date.
  if (new Date(utc).getUTCDate() !== day) return undefined;
  const offset = (m[9] === "-" ? -1 : 1) * (offsetHours * 60 + offsetMinutes) * 60_000;
  return utc - offset + Math.floor(Number(`0.${m[7] ?? "0"}`) * 1000);
}

/** A short, quoted rendering of an untrusted value for an error message. */
function quote(value: unknown): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

/** True when a pushed ref (refs/heads/x, refs/tags/x or a bare name) is the ref berth follows. */
export function refMatches(pushed: string, sourceRef: string): boolean {
  const bare = (r: string) => r.replace(/^refs\/(heads|tags)\//, "");
  return pushed === sourceRef || bare(pushed) === bare(sourceRef);
}

/** HMAC-SHA256 as lowercase hex. */
export function hmacHex(secret: string, data: Uint8Array): string {
  return createHmac("sha256", secret).update(data).digest("hex");
}

function giteaSignature(header: (name: string) => string | undefined): string | undefined {
  const hex = header("x-gitea-signature");
  return hex ? `sha256=${hex}` : undefined;
}
