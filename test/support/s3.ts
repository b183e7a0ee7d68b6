/**
 * A real S3-compatible server for the ledger replica tests: versitygw (Apache-2.0) serving a directory, built from
 * the Go module proxy by scripts/s3/build.sh, on a free loopback port. stop() and start() take it down and bring
 * it back on the same port with the same data, to test a store that stops answering.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { goBuild } from "./go-build.ts";
import { freePort } from "./ports.ts";
import { killAndWait, outputOf, type RestartableServer, untilServing } from "./process.ts";

/** The versitygw binary (built the first time: a minute or two cold, 0 s cached). */
export function versitygwBinary(): Promise<string> {
  return goBuild("s3");
}

export interface S3Server extends RestartableServer {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** A bucket that exists. */
  bucket: string;
  /** The directory the server stores objects in (bucket = a subdirectory). */
  root: string;
}

export async function startS3(): Promise<S3Server> {
  const binary = await versitygwBinary();
  const root = mkdtempSync(join(tmpdir(), "berth-s3-"));
  const bucket = "berth-ledger";
  mkdirSync(join(root, bucket));
  const port = await freePort();
  const accessKeyId = "berthtest";
  const secretAccessKey = "berth-test-secret-key-0123456789";
  const endpoint = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(
      binary,
      ["--access", accessKeyId, "--secret", secretAccessKey, "--port", `127.0.0.1:${port}`, "posix", root],
      {
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    const stderr = outputOf(child);
    // Any HTTP answer (403 unsigned) means it listens.
    await untilServing(
      "versitygw",
      endpoint,
      child,
      async () => {
        await (await fetch(endpoint, { signal: AbortSignal.timeout(1000) })).arrayBuffer();
        return true;
      },
      stderr,
      20_000,
      100,
    );
  };
  const stop = () => killAndWait(child);
  await start();
  return {
    endpoint,
    accessKeyId,
    secretAccessKey,
    bucket,
    root,
    stop,
    start,
    close: async () => {
      await stop();
      rmSync(root, { recursive: true, force: true });
    },
  };
}
