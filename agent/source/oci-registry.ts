/**
 * A small client of the OCI distribution API (v2): manifests by tag or digest, the tag list, blobs. Written here
 * rather than taken from npm because no maintained registry client fits (docker-registry-client is unmaintained
 * and Docker-only) and berth needs four GETs. node:https (in Bun, Deno and Node alike) because a custom CA must
 * apply to this client alone, which the global fetch cannot do portably.
 *
 * Auth: HTTP basic sent up front (so a poll of an htpasswd registry is one request), or the bearer-token
 * challenge of Docker Hub, GHCR and Harbor, the token kept per scope until the registry refuses it.
 */
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { rootCertificates } from "node:tls";
import { BerthError } from "../object/errors.ts";
import { NetworkError } from "./http-client.ts";

/** Where the artifact lives: `registry.example:5000` and `team/app-manifests`. */
export interface OciReference {
  registry: string;
  repository: string;
}

/** `oci://host[:port]/path` → its registry and repository; throws naming what is wrong. */
export function parseOciUrl(url: string): OciReference {
  const m =
    /^oci:\/\/([^/\s@]+)\/([a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)$/.exec(
      url,
    );
  if (!m)
    throw new BerthError(
      "expected oci://<registry>/<repository> (lower-case repository path, no tag or digest: those go in tag/semver/digest)",
      { subject: url },
    );
  return { registry: m[1] as string, repository: m[2] as string };
}

/** How to reach the registry. */
export interface OciClientOptions {
  /** Read at every request, so a rotated password file takes effect. */
  credentials?: () => { username: string; password: string } | undefined;
  /** PEM of extra CAs to trust (added to the system's). */
  ca?: string;
  /** Plain HTTP (Flux's `insecure`); never set unless the config says `insecure: true`. */
  insecure?: boolean;
  /** Limit for one request, body included. */
  timeoutMs: number;
  /** Sees every request (method and path), for metrics and tests. */
  onRequest?: (method: string, path: string, status: number | undefined) => void;
}

/** A registry's answer with an error status. */
export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "RegistryError";
  }
}

/** The media types a manifest may be asked for in. */
export const MANIFEST_TYPES = [
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
];

/** One repository of one registry. */
export class OciClient {
  private readonly tokens = new Map<string, string>();
  private challenge: { realm: string; service?: string } | "basic" | undefined;

  constructor(
    readonly ref: OciReference,
    private readonly options: OciClientOptions,
  ) {}

  /** The manifest digest a tag points at now: one HEAD (a GET when the registry sends no digest header). */
  async resolveTag(tag: string): Promise<string> {
    const path = `/v2/${this.ref.repository}/manifests/${encodeURIComponent(tag)}`;
    const head = await this.send("HEAD", path, { accept: MANIFEST_TYPES.join(", "), maxBytes: 0 });
    const digest = head.headers["docker-content-digest"];
    if (typeof digest === "string" && /^sha256:[0-9a-f]{64}$/.test(digest)) return digest;
    const got = await this.manifest(tag);
    return got.digest;
  }

  /** The manifest at a tag or digest, and its digest (the sha256 of the bytes served, checked against a digest ref). */
  async manifest(reference: string): Promise<{ digest: string; bytes: Uint8Array; mediaType: string }> {
    const path = `/v2/${this.ref.repository}/manifests/${encodeURIComponent(reference)}`;
    const res = await this.send("GET", path, {
      accept: MANIFEST_TYPES.join(", "),
      maxBytes: 4 * 1024 * 1024,
    });
    const digest = sha256(res.body);
    if (reference.startsWith("sha256:") && reference !== digest)
      throw new RegistryError(`the manifest served for ${reference} hashes to ${digest}`, 0);
    return { digest, bytes: res.body, mediaType: String(res.headers["content-type"] ?? "") };
  }

  /** Every tag of the repository (following `Link` pages). */
  async tags(): Promise<string[]> {
    const out: string[] = [];
    let path: string | undefined = `/v2/${this.ref.repository}/tags/list?n=1000`;
    for (let page = 0; path && page < 100; page++) {
      const res = await this.send("GET", path, { accept: "application/json", maxBytes: 16 * 1024 * 1024 });
      const body = JSON.parse(Buffer.from(res.body).toString("utf8")) as { tags?: unknown };
      if (Array.isArray(body.tags)) for (const t of body.tags) if (typeof t === "string") out.push(t);
      const link = res.headers.link;
      const next = typeof link === "string" ? /<([^>]+)>;\s*rel="?next"?/.exec(link)?.[1] : undefined;
      path = next ? new URL(next, "http://x").pathname + new URL(next, "http://x").search : undefined;
    }
    return out;
  }

  /** A blob, refused past `maxBytes` and checked against its digest. */
  async blob(digest: string, maxBytes: number): Promise<Uint8Array> {
    const res = await this.send("GET", `/v2/${this.ref.repository}/blobs/${digest}`, {
      accept: "*/*",
      maxBytes,
    });
    const got = sha256(res.body);
    if (got !== digest) throw new RegistryError(`blob ${digest} arrived with digest ${got}`, 0);
    return res.body;
  }

  private async send(
    method: "GET" | "HEAD",
    path: string,
    want: { accept: string; maxBytes: number },
  ): Promise<{ headers: IncomingMessage["headers"]; body: Uint8Array }> {
    const scope = `repository:${this.ref.repository}:pull`;
    for (let attempt = 0; ; attempt++) {
      const auth = this.authorization(scope);
      const res = await this.once(method, this.ref.registry, path, want, auth);
      if (res.status === 401 && attempt === 0) {
        this.tokens.delete(scope);
        const header = String(res.headers["www-authenticate"] ?? "");
        if (/^bearer/i.test(header)) {
          const params = challengeParams(header);
          if (!params.realm) throw new RegistryError("the registry asked for a token without a realm", 401);
          this.challenge = { realm: params.realm, ...(params.service ? { service: params.service } : {}) };
          await this.fetchToken(scope);
          continue;
        }
        if (/^basic/i.test(header) && this.challenge !== "basic" && this.options.credentials?.()) {
          this.challenge = "basic";
          continue;
        }
      }
      if (res.status === 404 && method === "HEAD")
        throw new RegistryError("not found (HTTP 404): no such repository or tag", 404);
      if (res.status >= 300) {
        const text = Buffer.from(res.body).toString("utf8").slice(0, 300).trim();
        const detail = registryErrorText(text);
        throw new RegistryError(`HTTP ${res.status}${detail ? `: ${detail}` : ""}`, res.status);
      }
      return res;
    }
  }

  /** Basic for htpasswd registries (and before any challenge is known), the scope's token after a bearer challenge. */
  private authorization(scope: string): string | undefined {
    if (this.challenge && this.challenge !== "basic") {
      const token = this.tokens.get(scope);
      return token ? `Bearer ${token}` : undefined;
    }
    const creds = this.options.credentials?.();
    if (!creds) return undefined;
    return `Basic ${Buffer.from(`${creds.username}:${creds.password}`, "utf8").toString("base64")}`;
  }

  private async fetchToken(scope: string): Promise<void> {
    if (!this.challenge || this.challenge === "basic") return;
    const url = new URL(this.challenge.realm);
    if (this.challenge.service) url.searchParams.set("service", this.challenge.service);
    url.searchParams.set("scope", scope);
    const creds = this.options.credentials?.();
    const basic = creds
      ? `Basic ${Buffer.from(`${creds.username}:${creds.password}`, "utf8").toString("base64")}`
      : undefined;
    if (url.protocol !== "https:" && !this.options.insecure)
      throw new RegistryError(
        `the token service ${url.origin} is not HTTPS (set insecure: true to allow)`,
        0,
      );
    const res = await this.once(
      "GET",
      url.host,
      url.pathname + url.search,
      { accept: "application/json", maxBytes: 1024 * 1024 },
      basic,
    );
    if (res.status >= 300)
      throw new RegistryError(
        `the token service answered HTTP ${res.status}`,
        res.status === 401 || res.status === 403 ? 401 : res.status,
      );
    const body = JSON.parse(Buffer.from(res.body).toString("utf8")) as {
      token?: string;
      access_token?: string;
    };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError("the token service returned no token", 0);
    this.tokens.set(scope, token);
  }

  private once(
    method: string,
    host: string,
    path: string,
    want: { accept: string; maxBytes: number },
    authorization: string | undefined,
  ): Promise<{ status: number; headers: IncomingMessage["headers"]; body: Uint8Array }> {
    const { timeoutMs } = this.options;
    const [hostname, port] = splitHost(host);
    const tls = !this.options.insecure;
    const request = tls ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      let status: number | undefined;
      const fail = (err: Error) => {
        this.options.onRequest?.(method, path, status);
        reject(err);
      };
      const req = request(
        {
          method,
          hostname,
          ...(port ? { port: Number(port) } : {}),
          path,
          headers: {
            accept: want.accept,
            "user-agent": "berth",
            ...(authorization ? { authorization } : {}),
          },
          ...(tls && this.options.ca ? { ca: [...rootCertificates, this.options.ca] } : {}),
          timeout: timeoutMs,
        },
        (res) => {
          status = res.statusCode ?? 0;
          const parts: Buffer[] = [];
          let size = 0;
          // An error's body is only read for its message: its first 64 KiB are plenty.
          const limit = status < 300 ? want.maxBytes : 64 * 1024;
          res.on("data", (chunk: Buffer) => {
            size += chunk.byteLength;
            if (size <= limit) parts.push(chunk);
            else if (status !== undefined && status < 300) {
              req.destroy();
              fail(new RegistryError(`the answer is larger than ${want.maxBytes} bytes (the limit)`, 0));
            }
          });
          res.on("end", () => {
            this.options.onRequest?.(method, path, status);
            resolve({
              status: status ?? 0,
              headers: res.headers,
              body: new Uint8Array(Buffer.concat(parts)),
            });
          });
          res.on("error", (err) => fail(new NetworkError(`${host}: ${err.message}`, false, { cause: err })));
        },
      );
      req.on("timeout", () => {
        req.destroy();
        fail(new NetworkError(`${host}: no answer within ${timeoutMs} ms`, true));
      });
      req.on("error", (err) => fail(networkError(host, err)));
      req.end();
    });
  }
}

function networkError(host: string, err: Error): Error {
  const code = (err as { code?: unknown }).code;
  // A plain-HTTP server answering a TLS hello: say so, not OpenSSL's words.
  if (/WRONG_VERSION_NUMBER|wrong version number|packet length too long/i.test(err.message))
    return new RegistryError(
      "the registry does not speak HTTPS (TLS handshake failed); set insecure: true only if plain HTTP is intended",
      0,
    );
  if (typeof code === "string" && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code))
    return new RegistryError(
      `TLS verification failed (${code}: ${err.message}); caFile names the CA to trust`,
      0,
    );
  const words: Record<string, string> = {
    ECONNREFUSED: "connection refused",
    ECONNRESET: "connection reset",
    ENOTFOUND: "host not found",
    EAI_AGAIN: "host not found (DNS lookup failed)",
    EHOSTUNREACH: "host unreachable",
    ETIMEDOUT: "connection timed out",
  };
  const text = typeof code === "string" && words[code] ? `${words[code]} (${code})` : err.message;
  return new NetworkError(`${host}: ${text}`, false, { cause: err });
}

function splitHost(host: string): [string, string | undefined] {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
  return [(m?.[1] ?? host).replace(/^\[|\]$/g, ""), m?.[2]];
}

function challengeParams(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of header.matchAll(/(\w+)="([^"]*)"/g)) out[(m[1] as string).toLowerCase()] = m[2] as string;
  return out;
}

/** The first `errors[].message` of a distribution error body, else the text. */
function registryErrorText(text: string): string {
  try {
    const body = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    const first = body.errors?.[0];
    if (first) return [first.code, first.message].filter(Boolean).join(" ");
  } catch {
    // Not JSON: the text itself.
  }
  return text.split("\n")[0] ?? "";
}

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}
