/**
 * A real Prometheus Alertmanager for the notification tests, built from the Go module proxy by
 * scripts/alertmanager/build.sh, on a free loopback port with clustering off and a route to nowhere:
 * the tests read what it holds through its v2 API.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { goBuild } from "./go-build.ts";
import { freePort } from "./ports.ts";
import { killAndWait, outputOf, untilServing } from "./process.ts";

/** The alertmanager binary (built the first time: a few minutes cold, 0 s cached). */
export function alertmanagerBinary(): Promise<string> {
  return goBuild("alertmanager");
}

/** One alert as GET /api/v2/alerts returns it (the fields the tests read). */
export interface GettableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL?: string;
  status: { state: string };
}

export interface AlertmanagerServer {
  url: string;
  /** Alerts Alertmanager holds as not resolved (GET /api/v2/alerts). */
  alerts(): Promise<GettableAlert[]>;
  close(): Promise<void>;
}

export async function startAlertmanager(): Promise<AlertmanagerServer> {
  const binary = await alertmanagerBinary();
  const dir = mkdtempSync(join(tmpdir(), "berth-am-"));
  writeFileSync(join(dir, "am.yml"), 'route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    binary,
    [
      `--config.file=${join(dir, "am.yml")}`,
      `--storage.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--cluster.listen-address=",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  const stderr = outputOf(child);
  await untilServing(
    "alertmanager",
    url,
    child,
    async () => (await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) })).ok,
    stderr,
    20_000,
    100,
  );
  return {
    url,
    alerts: async () => {
      const r = await fetch(`${url}/api/v2/alerts`);
      if (!r.ok) throw new Error(`GET /api/v2/alerts: HTTP ${r.status}`);
      return (await r.json()) as GettableAlert[];
    },
    close: async () => {
      await killAndWait(child);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
