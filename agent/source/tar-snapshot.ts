/**
 * A tar+gzip layer unpacked in memory into a `Snapshot`, with hard bounds: the artifact is someone else's
 * bytes, so a traversal path, a link out of the tree, a device file or a decompression bomb is refused (the
 * whole artifact, naming it), never written anywhere or half-used.
 */
import { Buffer } from "node:buffer";
import { createGunzip } from "node:zlib";
import { BerthError } from "../object/errors.ts";
import type { CommitInfo } from "../object/object.ts";
import { type ReadBlobOptions, type Snapshot, type TreeEntry, withinLimit } from "../object/snapshot.ts";

/** What one artifact may hold. */
export interface UnpackLimits {
  /** Bytes after decompression, all files together. */
  maxBytes: number;
  /** Files, directories and symlinks together (the render walk's limit). */
  maxEntries: number;
  /** Characters of one path. */
  maxPathLength: number;
}

/**
 * 256 MiB unpacked (a manifests artifact is kilobytes; a chart-laden one megabytes), the render walk's
 * 100 000 entries, and PATH_MAX.
 */
export const DEFAULT_UNPACK_LIMITS: UnpackLimits = {
  maxBytes: 256 * 1024 * 1024,
  maxEntries: 100_000,
  maxPathLength: 4096,
};

interface Node {
  type: TreeEntry["type"];
  bytes?: Uint8Array;
  children?: Map<string, Node>;
}

/** A tree held in memory; paths as in `Snapshot`. */
export class MemorySnapshot implements Snapshot {
  constructor(
    private readonly root: Node,
    readonly revision: string,
    readonly commit: CommitInfo,
  ) {}

  async readDir(path: string): Promise<TreeEntry[]> {
    const clean = normalize(path);
    const node = this.find(clean);
    if (!node) throw this.error(clean, "no such directory");
    if (node.type !== "tree") throw this.error(clean, "not a directory");
    return [...(node.children ?? new Map<string, Node>()).entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, child]) => ({ name, path: clean === "" ? name : `${clean}/${name}`, type: child.type }));
  }

  async readBlob(path: string, options?: ReadBlobOptions): Promise<Uint8Array> {
    const clean = normalize(path);
    const node = this.find(clean);
    if (!node) throw this.error(clean, "no such file");
    if (node.type === "tree") throw this.error(clean, "is a directory, not a file");
    return withinLimit(clean, node.bytes ?? new Uint8Array(), options);
  }

  async stat(path: string): Promise<TreeEntry | undefined> {
    const clean = normalize(path);
    const node = this.find(clean);
    if (!node) return undefined;
    return { name: clean.split("/").at(-1) ?? "", path: clean, type: node.type };
  }

  private find(path: string): Node | undefined {
    let node: Node | undefined = this.root;
    if (path === "") return node;
    for (const part of path.split("/")) {
      // Like a Git tree lookup: a symlinked directory is not passed through (render resolves links itself).
      if (node?.type !== "tree") return undefined;
      node = node.children?.get(part);
    }
    return node;
  }

  private error(path: string, what: string): BerthError {
    return new BerthError(`${what} at ${this.revision}`, { subject: path });
  }
}

function normalize(path: string): string {
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw new BerthError(`path must not contain ".."`, { subject: path });
  return parts.join("/");
}

/** Gunzips `gz` in memory, stopping (and refusing) once more than `maxBytes` came out. */
export async function gunzipBounded(gz: Uint8Array, maxBytes: number, subject: string): Promise<Uint8Array> {
  const gunzip = createGunzip();
  const parts: Uint8Array[] = [];
  let size = 0;
  const done = new Promise<void>((resolve, reject) => {
    gunzip.on("data", (chunk: Uint8Array) => {
      size += chunk.byteLength;
      if (size > maxBytes) {
        gunzip.destroy();
        reject(
          new BerthError(
            `the layer decompresses to more than ${maxBytes} bytes (the limit); refused as a possible decompression bomb`,
            { subject, reason: "FetchFailed" },
          ),
        );
        return;
      }
      parts.push(chunk);
    });
    gunzip.on("end", resolve);
    gunzip.on("error", (err) =>
      reject(
        new BerthError(`the layer is not valid gzip: ${err.message}`, {
          subject,
          reason: "FetchFailed",
          cause: err,
        }),
      ),
    );
  });
  gunzip.end(gz);
  await done;
  return Buffer.concat(parts, size);
}

/**
 * Parses a tar archive (ustar, with pax and GNU long-name headers) into a `MemorySnapshot`. Refused: absolute
 * paths, `..` anywhere, symlinks whose target leaves the tree, hard links, devices and FIFOs, a path that is
 * both a file and a directory, more than `limits.maxEntries` entries or paths longer than `maxPathLength`.
 */
export function snapshotFromTar(
  tar: Uint8Array,
  limits: UnpackLimits,
  subject: string,
  revision: string,
  commit: CommitInfo,
): MemorySnapshot {
  const refuse = (message: string) => new BerthError(message, { subject, reason: "FetchFailed" });
  const root: Node = { type: "tree", children: new Map() };
  let entries = 0;
  let offset = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax: Record<string, string> = {};
  let globalPax: Record<string, string> = {};
  const decoder = new TextDecoder();
  const field = (block: Uint8Array, start: number, length: number): string => {
    const raw = block.subarray(start, start + length);
    const nul = raw.indexOf(0);
    return decoder.decode(nul === -1 ? raw : raw.subarray(0, nul));
  };
  const octal = (block: Uint8Array, start: number, length: number): number => {
    // Base-256 (high bit set) encodes sizes beyond 8 GiB: far past any limit here.
    if ((block[start] ?? 0) & 0x80) throw refuse("a tar entry is larger than 8 GiB");
    const text = field(block, start, length).trim();
    const value = text === "" ? 0 : Number.parseInt(text, 8);
    if (!Number.isFinite(value) || value < 0) throw refuse(`a tar header has an invalid number "${text}"`);
    return value;
  };
  for (;;) {
    if (offset + 512 > tar.byteLength) {
      if (offset === tar.byteLength) break; // No end-of-archive blocks: tolerated, as GNU tar does.
      throw refuse("the tar archive is truncated");
    }
    const header = tar.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const size = octal(header, 124, 12);
    const type = String.fromCharCode(header[156] || 48);
    const dataStart = offset + 512;
    const dataEnd = dataStart + size;
    if (dataEnd > tar.byteLength) throw refuse("the tar archive is truncated");
    const data = tar.subarray(dataStart, dataEnd);
    offset = dataStart + Math.ceil(size / 512) * 512;
    if (type === "x" || type === "g") {
      const parsed = parsePax(decoder.decode(data), refuse);
      if (type === "g") globalPax = { ...globalPax, ...parsed };
      else pax = parsed;
      continue;
    }
    if (type === "L" || type === "K") {
      const text = decoder.decode(data).replace(/\0+$/, "");
      if (type === "L") longName = text;
      else longLink = text;
      continue;
    }
    const prefix = field(header, 345, 155);
    const shortName = field(header, 0, 100);
    const rawPath = pax.path ?? longName ?? globalPax.path ?? (prefix ? `${prefix}/${shortName}` : shortName);
    const linkTarget = pax.linkpath ?? longLink ?? field(header, 157, 100);
    pax = {};
    longName = undefined;
    longLink = undefined;
    if (rawPath.length > limits.maxPathLength)
      throw refuse(`a path is longer than ${limits.maxPathLength} characters`);
    const path = entryPath(rawPath, refuse);
    if (path === "") continue; // "./" itself.
    if (++entries > limits.maxEntries) throw refuse(`more than ${limits.maxEntries} entries (the limit)`);
    switch (type) {
      case "0":
      case "7":
        put(root, path, { type: "blob", bytes: data.slice() }, refuse);
        break;
      case "5":
        put(root, path, { type: "tree", children: new Map() }, refuse);
        break;
      case "2":
        checkLinkTarget(path, linkTarget, refuse);
        put(root, path, { type: "symlink", bytes: new TextEncoder().encode(linkTarget) }, refuse);
        break;
      case "1":
        throw refuse(`${JSON.stringify(path)} is a hard link, which an artifact may not hold`);
      default:
        throw refuse(
          `${JSON.stringify(path)} is a special file (tar type "${type}"), which an artifact may not hold`,
        );
    }
  }
  return new MemorySnapshot(root, revision, commit);
}

function parsePax(text: string, refuse: (m: string) => Error): Record<string, string> {
  const out: Record<string, string> = {};
  // Records are "<length> <key>=<value>\n"; the length counts bytes of the whole record.
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  while (at < bytes.length) {
    let space = at;
    while (space < bytes.length && bytes[space] !== 0x20) space++;
    const length = Number.parseInt(new TextDecoder().decode(bytes.subarray(at, space)), 10);
    if (!Number.isFinite(length) || length <= 0 || at + length > bytes.length)
      throw refuse("a pax header is malformed");
    const record = new TextDecoder().decode(bytes.subarray(space + 1, at + length - 1));
    const eq = record.indexOf("=");
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    at += length;
  }
  return out;
}

/** "./a//b/" → "a/b"; absolute paths and ".." are refused, not cleaned: such an archive is hostile or broken. */
function entryPath(raw: string, refuse: (m: string) => Error): string {
  if (raw.startsWith("/") || /^[A-Za-z]:[\\/]/.test(raw))
    throw refuse(`${JSON.stringify(raw)} is an absolute path; an artifact's paths must be relative`);
  if (raw.includes("\\")) throw refuse(`${JSON.stringify(raw)} holds a backslash`);
  const parts = raw.split("/").filter((p) => p !== "" && p !== ".");
  if (parts.includes("..")) throw refuse(`${JSON.stringify(raw)} climbs out of the artifact ("..")`);
  return parts.join("/");
}

/** A symlink must stay inside the tree: relative, and never climbing above the root on the way. */
function checkLinkTarget(path: string, target: string, refuse: (m: string) => Error): void {
  if (target === "" || target.startsWith("/") || /^[A-Za-z]:[\\/]/.test(target))
    throw refuse(`symlink ${JSON.stringify(path)} -> ${JSON.stringify(target)} points outside the artifact`);
  let depth = path.split("/").length - 1;
  for (const part of target.split("/")) {
    if (part === "" || part === ".") continue;
    depth += part === ".." ? -1 : 1;
    if (depth < 0)
      throw refuse(
        `symlink ${JSON.stringify(path)} -> ${JSON.stringify(target)} points outside the artifact`,
      );
  }
}

function put(root: Node, path: string, node: Node, refuse: (m: string) => Error): void {
  const parts = path.split("/");
  let dir = root;
  for (const part of parts.slice(0, -1)) {
    let next = dir.children?.get(part);
    if (!next) {
      next = { type: "tree", children: new Map() };
      dir.children?.set(part, next);
    }
    if (next.type !== "tree")
      throw refuse(`${JSON.stringify(path)} lies under ${JSON.stringify(part)}, which is not a directory`);
    dir = next;
  }
  const name = parts.at(-1) as string;
  const existing = dir.children?.get(name);
  if (existing?.type === "tree" && node.type === "tree") return;
  if (existing && (existing.type === "tree" || node.type === "tree"))
    throw refuse(`${JSON.stringify(path)} is both a directory and a file`);
  // A later entry for the same file replaces the earlier one, as extracting the archive would.
  dir.children?.set(name, node);
}
