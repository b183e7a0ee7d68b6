/** Test helpers to run berth in-process against the real cluster and Git server. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { cli } from "../../agent/cli/cli.ts";
import { type Wired, wire } from "../../agent/cli/wire.ts";
import { silentLogger } from "../../agent/engine/log.ts";
import type { EngineEvent } from "../../agent/engine/ports.ts";
import { type ReconcileResult, reconcile } from "../../agent/engine/reconcile.ts";

/** Writes a berth.yaml (and its directory) for a test; returns the config path. */
export function writeConfig(yaml: string): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-ws-"));
  const path = join(dir, "berth.yaml");
  writeFileSync(path, yaml.replaceAll("$DIR", dir));
  return path;
}

/** Writes files (tokens, rules …) beside a config, readable by the owner only; `$DIR` in a config names them. */
export function writeBeside(configPath: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files))
    writeFileSync(join(dirname(configPath), name), text, { mode: 0o600 });
}

/** Wires berth from a config file and the test cluster's kubeconfig. */
export async function wireFor(
  configPath: string,
  kubeconfig: string,
  events?: EngineEvent[],
): Promise<Wired> {
  return wire({ config: configPath, kubeconfig }, silentLogger, events ? (e) => events.push(e) : undefined);
}

/** One sync of one app, as `berth sync --app` does it. */
export async function syncApp(w: Wired, app: string): Promise<ReconcileResult> {
  const spec = w.config.apps.find((a) => a.name === app);
  if (!spec) throw new Error(`no app ${app} in the config`);
  return reconcile(w.deps, { app: spec, trigger: "test" });
}

/** Runs the CLI in-process, as `berth ARGV…` would; resolves to its exit code and output. */
export async function runCli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const code = await cli(argv, {
    out: (s) => {
      out += s;
    },
    err: (s) => {
      err += s;
    },
    tty: false,
  });
  return { code, out, err };
}
