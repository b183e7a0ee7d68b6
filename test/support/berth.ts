/** Test helpers to run berth in-process against the real cluster and Git server. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
