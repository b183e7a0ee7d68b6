/** What every command shares: the flags, where output goes, exit codes and app selection. */
import type { parseArgs } from "node:util";
import type { EngineEvent } from "../engine/ports.ts";
import { Progress } from "./progress.ts";

/** Exit codes: documented in agent/cli/README.md. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Where a command writes. */
export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Standard error is a terminal: human logs and progress lines. */
  tty: boolean;
}

export const OPTIONS = {
  config: { type: "string", default: "berth.yaml" },
  kubeconfig: { type: "string" },
  context: { type: "string" },
  json: { type: "boolean", default: false },
  app: { type: "string" },
  limit: { type: "string" },
  before: { type: "string" },
  to: { type: "string" },
  from: { type: "string" },
  all: { type: "boolean", default: false },
  "dry-run": { type: "boolean", default: false },
  force: { type: "boolean", default: false },
  dir: { type: "string" },
  out: { type: "string" },
  server: { type: "string" },
  "token-file": { type: "string" },
  object: { type: "string" },
  revision: { type: "string" },
  expires: { type: "string" },
  "override-window": { type: "boolean", default: false },
  by: { type: "string" },
  namespace: { type: "string" },
  namespaced: { type: "boolean", default: false },
  image: { type: "string" },
  verbose: { type: "boolean", short: "v", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

export type Values = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>["values"];

export function selectApps<T extends { name: string }>(apps: T[], name: string | undefined): T[] {
  if (!name) return apps;
  const found = apps.filter((a) => a.name === name);
  if (found.length === 0)
    throw new Error(`--app ${name}: no such app (apps: ${apps.map((a) => a.name).join(", ")})`);
  return found;
}

export function progress(io: Io): (e: EngineEvent) => void {
  return new Progress(io.err).onEvent;
}
