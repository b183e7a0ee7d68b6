/** Helm: a chart in the repository rendered by `helm template` from a private copy of the repository. */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { BerthError } from "../object/errors.ts";
import type { HelmChart, KubeObject } from "../object/object.ts";
import { requireTool, runTool, type ToolSettings } from "./tools.ts";

/** An app's chart (the shared shape of berth.yaml's `helm:`). */
export type HelmOptions = HelmChart;

/** `helm template` of the chart in the materialised repository `root`; returns the YAML it printed. */
export async function helmTemplate(
  root: string,
  helm: HelmOptions,
  release: { name: string; namespace: string },
  tools: ToolSettings,
  /** A fetched remote chart's archive (absolute), rendered instead of a chart directory in the repository. */
  archive?: string,
): Promise<string> {
  const binary = requireTool("helm", tools);
  for (const path of [...(archive ? [] : [helm.chart]), ...(helm.values ?? [])]) refuseEscape(path);
  const args = ["template", release.name, archive ?? helm.chart, "--namespace", release.namespace];
  for (const file of helm.values ?? []) args.push("--values", file);
  for (const [key, value] of Object.entries(helm.set ?? {})) {
    // helm splits --set on unescaped commas; a value is one value.
    args.push("--set", `${key}=${String(value).replace(/\\/g, "\\\\").replace(/,/g, "\\,")}`);
  }
  // helm's own state stays inside the private directory, never in the agent's home.
  const home = join(root, ".berth-helm");
  await mkdir(home, { recursive: true, mode: 0o700 });
  const env = {
    HELM_CACHE_HOME: join(home, "cache"),
    HELM_CONFIG_HOME: join(home, "config"),
    HELM_DATA_HOME: join(home, "data"),
    HTTPS_PROXY: "http://127.0.0.1:9",
    HTTP_PROXY: "http://127.0.0.1:9",
  };
  const out = await runTool(binary, args, {
    cwd: root,
    env,
    label: `helm template ${helm.chart}`,
    settings: tools,
  });
  return out.stdout;
}

function refuseEscape(path: string): void {
  if (path.startsWith("/") || path.split("/").includes("..") || /^[a-z][a-z0-9+.-]*:/i.test(path)) {
    throw new BerthError("must be a path inside the repository", { subject: path, reason: "BuildFailed" });
  }
}

/** The hook kinds of a chart object (`helm.sh/hook`), empty for an ordinary object. */
export function helmHooksOf(object: KubeObject): string[] {
  const annotations = (object.metadata as { annotations?: Record<string, unknown> } | undefined)?.annotations;
  const hook = annotations?.["helm.sh/hook"];
  return typeof hook === "string"
    ? hook
        .split(",")
        .map((h) => h.trim())
        .filter((h) => h !== "")
    : [];
}
