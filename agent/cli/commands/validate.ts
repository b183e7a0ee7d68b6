/** `berth validate`: check the config, and render every app offline. */
import { loadConfig } from "../../config/config.ts";
import { FsSnapshot } from "../../render/fs-snapshot.ts";
import { sharedParsePool } from "../../render/parse-pool.ts";
import { EXIT, type Io, type Values } from "../common.ts";
import { type GlobalFlags, renderPortFor } from "../wire.ts";

export async function validateCommand(flags: GlobalFlags, values: Values, io: Io): Promise<number> {
  const config = loadConfig(flags.config);
  io.out(`${flags.config}: valid (${config.apps.length} apps)\n`);
  if (!values.dir) return EXIT.ok;
  const snapshot = new FsSnapshot(values.dir);
  // Offline: Kustomize, Helm, SOPS and file/config variables render; variables from the cluster cannot.
  const renderApp = renderPortFor(config);
  let failed = false;
  for (const app of config.apps) {
    const r = await renderApp(snapshot, app);
    for (const e of r.errors) io.err(`✗ ${app.name}: ${e.path}: ${e.message}\n`);
    for (const s of r.skipped) io.err(`  ${app.name}: skipped ${s.path}: ${s.message}\n`);
    if (r.errors.length > 0) failed = true;
    else io.out(`✓ ${app.name}: ${r.objects.length} objects from ${app.path || "."}\n`);
  }
  const inline = sharedParsePool().fallback;
  if (inline) io.err(`note: manifests were parsed in the main thread: ${inline}\n`);
  return failed ? EXIT.failed : EXIT.ok;
}
