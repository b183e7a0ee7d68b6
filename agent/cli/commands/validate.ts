/**
 * `berth validate [--dir DIR]`: check the config, warn about settings that are valid but probably not meant,
 * and (with --dir) render every app offline.
 */
import { dirname, join } from "node:path";
import {
  type AgentConfig,
  type AppConfig,
  DEFAULT_SOURCE,
  loadConfig,
  type SourceConfig,
} from "../../config/config.ts";
import { expandGenerators } from "../../config/generate.ts";
import { messageOf } from "../../object/errors.ts";
import type { Snapshot } from "../../object/snapshot.ts";
import { FsSnapshot } from "../../render/fs-snapshot.ts";
import { sharedParsePool } from "../../render/parse-pool.ts";
import { type Ctx, EXIT, type Io, printData } from "../common.ts";
import { type GlobalFlags, gitSourceFor, renderPortFor } from "../wire.ts";

/** Core kinds whose health says more than "it exists" (custom resources count too: they may have conditions). */
const JUDGED_KINDS = new Set([
  "Deployment",
  "StatefulSet",
  "DaemonSet",
  "ReplicaSet",
  "Job",
  "Pod",
  "PersistentVolumeClaim",
  "Service",
  "CustomResourceDefinition",
  "PodDisruptionBudget",
]);

/** Groups of built-in kinds: a kind of any other group is a custom resource. */
const BUILTIN_GROUPS = new Set([
  "",
  "apps",
  "batch",
  "policy",
  "rbac.authorization.k8s.io",
  "networking.k8s.io",
  "storage.k8s.io",
  "scheduling.k8s.io",
  "autoscaling",
  "coordination.k8s.io",
  "admissionregistration.k8s.io",
  "apiextensions.k8s.io",
  "discovery.k8s.io",
  "node.k8s.io",
  "certificates.k8s.io",
]);

/** What one `generate:` entry makes from its source's listing (or why the source could not be listed). */
interface GeneratorReport {
  index: number;
  source: string;
  dirs: string;
  apps: Array<{ name: string; path: string }>;
  error?: string;
}

interface AppReport {
  name: string;
  objects?: number;
  errors: Array<{ path: string; message: string }>;
  skipped: Array<{ path: string; message: string }>;
}

export async function validateCommand(flags: GlobalFlags, ctx: Ctx, io: Io): Promise<number> {
  const config = loadConfig(flags.config);
  const warnings = configWarnings(config);
  const apps: AppReport[] = [];
  let failed = false;
  const dir = ctx.values.dir;
  const { generated, generators } = await listGenerated(config, dir);
  if (generators.some((g) => g.error)) failed = true;
  const all = [...config.apps, ...generated];
  if (dir) {
    const snapshot = new FsSnapshot(dir);
    // Offline: Kustomize, Helm, SOPS and file/config variables render; variables from the cluster cannot.
    const renderApp = renderPortFor(config);
    for (const app of all) {
      const r = await renderApp(snapshot, app);
      const report: AppReport = {
        name: app.name,
        errors: r.errors.map((e) => ({ path: e.path, message: e.message })),
        skipped: r.skipped.map((s) => ({ path: s.path, message: s.message })),
      };
      if (r.errors.length > 0) failed = true;
      else {
        report.objects = r.objects.length;
        const objects = r.objects.map((o) => o.object);
        if (objects.length === 0 && !app.allowEmpty)
          warnings.push(`app ${app.name}: renders no objects from ${app.path || "."}`);
        else if (
          objects.length > 0 &&
          !objects.some((o) => JUDGED_KINDS.has(o.kind) || !BUILTIN_GROUPS.has(groupOf(o.apiVersion)))
        )
          warnings.push(
            `app ${app.name}: none of its ${objects.length} objects is a kind health can judge (Deployment, StatefulSet, Job, PersistentVolumeClaim, a custom resource, …): its syncs succeed as soon as they are applied`,
          );
      }
      apps.push(report);
    }
  }
  const inline = sharedParsePool().fallback;
  if (ctx.output === "json" || ctx.output === "yaml") {
    printData(io, ctx.output, {
      config: config.configPath,
      valid: !failed,
      apps: dir ? apps : all.map((a) => ({ name: a.name })),
      ...(config.generate.length > 0 ? { generate: generators } : {}),
      warnings,
    });
    return failed ? EXIT.failed : EXIT.ok;
  }
  io.out(`${flags.config}: valid (${config.apps.length} apps)\n`);
  for (const g of generators) {
    if (g.error) {
      io.err(`✗ generate[${g.index}]: cannot list source ${g.source}: ${g.error}\n`);
      continue;
    }
    const list = g.apps.map((a) => `${a.name} (${a.path})`).join(", ");
    io.out(
      `generate[${g.index}] (source ${g.source}, dirs ${g.dirs}): ${g.apps.length} apps${list ? `: ${list}` : ""}\n`,
    );
  }
  for (const w of warnings) io.err(`warning: ${w}\n`);
  for (const a of apps) {
    for (const e of a.errors) io.err(`✗ ${a.name}: ${e.path}: ${e.message}\n`);
    for (const s of a.skipped) io.err(`  ${a.name}: skipped ${s.path}: ${s.message}\n`);
    if (a.errors.length === 0) {
      const app = all.find((x) => x.name === a.name);
      io.out(`✓ ${a.name}: ${a.objects} objects from ${app?.path || "."}\n`);
    }
  }
  if (inline) io.err(`note: manifests were parsed in the main thread: ${inline}\n`);
  return failed ? EXIT.failed : EXIT.ok;
}

/**
 * The apps the generators make: listed from the directory given (for every source), else from each generator's
 * source fetched. A source that cannot be listed is reported on its generators; a name collision throws.
 */
async function listGenerated(
  config: AgentConfig,
  dir: string | undefined,
): Promise<{ generated: AppConfig[]; generators: GeneratorReport[] }> {
  if (config.generate.length === 0) return { generated: [], generators: [] };
  const snapshots = new Map<string, Snapshot>();
  const errors = new Map<string, string>();
  for (const g of config.generate) {
    if (snapshots.has(g.source) || errors.has(g.source)) continue;
    if (dir) {
      snapshots.set(g.source, new FsSnapshot(dir));
      continue;
    }
    const source = config.sources[g.source] as SourceConfig;
    const port = gitSourceFor(source, join(dirname(config.ledger.path), "git-cache"));
    try {
      snapshots.set(g.source, await port.snapshot(await port.resolve()));
    } catch (err) {
      errors.set(g.source, messageOf(err));
    }
  }
  const generated = await expandGenerators(config, (name) => snapshots.get(name));
  const generators = config.generate.map((g): GeneratorReport => {
    const error = errors.get(g.source);
    return {
      index: g.index,
      source: g.source,
      dirs: g.dirs,
      apps: generated
        .filter((a) => a.generated?.index === g.index)
        .map((a) => ({ name: a.name, path: a.path })),
      ...(error ? { error } : {}),
    };
  });
  return { generated, generators };
}

/** Settings that are valid but probably not what was meant, each naming its key. */
export function configWarnings(config: AgentConfig): string[] {
  const out: string[] = [];
  const { ledger, api } = config;
  if (!ledger.secretKeyFile && !ledger.secretKeyEnv)
    out.push(
      "ledger: neither secretKeyFile nor secretKeyEnv is set: Secret manifests are not kept, so replay cannot restore Secrets",
    );
  if (!api.tokenFile && !api.tokenEnv && (api.tokens ?? []).length === 0)
    out.push(
      `api: none of tokenFile, tokenEnv or tokens is set: the HTTP API on ${api.listen} serves ${api.anonymousRead ? "anonymous reads only" : "no reads, syncs or approvals"} (webhooks and /healthz still answer)`,
    );
  if (api.anonymousRead && !/^(127\.|localhost|\[::1\])/.test(api.listen))
    out.push(`api.anonymousRead: ignored: ${api.listen} is not a loopback address`);
  for (const [name, source] of Object.entries(config.sources)) {
    if (!/^http:\/\//i.test(source.url) || !source.auth || /^http:\/\/(localhost|127\.)/i.test(source.url))
      continue;
    const key = name === DEFAULT_SOURCE && config.source ? "source" : `sources.${name}`;
    out.push(
      `${key}.url: ${source.url} is plain HTTP: ${key}.auth credentials cross the network unencrypted`,
    );
  }
  for (const app of config.apps) {
    if (app.suspend) out.push(`app ${app.name}: suspended: sync and run skip it`);
  }
  return out;
}

function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? "" : apiVersion.slice(0, slash);
}
