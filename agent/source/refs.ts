/** Finds a ref name in a server's ref advertisement, the way `git rev-parse` orders candidates. */

import { BerthError } from "../object/errors.ts";
import { revisionOf } from "../object/object.ts";
import type { ServerRef } from "./iso-git.ts";

/** True for a full 40-hex commit SHA, which berth uses as is without asking the server. */
export function isFullSha(ref: string): boolean {
  return /^[0-9a-f]{40}$/.test(ref);
}

/** The full ref names `name` may stand for, in Git's order of precedence (a tag wins over a branch). */
export function candidatesFor(name: string): string[] {
  return [name, `refs/${name}`, `refs/tags/${name}`, `refs/heads/${name}`];
}

/** The matched ref and the commit it points at (annotated tags peeled), or undefined. */
export function findRef(refs: ServerRef[], name: string): { ref: string; sha: string } | undefined {
  for (const candidate of candidatesFor(name)) {
    const found = refs.find((r) => r.ref === candidate);
    if (found) return { ref: found.ref, sha: found.peeled ?? found.oid };
  }
  return undefined;
}

/** The message for a ref the server does not have, listing what it does have. */
export function refNotFoundMessage(refs: ServerRef[], name: string): string {
  const branches = shortNames(refs, "refs/heads/");
  const tags = shortNames(refs, "refs/tags/");
  if (branches.length === 0 && tags.length === 0)
    return `branch "${name}" not found: the repository is empty`;
  const kind = name.startsWith("refs/tags/") ? "tag" : "branch";
  let message = `${kind} "${name}" not found; available: ${list(branches)}`;
  if (tags.length > 0) message += `; tags: ${list(tags)}`;
  return message;
}

function shortNames(refs: ServerRef[], prefix: string): string[] {
  return refs.filter((r) => r.ref.startsWith(prefix)).map((r) => r.ref.slice(prefix.length));
}

// Long lists would drown the message; the first few are enough to spot a typo.
function list(names: string[], max = 20): string {
  if (names.length === 0) return "(none)";
  const shown = names.slice(0, max).join(", ");
  return names.length > max ? `${shown}, … (${names.length - max} more)` : shown;
}

/** Which refs previews follow: full ref patterns and branch patterns (`*` matches any run of characters). */
export interface RefPatterns {
  refs?: readonly string[];
  branches?: readonly string[];
}

/** A ref pattern as a RegExp: `*` matches anything (slashes too, as in a Git refspec). */
function patternRegExp(pattern: string): RegExp {
  const body = pattern
    .split("*")
    .map((part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*");
  return new RegExp(`^${body}$`);
}

/**
 * The refs matching `patterns`, newest first, at most `max`. A ref advertisement carries no dates, so "newest"
 * is read from the name: the highest number in it first (pull and merge requests are numbered in order of
 * creation), then by name. Fetching every head to read its commit time would defeat the limit.
 */
export function matchRefs(
  refs: ReadonlyArray<{ ref: string; sha: string }>,
  patterns: RefPatterns,
  max: number,
): Array<{ ref: string; sha: string }> {
  const res = [
    ...(patterns.refs ?? []).map(patternRegExp),
    ...(patterns.branches ?? []).map((b) => patternRegExp(`refs/heads/${b.replace(/^refs\/heads\//, "")}`)),
  ];
  const number = (ref: string) => Math.max(-1, ...(ref.match(/\d+/g) ?? []).map(Number));
  return refs
    .filter((r) => !r.ref.endsWith("^{}") && res.some((re) => re.test(r.ref)))
    .sort((a, b) => number(b.ref) - number(a.ref) || a.ref.localeCompare(b.ref))
    .slice(0, Math.max(0, max));
}

/** The pull (or merge) request number a ref names (`refs/pull/7/head`, `refs/merge-requests/7/head`). */
export function pullRequestOf(ref: string): number | undefined {
  const m = /^refs\/(?:pull|merge-requests)\/(\d+)\//.exec(ref);
  return m ? Number(m[1]) : undefined;
}

/** The revision shown for commit `sha` of `ref` (the SHA alone when `ref` is one); `sha` must be a full SHA. */
export function revisionAt(url: string, ref: string, sha: string): string {
  if (!isFullSha(sha))
    throw new BerthError(`"${sha}" is not a full 40-hex commit SHA`, { subject: `git ${url}` });
  return isFullSha(ref) ? revisionOf("", sha) : revisionOf(ref, sha);
}
