/**
 * An OCI artifact as berth's source (Flux's OCIRepository): `resolve()` turns the tag (or semver range) into the
 * manifest digest with one manifest request; `snapshot()` pulls the manifest and its one tar+gzip layer once,
 * keeps both content-addressed under the cache directory, and unpacks the layer in memory into a `Snapshot`.
 */
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BerthError, messageOf } from "../object/errors.ts";
import { boundedCommit, type CommitInfo } from "../object/object.ts";
import { withRetries } from "../object/retry.ts";
import { highestMatching, parseRange } from "../object/semver-range.ts";
import type { Snapshot } from "../object/snapshot.ts";
import { isRetryable as isNetworkRetryable } from "./fetch-errors.ts";
import { NetworkError } from "./http-client.ts";
import { serialized } from "./lock.ts";
import { OciClient, type OciReference, parseOciUrl, RegistryError, sha256 } from "./oci-registry.ts";
import { DEFAULT_UNPACK_LIMITS, gunzipBounded, snapshotFromTar, type UnpackLimits } from "./tar-snapshot.ts";

/** Flux's artifact media types (`flux push artifact`). */
export const FLUX_CONFIG_TYPE = "application/vnd.cncf.flux.config.v1+json";
export const FLUX_CONTENT_TYPE = "application/vnd.cncf.flux.content.v1.tar+gzip";
/** Layer types berth unpacks: Flux's, and the generic ones `oras push dir.tgz` or an image layer carries. */
const LAYER_TYPES = new Set([
  FLUX_CONTENT_TYPE,
  "application/vnd.oci.image.layer.v1.tar+gzip",
  "application/vnd.docker.image.rootfs.diff.tar.gzip",
  "application/gzip",
  "application/x-gzip",
  "application/tar+gzip",
  "application/x-tar+gzip",
  // `oras push ref file.tgz` or `oras push ref dir/` without a type: ORAS's default type, gzipped content.
  "application/vnd.oci.image.layer.v1.tar",
]);

/** Which version of the artifact to follow, and how to reach it. */
export interface OciSourceOptions {
  /** `oci://host[:port]/repository`. */
  url: string;
  tag?: string;
  semver?: string;
  digest?: string;
  /** Directory of the content-addressed cache (manifests and layers by digest). */
  cacheDir: string;
  credentials?: () => { username: string; password: string } | undefined;
  /** PEM text of a CA to trust besides the system's. */
  ca?: string;
  insecure?: boolean;
  timeoutMs?: number;
  retries?: number;
  retryDelayMs?: number;
  /** Compressed layer size limit (default 64 MiB). */
  maxLayerBytes?: number;
  limits?: UnpackLimits;
  /** Sees every registry request, for metrics and tests. */
  onRequest?: (method: string, path: string, status: number | undefined) => void;
}

/** One artifact repository, followed by tag, semver range or digest. */
export class OciSource {
  /** The `oci://` URL, as shown in messages (never holds credentials). */
  readonly url: string;
  /** The tag, range or digest followed, for logs. */
  readonly ref: string;
  private readonly reference: OciReference;
  private readonly client: OciClient;
  private readonly options: OciSourceOptions;

  constructor(options: OciSourceOptions) {
    this.reference = parseOciUrl(options.url);
    this.url = options.url;
    const picked = [options.tag, options.semver, options.digest].filter((x) => x !== undefined);
    if (picked.length !== 1)
      throw new BerthError("exactly one of tag, semver or digest must be set", { subject: this.subject });
    if (options.semver !== undefined) {
      try {
        parseRange(options.semver);
      } catch (err) {
        throw new BerthError(messageOf(err), { subject: this.subject });
      }
    }
    this.ref = options.tag ?? options.semver ?? options.digest ?? "";
    this.options = options;
    this.client = new OciClient(this.reference, {
      timeoutMs: options.timeoutMs ?? 60_000,
      ...(options.credentials ? { credentials: options.credentials } : {}),
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      ...(options.insecure ? { insecure: true } : {}),
      ...(options.onRequest ? { onRequest: options.onRequest } : {}),
    });
  }

  /** What errors are about: the registry and repository. */
  get subject(): string {
    return `OCI artifact ${this.url}`;
  }

  /**
   * The revision to apply now: `<tag>@sha256:<hex>`, or `sha256:<hex>` for a digest. A tag costs one manifest
   * HEAD; a semver range the tag list plus that HEAD; a digest nothing.
   */
  async resolve(): Promise<string> {
    const { tag, semver, digest } = this.options;
    if (digest !== undefined) return digest;
    return this.call("resolve", async () => {
      let picked = tag as string;
      if (semver !== undefined) {
        const tags = await this.client.tags();
        const best = highestMatching(tags, semver);
        if (!best)
          throw new BerthError(
            `no tag matches the semver range "${semver}" (${tags.length} tags: ${tags.slice(0, 10).join(", ")}${tags.length > 10 ? ", …" : ""})`,
            { subject: this.subject, reason: "FetchFailed" },
          );
        picked = best;
      }
      return `${picked}@${await this.client.resolveTag(picked)}`;
    });
  }

  /** The artifact at a revision from `resolve()`: from the cache, or pulled (manifest, then its layer). */
  async snapshot(revision: string): Promise<Snapshot> {
    const m = /^(?:([^@]+)@)?(sha256:[0-9a-f]{64})$/.exec(revision);
    if (!m) throw new BerthError(`"${revision}" is not an OCI revision`, { subject: this.subject });
    const digest = m[2] as string;
    const artifact = `${this.subject}@${digest}`;
    return serialized(join(this.options.cacheDir, digest), async () => {
      let manifestBytes = await this.cached(digest);
      if (!manifestBytes) {
        manifestBytes = await this.call("pull", async () => (await this.client.manifest(digest)).bytes);
      }
      const manifest = parseManifest(manifestBytes, artifact);
      const layer = manifest.layer;
      const maxLayer = this.options.maxLayerBytes ?? 64 * 1024 * 1024;
      if (layer.size > maxLayer)
        throw new BerthError(`the layer is ${layer.size} bytes, more than the ${maxLayer} allowed`, {
          subject: artifact,
          reason: "FetchFailed",
        });
      let gz = await this.cached(layer.digest);
      if (!gz) gz = await this.call("pull", () => this.client.blob(layer.digest, maxLayer));
      const limits = this.options.limits ?? DEFAULT_UNPACK_LIMITS;
      // Unpacked before anything is cached: a hostile layer leaves nothing behind to be picked up later.
      // Sniffed rather than trusted from the media type: ORAS's default type says tar for gzipped content.
      const gzipped = gz[0] === 0x1f && gz[1] === 0x8b;
      if (!gzipped && gz.byteLength > limits.maxBytes)
        throw new BerthError(`the layer is more than ${limits.maxBytes} bytes (the limit)`, {
          subject: artifact,
          reason: "FetchFailed",
        });
      const tar = gzipped ? await gunzipBounded(gz, limits.maxBytes, artifact) : gz;
      const snapshot = snapshotFromTar(
        tar,
        limits,
        artifact,
        revision,
        commitOf(digest, manifest.annotations),
      );
      await this.store(layer.digest, gz);
      await this.store(digest, manifestBytes);
      return snapshot;
    });
  }

  /** A cached blob whose bytes still hash to its name (a damaged one is fetched again). */
  private async cached(digest: string): Promise<Uint8Array | undefined> {
    try {
      const bytes = new Uint8Array(await readFile(this.blobPath(digest)));
      return sha256(bytes) === digest ? bytes : undefined;
    } catch {
      return undefined;
    }
  }

  private async store(digest: string, bytes: Uint8Array): Promise<void> {
    const path = this.blobPath(digest);
    await mkdir(join(path, ".."), { recursive: true, mode: 0o700 });
    const tmp = `${path}.${process.pid}.${Math.random().toString(16).slice(2)}.tmp`;
    await writeFile(tmp, bytes, { mode: 0o600 });
    await rename(tmp, path);
  }

  private blobPath(digest: string): string {
    return join(this.options.cacheDir, "sha256", digest.replace(/^sha256:/, ""));
  }

  /** Runs registry calls with retries, turning failures into errors naming the registry and what to check. */
  private call<T>(what: "resolve" | "pull", work: () => Promise<T>): Promise<T> {
    return withRetries(work, {
      retries: this.options.retries ?? 3,
      baseDelayMs: this.options.retryDelayMs ?? 1000,
      retryable: (err) =>
        isNetworkRetryable(err) ||
        (err instanceof RegistryError && (err.status >= 500 || err.status === 429)),
      failed: (err, attempts) => this.failed(err, attempts, what),
    });
  }

  private failed(err: unknown, attempts: number, what: string): BerthError {
    if (err instanceof BerthError) return err;
    const subject = `OCI registry ${this.reference.registry} (${this.url})`;
    const tries = attempts > 1 ? ` (after ${attempts} attempts)` : "";
    if (err instanceof NetworkError)
      return new BerthError(`cannot reach the registry: ${err.message}${tries}`, {
        subject,
        reason: "FetchFailed",
        cause: err,
      });
    if (err instanceof RegistryError && (err.status === 401 || err.status === 403))
      return new BerthError(
        `authentication failed (HTTP ${err.status}): check auth.username and auth.passwordFile`,
        { subject, reason: "FetchFailed", cause: err },
      );
    return new BerthError(`${what} failed: ${messageOf(err)}${tries}`, {
      subject,
      reason: "FetchFailed",
      cause: err,
    });
  }
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** The one layer berth unpacks, checked against the media types it accepts. */
function parseManifest(
  bytes: Uint8Array,
  artifact: string,
): { layer: Descriptor; annotations: Record<string, string> } {
  const refuse = (message: string) => new BerthError(message, { subject: artifact, reason: "FetchFailed" });
  let manifest: {
    mediaType?: string;
    config?: Partial<Descriptor>;
    layers?: Array<Partial<Descriptor>>;
    annotations?: Record<string, string>;
  };
  try {
    manifest = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw refuse("the manifest is not JSON");
  }
  if (manifest.mediaType?.includes("index") || manifest.mediaType?.includes("manifest.list"))
    throw refuse(`is an image index (${manifest.mediaType}), not an artifact with one layer`);
  const layers = (manifest.layers ?? []).filter(isDescriptor);
  if (layers.length !== (manifest.layers ?? []).length) throw refuse("the manifest has a malformed layer");
  const usable = layers.filter((l) => LAYER_TYPES.has(l.mediaType));
  // Flux takes the Flux content layer; a generic ORAS push of one .tgz has exactly one layer.
  const flux = usable.filter((l) => l.mediaType === FLUX_CONTENT_TYPE);
  const layer = flux.length === 1 ? flux[0] : usable.length === 1 ? usable[0] : undefined;
  if (!layer)
    throw refuse(
      `expected one tar+gzip layer (${FLUX_CONTENT_TYPE} or a generic tar+gzip), found ${layers.length === 0 ? "none" : layers.map((l) => l.mediaType).join(", ")}`,
    );
  return { layer, annotations: manifest.annotations ?? {} };
}

function isDescriptor(d: Partial<Descriptor>): d is Descriptor {
  return (
    typeof d.mediaType === "string" &&
    typeof d.digest === "string" &&
    /^sha256:[0-9a-f]{64}$/.test(d.digest) &&
    typeof d.size === "number" &&
    d.size >= 0
  );
}

/** What the ledger records as the "commit": the digest, and the annotations Flux and ORAS set. */
function commitOf(digest: string, a: Record<string, string>): CommitInfo {
  const revision = a["org.opencontainers.image.revision"];
  const source = a["org.opencontainers.image.source"];
  return boundedCommit({
    sha: digest,
    author: source ?? "",
    message: [revision ? `revision ${revision}` : "", a["org.opencontainers.image.description"] ?? ""]
      .filter(Boolean)
      .join("\n"),
    time: a["org.opencontainers.image.created"] ?? "",
  });
}
