/**
 * Charts from Helm repositories (HTTP(S) `index.yaml`) and OCI registries, fetched with the helm binary's own
 * code paths (`helm repo add`, `helm search repo`, `helm pull`) in a private, throw-away HELM_* home with no
 * inherited environment, and cached content-addressed (`sha256/<hex>.tgz`) in the agent's chart cache.
 *
 * What was pulled is pinned: the first digest seen for a (repository, chart, version) is recorded, and a chart
 * republished under the same version with other content is an error, never applied. While a repository cannot
 * be reached, the last chart resolved for the same (repository, chart, range) is rendered from the cache.
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdir, readdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { BerthError, messageOf } from "../object/errors.ts";
import { escapeRegExp } from "../object/regexp.ts";
import { privateTempDir, requireTool, runTool, type ToolSettings } from "./tools.ts";

/** Where an app's chart comes from when it is not in the Git repository. */
export interface RemoteChart {
  /** `https://…` Helm repository (absent for an `oci://` chart). */
  repo?: string;
  /** The chart's name in the repository, or `oci://host/path/name`. */
  chart: string;
  /** A version or a semver constraint (`1.16.x`, `^2.0.0`); absent: the latest stable version. */
  version?: string;
  /** Basic auth; the password (or token) is read from the file at every fetch. */
  auth?: { username: string; passwordFile: string };
  /** PEM bundle of the CAs the repository's certificate is checked against. */
  caFile?: string;
}

/** A chart archive ready for `helm template`. */
export interface FetchedChart {
  /** Absolute path of the cached `.tgz`. */
  archive: string;
  name: string;
  version: string;
  /** `sha256:<hex>` of the `.tgz`. */
  digest: string;
  /** How it was obtained: pulled now, found in the cache, or rendered from the cache because the source was down. */
  via: "pulled" | "cache" | "offline";
  /** Why the source could not be reached (via "offline"). */
  unreachable?: string;
}

/** Whether an app's `helm:` names a remote chart. */
export function isRemoteChart(helm: { repo?: string; chart: string }): boolean {
  return helm.repo !== undefined || helm.chart.startsWith("oci://");
}

/** Where the chart comes from, for messages: `https://charts.example.com chart demo` or the oci:// reference. */
export function chartSource(chart: RemoteChart): string {
  return chart.repo !== undefined ? `helm repository ${chart.repo}` : `OCI registry ${chart.chart}`;
}

/** Resolves, fetches (or finds in the cache) and verifies a remote chart. */
export async function fetchChart(
  chart: RemoteChart,
  cacheDir: string,
  tools: ToolSettings,
): Promise<FetchedChart> {
  const helm = requireTool("helm", tools);
  const range = chart.version ?? "";
  const resolvedKey = join(cacheDir, "resolved", `${keyOf(sourceId(chart), range)}.json`);
  const home = await privateTempDir("helm-pull");
  try {
    const run = (args: string[], label: string, input?: string) =>
      runTool(helm, args, {
        cwd: home.dir,
        env: helmHome(home.dir),
        settings: tools,
        label,
        ...(input !== undefined ? { input } : {}),
      });
    let resolved: { name: string; version: string; digest?: string; pull: string[] };
    try {
      resolved =
        chart.repo !== undefined
          ? await resolveInRepo(chart, chart.repo, home.dir, run)
          : await loginOci(chart, run);
    } catch (err) {
      throw offlineOr(err, chart, resolvedKey, cacheDir);
    }
    const known = await readJson<{ digest: string }>(
      versionFile(cacheDir, chart, resolved.name, resolved.version),
    );
    // The index's digest is the archive's sha256 (`helm repo index`): a changed one is a republished chart.
    if (known && resolved.digest && known.digest !== resolved.digest)
      throw republished(chart, resolved.name, resolved.version, known.digest, resolved.digest, cacheDir);
    if (known && resolved.digest && (await intact(cacheDir, known.digest))) {
      const hit = { name: resolved.name, version: resolved.version, digest: known.digest };
      await remember(resolvedKey, hit);
      return { ...hit, archive: blobPath(cacheDir, known.digest), via: "cache" };
    }
    const out = join(home.dir, "out");
    await mkdir(out, { mode: 0o700 });
    try {
      await run([...resolved.pull, "--destination", out], `helm pull ${chart.chart}`);
    } catch (err) {
      throw offlineOr(err, chart, resolvedKey, cacheDir);
    }
    const file = (await readdir(out)).find((f) => f.endsWith(".tgz"));
    if (!file)
      throw new BerthError("helm pull wrote no chart archive", {
        subject: chartSource(chart),
        reason: "BuildFailed",
      });
    const bytes = await readFile(join(out, file));
    const digest = sha256Of(bytes);
    const version = resolved.version !== "" ? resolved.version : versionOfArchive(file, resolved.name);
    if (resolved.digest && resolved.digest !== digest)
      throw new BerthError(
        `chart ${resolved.name} ${version}: the archive served (${digest}) does not match the index's digest (${resolved.digest}); not applied`,
        { subject: chartSource(chart), reason: "BuildFailed" },
      );
    const pinned =
      known ?? (await readJson<{ digest: string }>(versionFile(cacheDir, chart, resolved.name, version)));
    if (pinned && pinned.digest !== digest)
      throw republished(chart, resolved.name, version, pinned.digest, digest, cacheDir);
    const archive = blobPath(cacheDir, digest);
    await atomicWrite(archive, bytes);
    if (!pinned) await remember(versionFile(cacheDir, chart, resolved.name, version), { digest });
    await remember(resolvedKey, { name: resolved.name, version, digest });
    return { archive, name: resolved.name, version, digest, via: "pulled" };
  } finally {
    await home.dispose();
  }
}

type Run = (args: string[], label: string, input?: string) => Promise<{ stdout: string }>;

/** `helm repo add` (fetches index.yaml, checks auth and CA), `helm search repo` (resolves the constraint). */
async function resolveInRepo(chart: RemoteChart, repo: string, home: string, run: Run) {
  const add = ["repo", "add", "berth", repo, "--force-update"];
  if (chart.caFile) add.push("--ca-file", chart.caFile);
  let input: string | undefined;
  if (chart.auth) {
    add.push("--username", chart.auth.username, "--password-stdin");
    input = readPassword(chart.auth.passwordFile, chart);
  }
  await run(add, `helm repo add ${repo}`, input);
  // helm matches the expression against `\vname\vdescription…`: \v anchors the name exactly.
  const search = ["search", "repo", "--regexp", `\\vberth/${escapeRegExp(chart.chart)}\\v`, "-o", "json"];
  if (chart.version) search.push("--version", chart.version);
  const found = JSON.parse((await run(search, `helm search repo ${chart.chart}`)).stdout) as Array<{
    name: string;
    version: string;
  }>;
  const hit = found.find((f) => f.name === `berth/${chart.chart}`);
  if (!hit)
    throw new BerthError(
      `no chart ${chart.chart}${chart.version ? ` matching version ${chart.version}` : ""} in its index.yaml`,
      { subject: chartSource(chart), reason: "BuildFailed" },
    );
  const index = parseYaml(readFileSync(join(home, "cache", "repository", "berth-index.yaml"), "utf8")) as {
    entries?: Record<string, Array<{ version?: string; digest?: string }>>;
  };
  const entry = index.entries?.[chart.chart]?.find((e) => e.version === hit.version);
  const digest =
    typeof entry?.digest === "string" && /^[0-9a-f]{64}$/.test(entry.digest)
      ? `sha256:${entry.digest}`
      : undefined;
  return {
    name: chart.chart,
    version: hit.version,
    ...(digest ? { digest } : {}),
    pull: ["pull", `berth/${chart.chart}`, "--version", hit.version],
  };
}

/** `helm registry login` when auth is set; the version is resolved by `helm pull` itself (tags). */
async function loginOci(chart: RemoteChart, run: Run) {
  const ref = chart.chart;
  const host = ref.slice("oci://".length).split("/")[0] ?? "";
  const ca = chart.caFile ? ["--ca-file", chart.caFile] : [];
  if (chart.auth) {
    const password = readPassword(chart.auth.passwordFile, chart);
    await run(
      ["registry", "login", host, "--username", chart.auth.username, "--password-stdin", ...ca],
      `helm registry login ${host}`,
      password,
    );
  }
  const name = ref.split("/").at(-1) ?? ref;
  return {
    name,
    version: "",
    pull: ["pull", ref, ...(chart.version ? ["--version", chart.version] : []), ...ca],
  };
}

/** The private helm home: helm reads and writes nothing of the agent's. */
function helmHome(dir: string): Record<string, string> {
  return {
    HELM_CACHE_HOME: join(dir, "cache"),
    HELM_CONFIG_HOME: join(dir, "config"),
    HELM_DATA_HOME: join(dir, "data"),
    HELM_REGISTRY_CONFIG: join(dir, "config", "registry.json"),
    HELM_REPOSITORY_CONFIG: join(dir, "config", "repositories.yaml"),
    HELM_REPOSITORY_CACHE: join(dir, "cache", "repository"),
  };
}

/** A failed fetch: an auth or not-found problem is reported; an unreachable source falls back to the cache. */
function offlineOr(err: unknown, chart: RemoteChart, resolvedKey: string, cacheDir: string): Error {
  if (err instanceof BerthError && err.subject === chartSource(chart)) return err;
  // The tool's label (its command line) is not the subject the operator knows: the repository is.
  const full = messageOf(err);
  const subject = err instanceof BerthError ? err.subject : undefined;
  const message = (
    subject && full.startsWith(`${subject}: `) ? full.slice(subject.length + 2) : full
  ).replace(/^exited with code \d+: (Error: )?/, "");
  if (/\b(401|403)\b|unauthorized|forbidden|denied/i.test(message))
    return new BerthError(`authentication failed (check auth.username and auth.passwordFile): ${message}`, {
      subject: chartSource(chart),
      reason: "BuildFailed",
      cause: err,
    });
  // A certificate problem is not an outage: someone may be in the middle; the cache does not paper over it.
  if (/x509|certificate/i.test(message))
    return new BerthError(`TLS verification failed (caFile names the CA to trust): ${message}`, {
      subject: chartSource(chart),
      reason: "BuildFailed",
      cause: err,
    });
  const last = readJsonSync<{ name: string; version: string; digest: string }>(resolvedKey);
  if (last && intactSync(cacheDir, last.digest))
    return new OfflineChart({
      archive: blobPath(cacheDir, last.digest),
      name: last.name,
      version: last.version,
      digest: last.digest,
      via: "offline",
      unreachable: message,
    });
  return new ChartUnreachable(`cannot fetch the chart and none is cached: ${message}`, {
    subject: chartSource(chart),
    reason: "BuildFailed",
    cause: err,
  });
}

/** The chart's repository or registry could not be reached (and nothing was cached): an outage, not a mistake. */
export class ChartUnreachable extends BerthError {}

/** Thrown internally to carry the cached fallback out of the fetch. */
export class OfflineChart extends Error {
  constructor(readonly chart: FetchedChart) {
    super("offline");
  }
}

/** fetchChart, with the cached fallback as an ordinary result. */
export async function fetchChartOrCached(
  chart: RemoteChart,
  cacheDir: string,
  tools: ToolSettings,
): Promise<FetchedChart> {
  try {
    return await fetchChart(chart, cacheDir, tools);
  } catch (err) {
    if (err instanceof OfflineChart) return err.chart;
    throw err;
  }
}

function republished(
  chart: RemoteChart,
  name: string,
  version: string,
  was: string,
  now: string,
  cacheDir: string,
): BerthError {
  return new BerthError(
    `chart ${name} ${version} was republished with different content: first pulled as ${was}, now ${now}; not applied (to accept the new content, delete ${versionFile(cacheDir, chart, name, version)})`,
    { subject: chartSource(chart), reason: "BuildFailed" },
  );
}

function readPassword(file: string, chart: RemoteChart): string {
  try {
    return readFileSync(file, "utf8").trim();
  } catch (err) {
    throw new BerthError(`cannot read auth.passwordFile ${file}: ${messageOf(err)}`, {
      subject: chartSource(chart),
      reason: "BuildFailed",
    });
  }
}

function sourceId(chart: RemoteChart): string {
  return chart.repo !== undefined ? `${chart.repo.replace(/\/+$/, "")}\n${chart.chart}` : chart.chart;
}

function keyOf(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\n")).digest("hex");
}

function versionFile(cacheDir: string, chart: RemoteChart, name: string, version: string): string {
  return join(cacheDir, "versions", `${keyOf(sourceId(chart), name, version)}.json`);
}

/** Whether the cached archive is there and still hashes to its name (a damaged one is pulled again). */
async function intact(cacheDir: string, digest: string): Promise<boolean> {
  try {
    return sha256Of(await readFile(blobPath(cacheDir, digest))) === digest;
  } catch {
    return false;
  }
}

function intactSync(cacheDir: string, digest: string): boolean {
  try {
    return sha256Of(readFileSync(blobPath(cacheDir, digest))) === digest;
  } catch {
    return false;
  }
}

function sha256Of(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

function blobPath(cacheDir: string, digest: string): string {
  return join(cacheDir, "sha256", `${digest.replace(/^sha256:/, "")}.tgz`);
}

/** `name-1.2.3.tgz` → `1.2.3`. */
function versionOfArchive(file: string, name: string): string {
  return file.slice(name.length + 1, -".tgz".length);
}

async function remember(path: string, value: unknown): Promise<void> {
  await atomicWrite(path, Buffer.from(`${JSON.stringify(value)}\n`));
}

/** Writes beside, then renames: a crash never leaves a half-written archive under its digest. */
async function atomicWrite(path: string, bytes: Uint8Array): Promise<void> {
  const dir = join(path, "..");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${Math.random().toString(16).slice(2)}.tmp`;
  await writeFile(tmp, bytes, { mode: 0o600 });
  await rename(tmp, path);
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}

function readJsonSync<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, "utf8")) as T;
  } catch {
    return undefined;
  }
}
