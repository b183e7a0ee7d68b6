/** URL helpers that keep credentials out of messages, logs and cache paths. */
import { createHash } from "node:crypto";
import { join } from "node:path";

/** A repository URL split into its credential-free form and any userinfo it carried. */
export interface ParsedRepoUrl {
  /** The URL without userinfo, safe to show and to hash. */
  clean: string;
  /** Credentials embedded in the URL (`https://user:pass@host/…`), if any. */
  userinfo: { username: string; password: string } | undefined;
}

/** Splits userinfo off a repository URL; rejects anything but http(s), the only transport isomorphic-git speaks. */
export function parseRepoUrl(url: string): ParsedRepoUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Never echo the input: it may carry a password.
    throw new Error(`invalid repository URL "${redactUrl(url)}"`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new Error(`unsupported repository URL scheme "${parsed.protocol}": only http(s) is supported`);
  }
  const userinfo =
    parsed.username || parsed.password
      ? { username: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) }
      : undefined;
  parsed.username = "";
  parsed.password = "";
  return { clean: parsed.toString().replace(/\/+$/, ""), userinfo };
}

/** The URL with any `user:pass@` removed, also for strings that do not parse as URLs. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, "$1");
}

/** The bare object cache for one repository: `<cacheDir>/<sha256 of the clean URL>`, so no secret reaches the path. */
export function cachePathFor(cacheDir: string, cleanUrl: string): string {
  const digest = createHash("sha256").update(cleanUrl).digest("hex").slice(0, 32);
  return join(cacheDir, `${digest}.git`);
}
