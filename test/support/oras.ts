/**
 * Pushes OCI artifacts with the real ORAS CLI (oras.land/oras, built from the Go module proxy by
 * scripts/oras/build.sh) to the test registry (OciRegistryFixture: docker-registry with TLS and htpasswd).
 * Shapes: Flux's (`flux push artifact`: Flux config and content media types), a generic ORAS push of one
 * `.tgz` (typed tar+gzip, or `untyped`: ORAS's default layer type), `dir` (`oras push ref tree`: ORAS packs the
 * directory itself) and `raw` (the layer bytes given as they are, for hostile archives).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { goBuild } from "./go-build.ts";
import type { OciRegistryFixture } from "./helm-repo.ts";

/** The oras binary (built the first time: about a minute cold, 0 s cached). */
export function orasBinary(): Promise<string> {
  return goBuild("oras");
}

export const FLUX_CONFIG = "application/vnd.cncf.flux.config.v1+json";
export const FLUX_CONTENT = "application/vnd.cncf.flux.content.v1.tar+gzip";

/** How the artifact is shaped. */
export type ArtifactShape = "flux" | "generic" | "untyped" | "dir" | "raw";

/**
 * Pushes `files` (path → text), packed as a tar+gzip by the system's tar, to `<registry>/<repo>:<tags>` (tags
 * comma-separated) with `oras push`; `raw` pushes `layer` as the tar+gzip layer instead. Returns the manifest
 * digest oras reports.
 */
export async function orasPush(
  registry: OciRegistryFixture,
  ref: string,
  content: { files?: Record<string, string>; layer?: Uint8Array },
  shape: ArtifactShape = "flux",
  annotations: Record<string, string> = {},
): Promise<string> {
  const oras = await orasBinary();
  const work = mkdtempSync(join(tmpdir(), "berth-oras-"));
  try {
    const layer = join(work, "content.tgz");
    if (content.layer) writeFileSync(layer, content.layer);
    else {
      const tree = join(work, "tree");
      for (const [path, text] of Object.entries(content.files ?? {})) {
        mkdirSync(dirname(join(tree, path)), { recursive: true });
        writeFileSync(join(tree, path), text);
      }
      mkdirSync(tree, { recursive: true });
      execFileSync("tar", ["-czf", layer, "-C", tree, "."], { stdio: "pipe" });
    }
    const args = [
      "push",
      `${registry.host}/${ref}`,
      "--ca-file",
      registry.caFile,
      "--username",
      registry.auth.username,
      "--password-stdin",
      "--registry-config",
      join(work, "auth.json"),
      "--format",
      "go-template={{.digest}}",
    ];
    for (const [k, v] of Object.entries(annotations)) args.push("--annotation", `${k}=${v}`);
    if (shape === "flux") {
      writeFileSync(join(work, "config.json"), "{}");
      args.push(
        "--artifact-type",
        FLUX_CONFIG,
        "--config",
        `config.json:${FLUX_CONFIG}`,
        `content.tgz:${FLUX_CONTENT}`,
      );
    } else if (shape === "untyped") {
      args.push("content.tgz");
    } else if (shape === "dir") {
      args.push("tree");
    } else {
      args.push("content.tgz:application/vnd.oci.image.layer.v1.tar+gzip");
    }
    const out = execFileSync(oras, args, {
      cwd: work,
      input: registry.auth.password,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: work },
      stdio: "pipe",
      encoding: "utf8",
    });
    const digest = /sha256:[0-9a-f]{64}/.exec(out)?.[0];
    if (!digest) throw new Error(`oras push printed no digest: ${out}`);
    return digest;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** A tar archive (ustar) of the given entries, gzipped: for layers no honest tar would write. */
export function hostileTarGz(
  entries: Array<{
    path: string;
    body?: string | Uint8Array /** tar type flag: "0" file, "1" hard link, "2" symlink, "5" directory, … */;
    type?: string;
    link?: string;
  }>,
): Uint8Array {
  const blocks: Uint8Array[] = [];
  for (const e of entries) {
    const body = typeof e.body === "string" ? new TextEncoder().encode(e.body) : (e.body ?? new Uint8Array());
    const header = new Uint8Array(512);
    const put = (text: string, at: number, len: number) =>
      header.set(new TextEncoder().encode(text).subarray(0, len), at);
    put(e.path, 0, 100);
    put("0000644\0", 100, 8);
    put("0000000\0", 108, 8);
    put("0000000\0", 116, 8);
    put(`${body.byteLength.toString(8).padStart(11, "0")}\0`, 124, 12);
    put("00000000000\0", 136, 12);
    put(e.type ?? "0", 156, 1);
    if (e.link) put(e.link, 157, 100);
    put("ustar\0", 257, 6);
    put("00", 263, 2);
    header.fill(0x20, 148, 156);
    const sum = header.reduce((a, b) => a + b, 0);
    put(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8);
    blocks.push(header, body);
    const pad = (512 - (body.byteLength % 512)) % 512;
    if (pad) blocks.push(new Uint8Array(pad));
  }
  blocks.push(new Uint8Array(1024));
  return gzipSync(Buffer.concat(blocks), { level: 9 });
}
