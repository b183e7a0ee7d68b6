/**
 * render: the plain YAML/JSON manifests under an app's path in a Snapshot → the desired objects and their
 * digest. Any error means the caller applies nothing; `skipped` lists documents that are not objects.
 */
import { canonicalJson, sha256Hex } from "../object/canonical.ts";
import { messageOf } from "../object/errors.ts";
import { type KubeObject, type ObjectRef, refOf } from "../object/object.ts";
import { BlobTooLargeError, type Snapshot } from "../object/snapshot.ts";
import {
  type FileRender,
  type FileRenderLimits,
  type RenderLimits,
  renderFileBytes,
  tooLarge,
} from "./render-file.ts";
import { type ManifestFile, walkManifests } from "./walk.ts";

export type { RenderLimits } from "./render-file.ts";

/** The limits used when none are given. */
export const DEFAULT_RENDER_LIMITS: RenderLimits = {
  maxFileBytes: 2 * 1024 * 1024,
  maxDocuments: 10_000,
  maxAliases: 100,
  maxDepth: 200,
};

/** One object to apply and where it came from: `path/file.yaml#2` (0-based document index), `#0.items[3]` for List items. */
export interface DesiredObject {
  object: KubeObject;
  ref: ObjectRef;
  source: string;
}

/** Something about a path: `path` is a file (with `:line:column` for syntax errors), a document or a link. */
export interface RenderProblem {
  path: string;
  message: string;
}

/** What an app's path rendered to. */
export interface RenderResult {
  /** Sorted by file path, then document index. */
  objects: DesiredObject[];
  skipped: RenderProblem[];
  errors: RenderProblem[];
  /** digestOf the objects' canonical JSON, sorted: independent of files and their order. */
  digest: string;
  /** Manifest files read. */
  files: number;
}

/** Parses one file's bytes; the parse worker's pool (agent/render/parse-pool.ts) is one, renderFileBytes another. */
export type FileParser = (
  path: string,
  bytes: Uint8Array,
  limits: FileRenderLimits,
  signal?: AbortSignal,
) => Promise<FileRender>;

/** Parses in the calling thread. */
export const parseInline: FileParser = async (path, bytes, limits) => renderFileBytes(path, bytes, limits);

/**
 * The parsed files of an app's last render, by path. A file whose blob id (so its bytes) and limits are the same
 * is neither read nor parsed again: a commit changing one file of 1,000 parses one. Parsing is a pure function
 * of path, bytes and limits; results with errors are not kept. render() replaces the contents with this render's.
 */
export type ParseMemo = Map<string, { oid: string; limits: string; result: FileRender }>;

/** Options of render(). */
export interface RenderOptions {
  /** The app's parse memo (kept by the caller between renders of the same app). */
  memo?: ParseMemo;
  limits?: Partial<RenderLimits>;
  /** Where files are parsed (default: in this thread). */
  parser?: FileParser;
  /** Stops waiting for a parse (the render then rejects). */
  signal?: AbortSignal;
}

/** Renders the manifests under `appPath` ("" is the repository root). Rejects only when `signal` aborts; other problems land in `errors`. */
export async function render(
  snapshot: Snapshot,
  appPath: string,
  options: RenderOptions = {},
): Promise<RenderResult> {
  const limits: RenderLimits = { ...DEFAULT_RENDER_LIMITS, ...definedOnly(options.limits ?? {}) };
  const parser = options.parser ?? parseInline;
  const objects: DesiredObject[] = [];
  const canonical: string[] = [];
  const skipped: RenderProblem[] = [];
  const errors: RenderProblem[] = [];
  let files = 0;
  const memo = options.memo;
  const kept: ParseMemo = new Map();
  try {
    const walked = await walkManifests(snapshot, appPath);
    skipped.push(...walked.skipped);
    errors.push(...walked.errors);
    let budget = limits.maxDocuments;
    const ahead = readAhead(snapshot, walked.files, memo, parser, limits, options.signal);
    for (const [i, file] of walked.files.entries()) {
      files += 1;
      const fileLimits = { ...limits, budget };
      const limitsKey = memo && file.oid ? JSON.stringify(fileLimits) : "";
      const before = limitsKey ? memo?.get(file.path) : undefined;
      let done: FileRender;
      if (before && before.oid === file.oid && before.limits === limitsKey) done = before.result;
      else done = await ahead.result(i, budget);
      if (limitsKey && file.oid && done.errors.length === 0)
        kept.set(file.path, { oid: file.oid, limits: limitsKey, result: done });
      for (const o of done.objects) {
        objects.push({ object: o.object, ref: refOf(o.object), source: o.source });
        canonical.push(isSecret(o.object) ? canonicalJson(secretShape(o.object)) : o.canonical);
      }
      skipped.push(...done.skipped);
      errors.push(...done.errors);
      budget -= done.used;
      if (budget < 0) break;
    }
  } catch (err) {
    if (options.signal?.aborted) throw err;
    errors.push({ path: appPath === "" ? "(repository root)" : appPath, message: messageOf(err) });
  }
  if (memo) {
    memo.clear();
    for (const [path, entry] of kept) memo.set(path, entry);
  }
  return { objects, skipped, errors, digest: digestOfCanonical(canonical), files };
}

/**
 * Files read and parsed ahead of the one render() is at, at most this many: each file's read (several file
 * system calls through the Git library) and parse (a worker's round trip) would otherwise wait for the one before,
 * and 1,000 small files took a second that way. It bounds what is held beyond the sequential render: this many
 * blobs of at most maxFileBytes and parsed files.
 */
export const READ_AHEAD = 16;

/**
 * Reads and parses `files` in order, up to READ_AHEAD past the one asked for. A file parsed ahead gets the budget
 * left when it was started, which is never less than its own (the files before it only use up budget): when it
 * used more than its own, it is parsed again with that, so the result is the same as in a render one file at a
 * time. Files whose memo entry has the same blob id are not read ahead (render() reuses them).
 */
function readAhead(
  snapshot: Snapshot,
  files: readonly ManifestFile[],
  memo: ParseMemo | undefined,
  parser: FileParser,
  limits: RenderLimits,
  signal: AbortSignal | undefined,
) {
  const started = new Map<number, Promise<{ bytes: Uint8Array; budget: number; done: FileRender }>>();
  let next = 0;
  const start = (i: number, budget: number) => {
    const file = files[i] as ManifestFile;
    // A file over the size limit is refused before it is read where the snapshot can tell (from Git: before it
    // is inflated), and only an error (never parsed again), so files read ahead hold at most READ_AHEAD ×
    // maxFileBytes.
    const work = snapshot.readBlob(file.realPath, { maxBytes: limits.maxFileBytes }).then(
      async (bytes) => ({
        bytes,
        budget,
        done: await parser(file.path, bytes, { ...limits, budget }, signal),
      }),
      (err: unknown) => {
        if (!(err instanceof BlobTooLargeError)) throw err;
        return { bytes: new Uint8Array(0), budget, done: tooLarge(file.path, err.size, limits.maxFileBytes) };
      },
    );
    // Awaited in order by result(); one never reached (a render that stopped early) must not be unhandled.
    work.catch(() => {});
    started.set(i, work);
    return work;
  };
  return {
    /** File `i`'s parse with `budget` (the documents left before it). */
    async result(i: number, budget: number): Promise<FileRender> {
      for (next = Math.max(next, i + 1); next < Math.min(files.length, i + 1 + READ_AHEAD); next++) {
        const file = files[next] as ManifestFile;
        if (!(file.oid && memo?.get(file.path)?.oid === file.oid)) start(next, budget);
      }
      const work = await (started.get(i) ?? start(i, budget));
      started.delete(i);
      if (work.budget === budget || work.done.used <= budget) return work.done;
      return parser((files[i] as ManifestFile).path, work.bytes, { ...limits, budget }, signal);
    },
  };
}

/**
 * digestOf the objects sorted by canonical JSON, so neither file layout nor order changes it. Secret values are
 * left out (their keys stay): the digest is stored in the ledger in plain, and a plain hash over a Secret's value
 * could be guessed from a ledger backup; a changed value still shows as a changed object (keyed per-object digest).
 */
export function digestOfObjects(objects: readonly KubeObject[]): string {
  return digestOfCanonical(
    objects.map((object) => canonicalJson(isSecret(object) ? secretShape(object) : object)),
  );
}

function isSecret(object: KubeObject): boolean {
  return object.kind === "Secret" && object.apiVersion === "v1";
}

/** A Secret with every `data`/`stringData` value blanked, keys kept. */
function secretShape(object: KubeObject): KubeObject {
  const blank = (m: unknown) =>
    m && typeof m === "object" ? Object.fromEntries(Object.keys(m).map((k) => [k, ""])) : m;
  const out: Record<string, unknown> = { ...object };
  if ("data" in out) out.data = blank(out.data);
  if ("stringData" in out) out.stringData = blank(out.stringData);
  return out as KubeObject;
}

/** digestOfObjects from the objects' canonical JSON: the array's canonical JSON is theirs, joined. */
function digestOfCanonical(canonical: readonly string[]): string {
  const sorted = [...canonical].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return `sha256:${sha256Hex(`[${sorted.join(",")}]`)}`;
}

function definedOnly(partial: Partial<RenderLimits>): Partial<RenderLimits> {
  return Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
}
