/** Bearer tokens with scopes, compared in constant time; anonymous reads only when the operator allows them on loopback. */
import { createHash, timingSafeEqual } from "node:crypto";
import { HttpError } from "./http-error.ts";

/** What a token may do: `read` the API, or also `operate` (sync, suspend, resume). */
export type Scope = "read" | "operate";

/** One accepted token, kept only as its SHA-256 digest, with the name syncs it starts are recorded under. */
export interface TokenEntry {
  digest: Buffer;
  scope: Scope;
  name: string;
}

/** Keeps a token as its digest, so the plaintext is not held longer than needed. */
export function tokenEntry(token: string, scope: Scope, name: string = scope): TokenEntry {
  return { digest: sha256(token.trim()), scope, name };
}

/** Who a request acts as: the matched token's scope and name (`anonymous` for tokenless reads). */
export interface Caller {
  scope: Scope;
  name: string;
}

/** True when two secrets are equal; compares fixed-length digests so neither content nor length leaks through timing. */
export function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

/** True for a listen address on the loopback interface. */
export function isLoopback(listen: string): boolean {
  const host = listen.startsWith("[") ? listen.slice(1, listen.indexOf("]")) : listen.split(":")[0];
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host ?? "");
}

/** Checks an Authorization header against the tokens for a needed scope; throws 401 or 403. */
export function authorize(
  header: string | undefined,
  needed: Scope,
  tokens: readonly TokenEntry[],
  anonymousRead: boolean,
): Caller {
  if (!header) {
    if (needed === "read" && anonymousRead) return { scope: "read", name: "anonymous" };
    throw new HttpError(401, "Unauthorized", "a bearer token is required (Authorization: Bearer …)");
  }
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match?.[1]) throw new HttpError(401, "Unauthorized", "the Authorization header is not a bearer token");
  const digest = sha256(match[1]);
  // Check every token, so the time taken does not say which one (if any) matched.
  let found: TokenEntry | undefined;
  for (const t of tokens) {
    if (timingSafeEqual(digest, t.digest) && (found === undefined || t.scope === "operate")) found = t;
  }
  if (!found) throw new HttpError(401, "Unauthorized", "the bearer token is not valid");
  if (needed === "operate" && found.scope !== "operate")
    throw new HttpError(403, "Forbidden", "this token has the read scope; the operate scope is needed");
  return { scope: found.scope, name: found.name };
}

function sha256(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}
