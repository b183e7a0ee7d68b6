/**
 * The render stage's entry — renderApp: one app as teams lay it out. SOPS files are decrypted on read; a Helm chart (app `helm:`) or a
 * kustomization at the app path is built by its tool from a private copy of the repository, otherwise the
 * plain manifests are read; the output goes through the same manifest parser (render()), then variables are
 * substituted when the app asks for it.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { messageOf } from "../object/errors.ts";
import { type KubeObject, refOf } from "../object/object.ts";
import type { Snapshot } from "../object/snapshot.ts";
import { FsSnapshot } from "./fs-snapshot.ts";
import { type HelmOptions, helmHooksOf, helmTemplate } from "./helm.ts";
import {
  ChartUnreachable,
  chartSource,
  type FetchedChart,
  fetchChartOrCached,
  isRemoteChart,
} from "./helm-remote.ts";
import { isKustomization, type KustomizeOptions, kustomizeBuild } from "./kustomize.ts";
import {
  type DesiredObject,
  digestOfObjects,
  type FileParser,
  type ParseMemo,
  type RenderLimits,
  type RenderOptions,
  type RenderResult,
  render,
} from "./plain.ts";
import type { SopsKeys } from "./sops.ts";
import { SopsSnapshot } from "./sops-snapshot.ts";
import { type ConfigReader, collectVars, substituteObject, type VarSource } from "./substitute.ts";
import { materialise, privateTempDir, TOOL_DEFAULTS, type ToolSettings } from "./tools.ts";

/** What of an app's config rendering reads (the config's AppConfig satisfies it). */
export interface AppRenderSpec {
  name: string;
  path: string;
  namespace?: string;
  kustomize?: KustomizeOptions;
  helm?: HelmOptions;
  /** Substitution runs only when one of these is set (as Flux runs it only with `postBuild`). */
  vars?: Record<string, string>;
  varsFrom?: VarSource[];
  /** Rendered objects left out, listed as skipped: by API group and optionally kind. */
  exclude?: Array<{ group: string; kind?: string }>;
}

/** The agent-wide settings and adapters rendering may use. */
export interface RenderEnvironment {
  tools?: ToolSettings;
  /** The app's parse memo (plain manifests only: a tool's output is parsed afresh), kept by the caller. */
  parseMemo?: ParseMemo;
  sops?: SopsKeys;
  /** ConfigMaps/Secrets for `varsFrom`; absent where there is no cluster. */
  readConfig?: ConfigReader;
  limits?: Partial<RenderLimits>;
  /** Where manifest files are parsed (the parse worker in the agent; default: this thread). */
  parser?: FileParser;
  /** Where charts from Helm repositories and OCI registries are cached (content-addressed). */
  chartCache?: string;
  /** Where a render says something worth an operator's attention (a chart rendered from the cache). */
  log?: (level: "info" | "warn", message: string, fields: Record<string, unknown>) => void;
  /**
   * Told, at each fetch of a remote chart, whether its repository answered (`error` undefined) or could not be
   * reached (an outage: the cache served, or nothing was cached). Auth, TLS and republished-chart errors are
   * not outages and are not reported.
   */
  onChartSource?: (source: { name: string; url: string }, error: string | undefined) => void;
}

/** A render result, with what a remote chart resolved to (recorded with the ledger entry). */
export type AppRenderResult = RenderResult & { origin?: string };

/** Renders one app; rejects only when `signal` aborts: problems land in `errors`, and any error means nothing is applied. */
export async function renderApp(
  snapshot: Snapshot,
  app: AppRenderSpec,
  env: RenderEnvironment = {},
  signal?: AbortSignal,
): Promise<AppRenderResult> {
  const source = new SopsSnapshot(
    snapshot,
    env.sops ?? { ageIdentities: [], ...(env.tools ? { tools: env.tools } : {}) },
  );
  let result: AppRenderResult;
  try {
    if (app.helm) result = await renderWithTool(source, app, env, "helm", signal);
    else if (await isKustomization(source, app.path))
      result = await renderWithTool(source, app, env, "kustomize", signal);
    else result = await render(source, app.path, renderOptions(env, signal));
  } catch (err) {
    if (signal?.aborted) throw err;
    return failed(app.path, messageOf(err));
  }
  if (app.exclude && app.exclude.length > 0 && result.errors.length === 0)
    result = excluded(result, app.exclude);
  if (result.errors.length > 0 || (app.vars === undefined && app.varsFrom === undefined)) return result;
  try {
    const vars = await collectVars(app.vars ?? {}, app.varsFrom ?? [], env.readConfig, app.namespace);
    const objects: DesiredObject[] = [];
    const errors: RenderResult["errors"] = [];
    for (const desired of result.objects) {
      try {
        const object = substituteObject(desired.object, vars);
        objects.push({ object, ref: refOf(object), source: desired.source });
      } catch (err) {
        errors.push({ path: desired.source, message: messageOf(err) });
      }
    }
    // Any error applies nothing, so no half-substituted set is handed on.
    if (errors.length > 0) return { ...result, objects: [], errors, digest: digestOfObjects([]) };
    return { ...result, objects, errors, digest: digestOfObjects(objects.map((o) => o.object)) };
  } catch (err) {
    return { ...result, errors: [{ path: `app ${app.name} variables`, message: messageOf(err) }] };
  }
}

/** Materialises the repository privately, runs the tool, parses what it printed. */
async function renderWithTool(
  snapshot: Snapshot,
  app: AppRenderSpec,
  env: RenderEnvironment,
  tool: "helm" | "kustomize",
  signal: AbortSignal | undefined,
): Promise<AppRenderResult> {
  const tools = env.tools ?? {};
  const remote = tool === "helm" && app.helm && isRemoteChart(app.helm) ? app.helm : undefined;
  let chart: FetchedChart | undefined;
  if (remote) {
    if (!env.chartCache) throw new Error(`${chartSource(remote)}: no chart cache directory is configured`);
    const where = { name: chartSource(remote), url: remote.repo ?? remote.chart };
    try {
      chart = await fetchChartOrCached(remote, env.chartCache, tools);
    } catch (err) {
      if (err instanceof ChartUnreachable) env.onChartSource?.(where, messageOf(err));
      throw err;
    }
    env.onChartSource?.(where, chart.via === "offline" ? (chart.unreachable ?? "unreachable") : undefined);
    if (chart.via === "offline")
      env.log?.("warn", "chart source unreachable; rendering the last chart pulled from the cache", {
        app: app.name,
        source: chartSource(remote),
        chart: chart.name,
        version: chart.version,
        digest: chart.digest,
        error: chart.unreachable,
      });
  }
  const tmp = await privateTempDir(tool);
  try {
    const repo = join(tmp.dir, "repo");
    await mkdir(repo, { mode: 0o700 });
    // The app's own tree (its path, or its chart) must be sound; a bad link elsewhere only fails apps that read it.
    const own = remote
      ? undefined
      : tool === "helm" && app.helm
        ? app.helm.chart.replace(/^\.\/|\/$/g, "")
        : app.path;
    const { leftOut } = await materialise(snapshot, repo, undefined, own);
    let output: string;
    let label: string;
    try {
      if (tool === "helm" && app.helm) {
        const release = { name: app.helm.releaseName ?? app.name, namespace: app.namespace ?? "default" };
        output = await helmTemplate(repo, app.helm, release, tools, chart?.archive);
        label = chart ? `helm template ${chart.name} ${chart.version}` : `helm template ${app.helm.chart}`;
      } else {
        output = await kustomizeBuild(repo, app.path, app.kustomize ?? {}, tools);
        label = `kustomize build ${app.path === "" ? "." : app.path}`;
      }
    } catch (err) {
      if (leftOut.length === 0) throw err;
      const links = leftOut.map((l) => `${l.path} (${l.message})`).join(", ");
      throw new Error(`${messageOf(err)}; left out of the tool's copy of the repository: ${links}`);
    }
    const out = join(tmp.dir, "out");
    await mkdir(out, { mode: 0o700 });
    await writeFile(join(out, "rendered.yaml"), output, { mode: 0o600 });
    const maxFileBytes = tools.maxOutputBytes ?? TOOL_DEFAULTS.maxOutputBytes;
    const parsed = await render(new FsSnapshot(out), "", {
      ...renderOptions(env, signal),
      limits: { ...(env.limits ?? {}), maxFileBytes },
    });
    const relabel = (s: string): string => s.replace(/^rendered\.yaml/, label);
    const objects: DesiredObject[] = [];
    const skipped = parsed.skipped.map((p) => ({ ...p, path: relabel(p.path) }));
    for (const desired of parsed.objects) {
      const hooks = tool === "helm" ? helmHooksOf(desired.object) : [];
      if (hooks.length > 0) {
        // berth applies the chart's resources, not its lifecycle: hooks are reported so nobody expects them to run.
        skipped.push({
          path: relabel(desired.source),
          message: `helm hook (${hooks.join(", ")}) of ${describe(desired.object)}: not applied`,
        });
        continue;
      }
      objects.push({ ...desired, source: relabel(desired.source) });
    }
    return {
      objects,
      skipped,
      errors: parsed.errors.map((p) => ({ ...p, path: relabel(p.path) })),
      digest: digestOfObjects(objects.map((o) => o.object)),
      files: parsed.files,
      ...(chart ? { origin: `chart ${chart.name} ${chart.version} ${chart.digest}` } : {}),
    };
  } finally {
    await tmp.dispose();
  }
}

function renderOptions(env: RenderEnvironment, signal: AbortSignal | undefined): RenderOptions {
  return {
    ...(env.parseMemo ? { memo: env.parseMemo } : {}),
    ...(env.limits ? { limits: env.limits } : {}),
    ...(env.parser ? { parser: env.parser } : {}),
    ...(signal ? { signal } : {}),
  };
}

function describe(object: KubeObject): string {
  return `${object.kind}/${String(object.metadata?.name ?? "")}`;
}

function failed(path: string, message: string): RenderResult {
  return {
    objects: [],
    skipped: [],
    errors: [{ path: path === "" ? "(repository root)" : path, message }],
    digest: digestOfObjects([]),
    files: 0,
  };
}

/** Leaves out the objects `exclude` selects, each listed as skipped with the selector that matched. */
function excluded(
  result: AppRenderResult,
  exclude: Array<{ group: string; kind?: string }>,
): AppRenderResult {
  const objects: DesiredObject[] = [];
  const skipped = [...result.skipped];
  for (const desired of result.objects) {
    const { apiVersion, kind } = desired.object;
    const group = apiVersion.includes("/") ? apiVersion.slice(0, apiVersion.indexOf("/")) : "";
    const hit = exclude.find((e) => e.group === group && (e.kind === undefined || e.kind === kind));
    if (hit) {
      const what = hit.kind ? `${hit.group} ${hit.kind}` : `group ${hit.group || '""'}`;
      skipped.push({
        path: desired.source,
        message: `${kind}/${desired.object.metadata.name}: excluded (${what})`,
      });
    } else objects.push(desired);
  }
  return { ...result, objects, skipped, digest: digestOfObjects(objects.map((o) => o.object)) };
}
