/**
 * Push webhooks: verifies the provider's signature or token in constant time, refuses replays and stale
 * deliveries, validates the payload, and says which ref was pushed. Pure: the route decides what to trigger.
 */
import { createHmac } from "node:crypto";
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

/** Remembers recent delivery ids, so a captured request sent again is refused. */
export class DeliveryLog {
  private readonly ids = new Map<string, number>();
  constructor(private readonly capacity = 10_000) {}

  /** Records an id; false if it was seen before. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.set(id, Date.now());
    if (this.ids.size > this.capacity) {
      const oldest = this.ids.keys().next().value;
      if (oldest !== undefined) this.ids.delete(oldest);
    }
    return true;
  }
}

/** Verifies one delivery; throws HttpError 401 (unsigned/wrong), 403 (replayed/too old) or 422 (bad payload). */
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
    const signed = Buffer.concat([Buffer.from(`${ts}.`), body]);
    if (!secretsEqual(sig, `sha256=${hmacHex(settings.secret, signed)}`))
      throw new HttpError(401, "BadSignature", "generic webhook: X-Berth-Signature does not match");
    timestamp = Number(ts) * 1000;
    if (!Number.isFinite(timestamp))
      throw new HttpError(
        422,
        "InvalidRequest",
        `generic webhook: X-Berth-Timestamp "${ts}" is not unix seconds`,
      );
    schema = "GenericPush";
  } else {
    const sig = header("x-hub-signature-256") ?? (provider === "gitea" ? giteaSignature(header) : undefined);
    if (!sig)
      throw new HttpError(401, "Unsigned", `${provider} webhook: the X-Hub-Signature-256 header is missing`);
    if (!secretsEqual(sig, `sha256=${hmacHex(settings.secret, body)}`))
      throw new HttpError(401, "BadSignature", `${provider} webhook: X-Hub-Signature-256 does not match`);
    schema = "GitHubPush";
  }

  // Authentic from here on. A delivery id seen before is a replay.
  const delivery =
    header("x-github-delivery") ??
    header("x-gitea-delivery") ??
    header("x-gitlab-event-uuid") ??
    header("x-berth-delivery");
  if (delivery && !deliveries.add(`${provider}:${delivery}`))
    throw new HttpError(403, "Replayed", `${provider} webhook: delivery ${delivery} was already received`);

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
  const push = validateBody<{ ref: string; app?: string; repository?: { pushed_at?: number | string } }>(
    schema,
    payload,
  );
  if (provider === "github" && typeof push.repository?.pushed_at === "number")
    timestamp = push.repository.pushed_at * 1000;
  if (timestamp !== undefined && now - timestamp > settings.maxAge)
    throw new HttpError(
      403,
      "TooOld",
      `${provider} webhook: delivered ${Math.round((now - timestamp) / 1000)}s after it was sent; at most ${settings.maxAge / 1000}s is accepted`,
    );
  return push.app === undefined ? { ref: push.ref } : { ref: push.ref, app: push.app };
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
