/**
 * One manifest file's bytes → its objects, skips and errors. Pure and synchronous, so it runs the same in
 * the parse worker (agent/render/parse-worker.ts) and, where no worker can start, in the calling thread.
 */
import { canonicalJson } from "../object/canonical.ts";
import type { KubeObject } from "../object/object.ts";
import { tooLargeMessage } from "../object/snapshot.ts";
import { classifyDocument } from "./kube-object.ts";
import { type ParsedDocument, parseJsonFile, parseYamlFile } from "./parse-manifests.ts";

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

/** What one file may use: the app's limits and the documents left in its budget. */
export interface FileRenderLimits extends RenderLimits {
  /** Documents (and List items) this file may still add. */
  budget: number;
}

/** A problem with a file or document; `path` is `file:line:column` when the line is known. */
export interface FileProblem {
  path: string;
  message: string;
}

/** One object of the file with its source (`file#2`, `file#0.items[3]`) and canonical JSON (for the digest). */
export interface FileObject {
  object: KubeObject;
  source: string;
  canonical: string;
}

/** What a file rendered to; `used` counts documents and List items against the app's budget. */
export interface FileRender {
  objects: FileObject[];
  skipped: FileProblem[];
  errors: FileProblem[];
  used: number;
}

/**
 * The render of a file over the size limit: that error alone, naming the key that raises it (a tool's output is
 * held to render.maxOutputBytes while the tool runs, so only a file read from a source gets here).
 */
export function tooLarge(path: string, size: number, maxFileBytes: number): FileRender {
  return {
    objects: [],
    skipped: [],
    errors: [{ path, message: `${tooLargeMessage(size, maxFileBytes)} (render.maxFileBytes)` }],
    used: 0,
  };
}

/** The error of an app past its document budget, naming the key that raises it. */
function tooManyDocuments(limits: RenderLimits): string {
  return `too many documents: the limit is ${limits.maxDocuments} per app (render.maxDocuments)`;
}

/** Parses and classifies one file. */
export function renderFileBytes(path: string, bytes: Uint8Array, limits: FileRenderLimits): FileRender {
  const out: FileRender = { objects: [], skipped: [], errors: [], used: 0 };
  if (bytes.byteLength > limits.maxFileBytes) return tooLarge(path, bytes.byteLength, limits.maxFileBytes);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    out.errors.push({ path, message: "not valid UTF-8" });
    return out;
  }
  const budget = limits.budget;
  const parseLimits = { documentBudget: budget, maxAliases: limits.maxAliases, maxDepth: limits.maxDepth };
  const isJson = path.toLowerCase().endsWith(".json");
  const parsed = isJson ? parseJsonFile(text, parseLimits) : parseYamlFile(text, parseLimits);
  if (!Array.isArray(parsed)) {
    const at = parsed.line === undefined ? "" : `:${parsed.line}:${parsed.column ?? 1}`;
    const tooMany = parsed.message.startsWith("too many documents");
    const message = tooMany ? tooManyDocuments(limits) : parsed.message;
    out.errors.push({ path: `${path}${at}`, message });
    out.used = tooMany ? budget + 1 : 0;
    return out;
  }
  out.used = parsed.length;
  for (const doc of parsed) {
    if (isChartFile(path, doc.value)) {
      out.skipped.push({ path: `${path}#${doc.index}`, message: "a Helm chart's Chart.yaml: not applied" });
      continue;
    }
    for (const verdict of classifyDocument(doc.value)) {
      const source = `${path}#${doc.index}${verdict.suffix}`;
      if (verdict.suffix !== "") out.used += 1;
      if (verdict.kind === "skip") out.skipped.push({ path: source, message: verdict.reason });
      else if (verdict.kind === "error") {
        // file:line:column, then which document: the line is what an editor jumps to.
        const where = lineOf(doc, text, isJson, verdict.at);
        const at = where ? `:${where.line}:${where.column}` : "";
        const item = verdict.suffix === "" ? "" : ` ${verdict.suffix.slice(1)}`;
        out.errors.push({
          path: `${path}${at}`,
          message: `document ${doc.index}${item}: ${verdict.message}`,
        });
      } else out.objects.push({ object: verdict.object, source, canonical: canonicalJson(verdict.object) });
    }
  }
  if (out.used > budget) {
    out.errors.push({ path, message: tooManyDocuments(limits) });
  }
  return out;
}

/** Where a key path of a document is; JSON files are located by reading them as YAML (JSON is YAML). */
function lineOf(
  doc: ParsedDocument,
  text: string,
  isJson: boolean,
  path: ReadonlyArray<string | number>,
): { line: number; column: number } | undefined {
  if (doc.at) return doc.at(path);
  if (!isJson) return undefined;
  const asYaml = parseYamlFile(text, { documentBudget: 1, maxAliases: 0, maxDepth: 10_000 });
  return Array.isArray(asYaml) ? asYaml[0]?.at?.(path) : undefined;
}

/** A Helm chart's Chart.yaml (apiVersion and name, no kind or metadata) sits beside manifests in many repositories. */
function isChartFile(path: string, value: unknown): boolean {
  if (!/(^|\/)Chart\.ya?ml$/.test(path) || value === null || typeof value !== "object") return false;
  const doc = value as Record<string, unknown>;
  return typeof doc.name === "string" && !Object.keys(doc).some((k) => /^(kind|metadata)$/i.test(k));
}
