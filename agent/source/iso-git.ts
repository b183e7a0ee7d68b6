/**
 * The one file that binds isomorphic-git: the few repository operations berth makes on its bare cache, with
 * the file system each needs (atomic writes for the cache, plain reads for snapshots). Everything else in
 * source/ works through these, so swapping the library means changing this file.
 */
import * as fs from "node:fs";
import git, { type HttpClient, type ServerRef } from "isomorphic-git";
import { atomicFs } from "./atomic-fs.ts";

export type { HttpClient, ServerRef };

/** Parsed pack indexes isomorphic-git keeps between reads; one per snapshot so they are freed with it. */
export type PackCache = Record<string, unknown>;

/** What a fetch into the cache needs: the server, which ref, how deep, and headers (auth). */
export interface FetchArgs {
  http: HttpClient;
  gitdir: string;
  url: string;
  /** The local ref the server is told we have (the tracking ref), or the SHA asked for. */
  ref: string;
  remoteRef: string;
  singleBranch: boolean;
  tags: boolean;
  depth?: number;
  headers: Record<string, string>;
}

/** Fetches `remoteRef` into the bare cache, writing every file atomically. */
export function fetchInto(args: FetchArgs): Promise<unknown> {
  return git.fetch({ fs: atomicFs, ...args });
}

/** The server's refs (protocol v1: every ref, tags peeled, in the single GET of the advertisement). */
export function listServerRefs(
  http: HttpClient,
  url: string,
  headers: Record<string, string>,
): Promise<ServerRef[]> {
  return git.listServerRefs({ http, url, protocolVersion: 1, peelTags: true, headers });
}

/** Whether the cache at `gitdir` was fully initialised (its fetch refspec is the last thing written). */
export async function hasFetchConfig(gitdir: string): Promise<boolean> {
  return Boolean(await git.getConfig({ fs: atomicFs, gitdir, path: "remote.origin.fetch" }));
}

/** Initialises a bare cache whose fetches of `url` land in refs/remotes/origin/*. */
export async function initCache(gitdir: string, url: string): Promise<void> {
  await git.init({ fs: atomicFs, gitdir, bare: true, defaultBranch: "main" });
  await git.setConfig({ fs: atomicFs, gitdir, path: "remote.origin.url", value: url });
  await git.setConfig({
    fs: atomicFs,
    gitdir,
    path: "remote.origin.fetch",
    value: "+refs/heads/*:refs/remotes/origin/*",
  });
}

/** The commit a local ref points at (throws when there is none). */
export function resolveLocalRef(gitdir: string, ref: string): Promise<string> {
  return git.resolveRef({ fs: atomicFs, gitdir, ref });
}

/** A commit of the cache (throws when it is not there). */
export async function readCommit(gitdir: string, oid: string) {
  return (await git.readCommit({ fs, gitdir, oid })).commit;
}

/** A tree's entries: name (`path`), mode and object id. */
export async function readTree(gitdir: string, oid: string, cache: PackCache) {
  return (await git.readTree({ fs, gitdir, oid, cache })).tree;
}

/** A blob's bytes. */
export async function readBlob(gitdir: string, oid: string, cache: PackCache): Promise<Uint8Array> {
  return (await git.readBlob({ fs, gitdir, oid, cache })).blob;
}
