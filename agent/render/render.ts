/**
 * render: the plain YAML/JSON manifests under an app's path in a Snapshot → the desired objects and their
 * digest. Any error means the caller applies nothing; `skipped` lists documents that are not objects.
 */
import { canonicalJson, digestOf } from "../object/canonical.ts";
import { messageOf } from "../object/errors.ts";
import { type KubeObject, type ObjectRef, refOf } from "../object/object.ts";
import type { Snapshot } from "../object/snapshot.ts";
import { classifyDocument } from "./kube-object.ts";
import { parseJsonFile, parseYamlFile } from "./parse-manifests.ts";
import { type ManifestFile, walkManifests } from "./walk.ts";

/** Bounds on what one app may render; hostile repositories hit these, not the agent's memory. */
export interface RenderLimits {
  /** Bytes per file (default 2 MiB). */
  maxFileBytes: number;
  /** Documents (and List items) per app (default 10000). */
  maxDocuments: number;
  /** Alias expansions per YAML document (yaml's maxAliasCount, default 100). */
  maxAliases: number;
  /** Nesting depth of one document (default 200). */
  maxDepth: number;
}

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

/** Options of render(). */
export interface RenderOptions {
  limits?: Partial<RenderLimits>;
}

/** Renders the manifests under `appPath` ("" is the repository root). Never rejects: problems land in `errors`. */
export async function render(
  snapshot: Snapshot,
  appPath: string,
  options: RenderOptions = {},
): Promise<RenderResult> {
  const limits: RenderLimits = { ...DEFAULT_RENDER_LIMITS, ...definedOnly(options.limits ?? {}) };
  const objects: DesiredObject[] = [];
  const skipped: RenderProblem[] = [];
  const errors: RenderProblem[] = [];
  let files = 0;
  try {
    const walked = await walkManifests(snapshot, appPath);
    skipped.push(...walked.skipped);
    errors.push(...walked.errors);
    let budget = limits.maxDocuments;
    for (const file of walked.files) {
      files += 1;
      const used = await renderFile(snapshot, file, limits, budget, objects, skipped, errors);
      budget -= used;
      if (budget < 0) break;
    }
  } catch (err) {
    errors.push({ path: appPath === "" ? "(repository root)" : appPath, message: messageOf(err) });
  }
  return { objects, skipped, errors, digest: digestOfObjects(objects.map((o) => o.object)), files };
}

/** Renders one file into the collections; returns how many documents and List items it used. */
async function renderFile(
  snapshot: Snapshot,
  file: ManifestFile,
  limits: RenderLimits,
  budget: number,
  objects: DesiredObject[],
  skipped: RenderProblem[],
  errors: RenderProblem[],
): Promise<number> {
  const bytes = await snapshot.readBlob(file.realPath);
  if (bytes.byteLength > limits.maxFileBytes) {
    errors.push({
      path: file.path,
      message: `file is ${bytes.byteLength} bytes, over the limit of ${limits.maxFileBytes}`,
    });
    return 0;
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    errors.push({ path: file.path, message: "not valid UTF-8" });
    return 0;
  }
  const parseLimits = { documentBudget: budget, maxAliases: limits.maxAliases, maxDepth: limits.maxDepth };
  const parsed = file.path.toLowerCase().endsWith(".json")
    ? parseJsonFile(text, parseLimits)
    : parseYamlFile(text, parseLimits);
  if (!Array.isArray(parsed)) {
    const at = parsed.line === undefined ? "" : `:${parsed.line}:${parsed.column ?? 1}`;
    const tooMany = parsed.message.startsWith("too many documents");
    const message = tooMany
      ? `too many documents: the limit is ${limits.maxDocuments} per app`
      : parsed.message;
    errors.push({ path: `${file.path}${at}`, message });
    return tooMany ? budget + 1 : 0;
  }
  let used = parsed.length;
  for (const doc of parsed) {
    for (const verdict of classifyDocument(doc.value)) {
      const source = `${file.path}#${doc.index}${verdict.suffix}`;
      if (verdict.suffix !== "") used += 1;
      if (verdict.kind === "skip") skipped.push({ path: source, message: verdict.reason });
      else if (verdict.kind === "error") errors.push({ path: source, message: verdict.message });
      else objects.push({ object: verdict.object, ref: refOf(verdict.object), source });
    }
  }
  if (used > budget) {
    errors.push({
      path: file.path,
      message: `too many documents: the limit is ${limits.maxDocuments} per app`,
    });
  }
  return used;
}

/** digestOf the objects sorted by canonical JSON, so neither file layout nor order changes it. */
export function digestOfObjects(objects: readonly KubeObject[]): string {
  const keyed = objects.map((object) => ({ key: canonicalJson(object), object }));
  keyed.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return digestOf(keyed.map((k) => k.object));
}

function definedOnly(partial: Partial<RenderLimits>): Partial<RenderLimits> {
  return Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined));
}
