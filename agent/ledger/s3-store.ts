/**
 * A small S3 client for the ledger's off-box replica: put, get, list and delete of objects under one bucket and
 * prefix, signed with AWS Signature V4 by aws4fetch (a 6 KB signer over fetch, the only importer of it; the AWS
 * SDK's S3 client was measured at several MB in the binary for the four calls used here). Path-style URLs, so any
 * S3-compatible store works (versitygw in the tests, SeaweedFS, Ceph, R2, AWS S3). Every call has a timeout.
 */
import { AwsClient } from "aws4fetch";
import { BerthError } from "../object/errors.ts";

/** Where the replica lives and how to reach it. */
export interface S3Location {
  /** `s3://bucket/prefix` */
  url: string;
  /** `https://s3.example.com` (default: AWS's regional endpoint). */
  endpoint?: string;
  region?: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Milliseconds one request may take (default 30 s). */
  timeoutMs?: number;
}

/** `s3://bucket/a/b` → bucket and key prefix ("a/b/"); throws for anything else. */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(\/.*)?$/.exec(url);
  if (!m?.[1])
    throw new BerthError(`not an s3://bucket/prefix URL: ${JSON.stringify(url)}`, {
      subject: "ledger.replica.url",
    });
  const prefix = (m[2] ?? "").replace(/^\/+|\/+$/g, "");
  return { bucket: m[1], prefix: prefix === "" ? "" : `${prefix}/` };
}

/** The object store under one bucket and prefix; keys passed in are relative to the prefix. */
export class S3Store {
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: AwsClient;
  private readonly base: string;
  private readonly timeoutMs: number;

  constructor(readonly location: S3Location) {
    const { bucket, prefix } = parseS3Url(location.url);
    this.bucket = bucket;
    this.prefix = prefix;
    const region = location.region ?? "us-east-1";
    this.client = new AwsClient({
      accessKeyId: location.accessKeyId,
      secretAccessKey: location.secretAccessKey,
      service: "s3",
      region,
      retries: 0, // the replica retries with its own backoff and reports the lag
    });
    const endpoint = (location.endpoint ?? `https://s3.${region}.amazonaws.com`).replace(/\/+$/, "");
    this.base = `${endpoint}/${bucket}`;
    this.timeoutMs = location.timeoutMs ?? 30_000;
  }

  /** Where errors say the replica is. */
  get where(): string {
    return `s3://${this.bucket}/${this.prefix}`;
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    const r = await this.request("PUT", this.url(key), { body });
    if (!r.ok) throw await this.failure("PUT", key, r);
  }

  /** The object's bytes, or undefined when it does not exist. */
  async get(key: string): Promise<Uint8Array | undefined> {
    const r = await this.request("GET", this.url(key));
    if (r.status === 404) return undefined;
    if (!r.ok) throw await this.failure("GET", key, r);
    return new Uint8Array(await r.arrayBuffer());
  }

  async delete(key: string): Promise<void> {
    const r = await this.request("DELETE", this.url(key));
    if (!r.ok && r.status !== 404) throw await this.failure("DELETE", key, r);
  }

  /** Keys (relative to the prefix) starting with `under`, in lexical order (ListObjectsV2, every page). */
  async list(under: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const q = new URLSearchParams({ "list-type": "2", prefix: this.prefix + under });
      if (token) q.set("continuation-token", token);
      const r = await this.request("GET", `${this.base}?${q}`);
      if (!r.ok) throw await this.failure("LIST", under, r);
      const xml = await r.text();
      for (const m of xml.matchAll(/<Key>([^<]*)<\/Key>/g))
        keys.push(unescapeXml(m[1] ?? "").slice(this.prefix.length));
      token = /<IsTruncated>true<\/IsTruncated>/.test(xml)
        ? unescapeXml(/<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml)?.[1] ?? "")
        : undefined;
    } while (token);
    return keys.sort();
  }

  private url(key: string): string {
    return `${this.base}/${(this.prefix + key).split("/").map(encodeURIComponent).join("/")}`;
  }

  private async request(
    method: string,
    url: string,
    init: { body?: Uint8Array | string } = {},
  ): Promise<Response> {
    try {
      return await this.client.fetch(url, {
        method,
        ...(init.body !== undefined ? { body: init.body } : {}),
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      throw new BerthError(`${method} ${this.where}: ${(err as Error).message}`, {
        subject: "ledger replica",
        cause: err,
      });
    }
  }

  private async failure(op: string, key: string, r: Response): Promise<BerthError> {
    const text = (await r.text().catch(() => "")).slice(0, 300);
    const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
    return new BerthError(`${op} ${this.where}${key}: HTTP ${r.status}${code ? ` ${code}` : ""}`, {
      subject: "ledger replica",
    });
  }
}

function unescapeXml(s: string): string {
  return s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, "&");
}
