/**
 * `berth import flux FILE|DIR`: Flux's GitRepository, OCIRepository, HelmRepository, Kustomization and
 * HelmRelease objects → a berth.yaml (and a rule file for healthCheckExprs), with one line per field berth cannot
 * express. Semantics follow Flux's API docs (kustomize.toolkit.fluxcd.io/v1, helm.toolkit.fluxcd.io/v2,
 * source.toolkit.fluxcd.io/v1); see import-flux.md. The conversion is pure: the caller hands in the YAML
 * documents of the tree and a way to render a Kustomization's path (kustomize build or plain files), because the
 * HelmReleases a Kustomization applies are often patched by its kustomization (as in Flux's own example).
 */

type Obj = Record<string, unknown>;

/** A parsed YAML document of the imported tree. */
export interface FluxDoc {
  object: Obj;
  file: string;
}

/** What rendering a Kustomization's path gave: its objects, or why it failed. */
export interface PathRender {
  objects: Obj[];
  error?: string;
}

export interface FluxImport {
  /** The berth.yaml, as an object to serialise. */
  config: Obj;
  /** The rule file with the Kustomizations' healthCheckExprs, when any. */
  rules?: Obj;
  /** One line per field (or object) berth cannot express: `Kind ns/name: spec.field: why`. */
  notes: string[];
}

export const RULES_FILE = "flux-health.yaml";

const SOURCE = "source.toolkit.fluxcd.io";
const KUSTOMIZE = "kustomize.toolkit.fluxcd.io";
const HELM = "helm.toolkit.fluxcd.io";
const FLUX_GROUPS = [SOURCE, KUSTOMIZE, HELM, "notification.toolkit.fluxcd.io", "image.toolkit.fluxcd.io"];

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const groupOf = (o: Obj): string => {
  const api = str(o.apiVersion) ?? "";
  return api.includes("/") ? api.slice(0, api.indexOf("/")) : "";
};
const meta = (o: Obj): Obj => (isObj(o.metadata) ? o.metadata : {});
const spec = (o: Obj): Obj => (isObj(o.spec) ? o.spec : {});
const nameOf = (o: Obj): string => str(meta(o).name) ?? "";
const nsOf = (o: Obj, fallback = "default"): string => str(meta(o).namespace) ?? fallback;
const isFlux = (o: Obj): boolean => FLUX_GROUPS.includes(groupOf(o));
const is = (o: Obj, group: string, kind: string): boolean => groupOf(o) === group && o.kind === kind;
const id = (kind: string, ns: string, name: string) => `${kind}/${ns}/${name}`;

/** A berth app name from a Flux name: lower case, [a-z0-9-], at most 63 characters. */
function appName(name: string): string {
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "");
  return (cleaned || "app").slice(0, 63).replace(/-+$/, "");
}

/** A repository path as berth takes it: no leading `./`, no trailing `/`, `.` for the root. */
function repoPath(path: string | undefined): string {
  const p = (path ?? "").replace(/^\.\/+/, "").replace(/\/+$/, "");
  return p === "" || p === "." ? "." : p;
}

/** Flattens Helm values into `--set` keys (dots in keys escaped); what `--set` cannot carry exactly is reported. */
function flattenValues(
  values: unknown,
  prefix: string,
  out: Record<string, string | number | boolean>,
  lost: string[],
) {
  if (isObj(values)) {
    const entries = Object.entries(values);
    if (entries.length === 0 && prefix) lost.push(`${prefix} (an empty map)`);
    for (const [k, v] of entries)
      flattenValues(v, prefix ? `${prefix}.${k.replace(/\./g, "\\.")}` : k.replace(/\./g, "\\."), out, lost);
  } else if (Array.isArray(values)) {
    if (values.length === 0) lost.push(`${prefix} (an empty list)`);
    for (const [i, v] of values.entries()) flattenValues(v, `${prefix}[${i}]`, out, lost);
  } else if (typeof values === "number" || typeof values === "boolean") {
    out[prefix] = values;
  } else if (typeof values === "string") {
    // --set reads "true", "1", "null" as a bool, number or null: such strings would change type.
    if (/^(true|false|null|~|[-+]?[0-9][0-9_.eE+-]*)$/i.test(values))
      lost.push(`${prefix} (the string "${values}")`);
    else out[prefix] = values;
  } else if (values === null) {
    lost.push(`${prefix} (null)`);
  }
}

interface AppOut extends Obj {
  name: string;
  path: string;
  dependsOn?: string[];
}

/** Converts the Flux objects of a tree. `render(path)` renders a Kustomization's path of the Git source. */
export async function importFlux(
  docs: FluxDoc[],
  render: (path: string) => Promise<PathRender>,
): Promise<FluxImport> {
  const notes: string[] = [];
  const note = (o: Obj, field: string, why: string) =>
    notes.push(`${o.kind} ${nsOf(o, "flux-system")}/${nameOf(o)}: ${field}: ${why}`);
  const objects = docs.map((d) => d.object).filter(isObj);

  const sources = new Map<string, Obj>();
  const helmRepos = new Map<string, Obj>();
  const ociRepos = new Map<string, Obj>();
  const kustomizations: Obj[] = [];
  const releases = new Map<string, Obj>();
  // HelmReleases in the files are used only without Kustomizations; otherwise those their paths render (patched).
  const fileReleases: Obj[] = [];
  const addSource = (o: Obj) => {
    if (is(o, SOURCE, "GitRepository")) sources.set(id("GitRepository", nsOf(o), nameOf(o)), o);
    else if (is(o, SOURCE, "HelmRepository")) helmRepos.set(id("HelmRepository", nsOf(o), nameOf(o)), o);
    else if (is(o, SOURCE, "OCIRepository")) ociRepos.set(id("OCIRepository", nsOf(o), nameOf(o)), o);
  };
  for (const o of objects) {
    addSource(o);
    if (is(o, KUSTOMIZE, "Kustomization")) kustomizations.push(o);
    else if (is(o, HELM, "HelmRelease")) fileReleases.push(o);
    else if (
      isFlux(o) &&
      !is(o, SOURCE, "GitRepository") &&
      !is(o, SOURCE, "HelmRepository") &&
      !is(o, SOURCE, "OCIRepository")
    )
      notes.push(`${o.kind} ${nsOf(o, "flux-system")}/${nameOf(o)}: not converted (berth has no ${o.kind})`);
  }

  // Kustomization → app; the HelmReleases its path applies become apps of their own.
  const apps: AppOut[] = [];
  const taken = new Set<string>();
  const unique = (name: string): string => {
    let n = appName(name);
    for (let i = 2; taken.has(n); i++) n = `${appName(name).slice(0, 60)}-${i}`;
    taken.add(n);
    return n;
  };
  const ksApp = new Map<string, string>();
  const helmAppsOf = new Map<string, string[]>();
  const releaseHome = new Map<string, { ks: string; path: string }>();
  const usedSources = new Set<string>();
  const healthRules: Obj[] = [];
  const rendered = new Map<Obj, Obj[]>();
  const skippedKs = new Set<Obj>();

  for (const ks of kustomizations) {
    const s = spec(ks);
    const path = repoPath(str(s.path));
    const out = await render(path);
    if (out.error) {
      note(ks, "spec.path", `rendering ${path} failed (${out.error}); its HelmReleases are not found`);
    }
    rendered.set(ks, out.objects);
    for (const o of out.objects) {
      addSource(o);
      if (is(o, HELM, "HelmRelease")) {
        const key = id("HelmRelease", nsOf(o, str(s.targetNamespace) ?? "default"), nameOf(o));
        releases.set(key, o);
        releaseHome.set(key, { ks: id("Kustomization", nsOf(ks, "flux-system"), nameOf(ks)), path });
      }
    }
    // Flux's own bootstrap (the Kustomization that applies Flux and the Kustomizations imported here).
    if (out.objects.some((o) => is(o, KUSTOMIZE, "Kustomization"))) {
      skippedKs.add(ks);
      const rest = out.objects.filter((o) => !isFlux(o)).length;
      note(
        ks,
        "not imported",
        `it applies Flux's Kustomizations (converted here)${rest > 0 ? ` and ${rest} other objects (Flux's own components and anything beside them): add an app for ${path} if you need those` : ""}`,
      );
    }
  }
  if (kustomizations.length === 0)
    for (const o of fileReleases) releases.set(id("HelmRelease", nsOf(o), nameOf(o)), o);
  for (const ks of kustomizations) {
    if (!skippedKs.has(ks))
      ksApp.set(id("Kustomization", nsOf(ks, "flux-system"), nameOf(ks)), unique(nameOf(ks)));
  }
  for (const [key, hr] of releases) helmAppsOf.set(key, [unique(nameOf(hr))]);

  // The Git source(s).
  const sourceFor = (o: Obj, ref: unknown): string | undefined => {
    if (!isObj(ref)) return undefined;
    const kind = str(ref.kind) ?? "GitRepository";
    const key = id(kind, str(ref.namespace) ?? nsOf(o, "flux-system"), str(ref.name) ?? "");
    if (kind !== "GitRepository") {
      note(
        o,
        "spec.sourceRef",
        `a ${kind} is not a source berth can follow (Git only); the app reads the path from the Git source`,
      );
      return undefined;
    }
    if (!sources.has(key))
      note(
        o,
        "spec.sourceRef",
        `GitRepository ${key.split("/").slice(1).join("/")} is not in the imported files`,
      );
    usedSources.add(key);
    return key;
  };

  for (const ks of kustomizations) {
    if (skippedKs.has(ks)) continue;
    const s = spec(ks);
    const key = id("Kustomization", nsOf(ks, "flux-system"), nameOf(ks));
    const name = ksApp.get(key) ?? appName(nameOf(ks));
    const path = repoPath(str(s.path));
    const app: AppOut = { name, path };
    const src = sourceFor(ks, s.sourceRef);
    if (src && sources.size > 1) app.source = appName(src.split("/")[2] ?? "");
    const objs = rendered.get(ks) ?? [];
    // Flux's kustomize-controller takes field ownership from other managers (server-side apply with force).
    app.force = true;
    app.prune = s.prune === true;
    if (str(s.interval)) app.interval = s.interval;
    // Flux: the timeout defaults to the interval.
    if (str(s.timeout) ?? str(s.interval)) app.timeout = str(s.timeout) ?? s.interval;
    if (s.suspend === true) app.suspend = true;
    const target = str(s.targetNamespace);
    if (target) {
      app.namespace = target;
      const elsewhere = objs.filter(
        (o) => !isFlux(o) && str(meta(o).namespace) && meta(o).namespace !== target,
      );
      if (elsewhere.length > 0)
        note(
          ks,
          "spec.targetNamespace",
          `berth sets it only on objects without a namespace; Flux also moves ${elsewhere.length} objects that name another (${elsewhere
            .slice(0, 3)
            .map((o) => `${o.kind}/${nameOf(o)}`)
            .join(", ")})`,
        );
    }
    const deps = new Set<string>();
    for (const d of Array.isArray(s.dependsOn) ? s.dependsOn : []) {
      if (!isObj(d)) continue;
      const dk = id("Kustomization", str(d.namespace) ?? nsOf(ks, "flux-system"), str(d.name) ?? "");
      const dep = ksApp.get(dk);
      if (!dep) {
        note(ks, "spec.dependsOn", `${dk.slice("Kustomization/".length)} is not an imported Kustomization`);
        continue;
      }
      deps.add(dep);
      // Flux's health of that Kustomization includes its HelmReleases being ready: wait for their apps too.
      for (const [rk, home] of releaseHome)
        if (home.ks === dk) for (const a of helmAppsOf.get(rk) ?? []) deps.add(a);
    }
    if (deps.size > 0) app.dependsOn = [...deps];
    const flux = [...new Set(objs.filter(isFlux).map(groupOf))].sort();
    if (flux.length > 0) app.exclude = flux.map((group) => ({ group }));
    if (str(s.serviceAccountName)) {
      if (target === undefined || target === nsOf(ks, "flux-system")) {
        app.serviceAccountName = s.serviceAccountName;
        app.namespace = nsOf(ks, "flux-system");
      } else
        note(
          ks,
          "spec.serviceAccountName",
          `berth looks the ServiceAccount up in the app's namespace (${target}), Flux in ${nsOf(ks, "flux-system")}`,
        );
    }
    const post = isObj(s.postBuild) ? s.postBuild : undefined;
    if (post) {
      if (isObj(post.substitute))
        app.vars = Object.fromEntries(Object.entries(post.substitute).map(([k, v]) => [k, String(v)]));
      if (Array.isArray(post.substituteFrom)) {
        app.varsFrom = post.substituteFrom.filter(isObj).map((f) => ({
          kind: f.kind === "Secret" ? "Secret" : "ConfigMap",
          name: str(f.name) ?? "",
          namespace: nsOf(ks, "flux-system"),
          ...(f.optional === true ? { optional: true } : {}),
        }));
      }
    }
    const dec = isObj(s.decryption) ? s.decryption : undefined;
    if (dec) {
      const secret = isObj(dec.secretRef) ? str(dec.secretRef.name) : undefined;
      note(
        ks,
        "spec.decryption",
        `berth decrypts SOPS files of every app with one age key: set render.ageKeyFile or render.ageKeyEnv${secret ? ` to the key in Secret ${nsOf(ks, "flux-system")}/${secret}` : ""} (PGP/KMS: the sops binary's own configuration)`,
      );
    }
    if (Array.isArray(s.healthCheckExprs)) {
      for (const [i, e] of s.healthCheckExprs.entries()) {
        if (!isObj(e)) continue;
        const kind = str(e.kind);
        const rule: Obj = {
          name: appName(`${name}-${kind ?? "any"}-${i}`),
          apiVersion: str(e.apiVersion) ?? "*",
        };
        if (kind) rule.kind = kind;
        for (const f of ["current", "inProgress", "failed"]) if (str(e[f])) rule[f] = e[f];
        healthRules.push(rule);
      }
      note(
        ks,
        "spec.healthCheckExprs",
        `written to ${RULES_FILE}; berth's rules apply to every app, not only this one`,
      );
    }
    if (Array.isArray(s.healthChecks)) {
      for (const h of s.healthChecks.filter(isObj)) {
        const hk = id(str(h.kind) ?? "", str(h.namespace) ?? nsOf(ks, "flux-system"), str(h.name) ?? "");
        const as = helmAppsOf.get(hk);
        if (as) continue; // a converted HelmRelease: its app is waited for by this app's dependants
        note(ks, "spec.healthChecks", `${hk}: berth waits for the app's own objects only`);
      }
    }
    if (s.wait === false)
      note(ks, "spec.wait", "berth always waits for every object of the app to be healthy");
    if (s.force === true)
      note(
        ks,
        "spec.force",
        "berth does not delete and recreate objects whose immutable fields changed; such a change fails the sync",
      );
    for (const f of [
      "retryInterval",
      "patches",
      "images",
      "components",
      "namePrefix",
      "nameSuffix",
      "commonMetadata",
      "kubeConfig",
      "deletionPolicy",
      "ignoreMissingComponents",
      "validation",
    ]) {
      if (s[f] !== undefined) note(ks, `spec.${f}`, "no berth equivalent; not converted");
    }
    apps.push(app);
  }

  // HelmRelease → helm app.
  for (const [key, hr] of releases) {
    const s = spec(hr);
    const name = helmAppsOf.get(key)?.[0] ?? appName(nameOf(hr));
    const home = releaseHome.get(key);
    const app: AppOut = { name, path: home?.path ?? "." };
    const ns = str(s.targetNamespace) ?? nsOf(hr);
    app.namespace = ns;
    const helm: Obj = {};
    const chartSpec = isObj(s.chart) && isObj(s.chart.spec) ? s.chart.spec : undefined;
    const chartRef = isObj(s.chartRef) ? s.chartRef : undefined;
    if (chartSpec) {
      const ref = isObj(chartSpec.sourceRef) ? chartSpec.sourceRef : {};
      const kind = str(ref.kind) ?? "HelmRepository";
      const rk = id(kind, str(ref.namespace) ?? nsOf(hr), str(ref.name) ?? "");
      const chart = str(chartSpec.chart) ?? "";
      if (kind === "HelmRepository") {
        const repo = helmRepos.get(rk);
        if (!repo) {
          note(hr, "spec.chart.spec.sourceRef", `${rk} is not in the imported files; set helm.repo by hand`);
          helm.chart = chart;
        } else {
          const rs = spec(repo);
          const url = (str(rs.url) ?? "").replace(/\/+$/, "");
          if (rs.type === "oci" || url.startsWith("oci://")) helm.chart = `${url}/${chart}`;
          else {
            helm.repo = url;
            helm.chart = chart;
          }
          if (isObj(rs.secretRef))
            note(
              repo,
              "spec.secretRef",
              `set helm.auth (username, passwordFile) of app ${name} from Secret ${nsOf(repo)}/${str(rs.secretRef.name)}`,
            );
          if (isObj(rs.certSecretRef))
            note(
              repo,
              "spec.certSecretRef",
              `set helm.caFile of app ${name} from Secret ${nsOf(repo)}/${str(rs.certSecretRef.name)}`,
            );
          for (const f of ["insecure", "passCredentials", "provider", "suspend"])
            if (rs[f] !== undefined) note(repo, `spec.${f}`, "no berth equivalent; not converted");
        }
      } else if (kind === "GitRepository") {
        helm.chart = repoPath(chart);
        sourceFor(hr, ref);
        if (Array.isArray(chartSpec.valuesFiles))
          helm.values = chartSpec.valuesFiles.map((v) => repoPath(String(v)));
      } else {
        note(
          hr,
          "spec.chart.spec.sourceRef",
          `a chart from a ${kind} is not supported; set helm.chart by hand`,
        );
        helm.chart = chart;
      }
      if (str(chartSpec.version) && chartSpec.version !== "*") helm.version = chartSpec.version;
      if (kind !== "GitRepository" && Array.isArray(chartSpec.valuesFiles))
        note(
          hr,
          "spec.chart.spec.valuesFiles",
          "values files inside a remote chart are not supported; not converted",
        );
      for (const f of ["reconcileStrategy", "verify", "ignoreMissingValuesFiles"])
        if (chartSpec[f] !== undefined)
          note(hr, `spec.chart.spec.${f}`, "no berth equivalent; not converted");
    } else if (chartRef) {
      const kind = str(chartRef.kind) ?? "";
      const rk = id(kind, str(chartRef.namespace) ?? nsOf(hr), str(chartRef.name) ?? "");
      const oci = ociRepos.get(rk);
      if (kind === "OCIRepository" && oci) {
        const os = spec(oci);
        helm.chart = str(os.url) ?? "";
        const ref = isObj(os.ref) ? os.ref : {};
        if (str(ref.tag)) helm.version = ref.tag;
        else if (str(ref.semver)) helm.version = ref.semver;
        if (str(ref.digest))
          note(
            oci,
            "spec.ref.digest",
            "berth pins a chart by version, not digest (the digest it pulled is recorded in the ledger)",
          );
        if (isObj(os.secretRef))
          note(
            oci,
            "spec.secretRef",
            `set helm.auth (username, passwordFile) of app ${name} from Secret ${nsOf(oci)}/${str(os.secretRef.name)}`,
          );
      } else {
        note(hr, "spec.chartRef", `${rk} cannot be converted; set helm.chart by hand`);
        helm.chart = "";
      }
    } else note(hr, "spec.chart", "no chart; set helm.chart by hand");
    // Flux: the release name defaults to [targetNamespace-]name.
    helm.releaseName =
      str(s.releaseName) ?? (str(s.targetNamespace) ? `${s.targetNamespace}-${nameOf(hr)}` : nameOf(hr));
    if (s.values !== undefined) {
      const set: Record<string, string | number | boolean> = {};
      const lost: string[] = [];
      flattenValues(s.values, "", set, lost);
      if (Object.keys(set).length > 0) helm.set = set;
      for (const l of lost)
        note(hr, "spec.values", `${l} cannot be passed exactly with --set; not converted`);
    }
    app.helm = helm;
    const deps = new Set<string>();
    if (home) {
      const owner = ksApp.get(home.ks);
      if (owner) deps.add(owner); // its namespace and repository come with the Kustomization
    }
    for (const d of Array.isArray(s.dependsOn) ? s.dependsOn : []) {
      if (!isObj(d)) continue;
      const dep = helmAppsOf.get(id("HelmRelease", str(d.namespace) ?? nsOf(hr), str(d.name) ?? ""))?.[0];
      if (dep) deps.add(dep);
      else
        note(
          hr,
          "spec.dependsOn",
          `${str(d.namespace) ?? nsOf(hr)}/${str(d.name)} is not an imported HelmRelease`,
        );
    }
    if (deps.size > 0) app.dependsOn = [...deps];
    if (str(s.interval)) app.interval = s.interval;
    if (str(s.timeout)) app.timeout = s.timeout;
    if (s.suspend === true) app.suspend = true;
    if (Array.isArray(s.valuesFrom) && s.valuesFrom.length > 0)
      note(
        hr,
        "spec.valuesFrom",
        "values from ConfigMaps/Secrets are not supported; put them in a values file in Git (helm.values)",
      );
    const crds = isObj(s.install) ? str(s.install.crds) : undefined;
    if (crds !== "Skip")
      note(
        hr,
        "spec.install.crds",
        "berth renders with `helm template` without --include-crds: CRDs in the chart's crds/ directory are not applied",
      );
    for (const f of [
      "install",
      "upgrade",
      "test",
      "rollback",
      "uninstall",
      "driftDetection",
      "postRenderers",
      "maxHistory",
      "serviceAccountName",
      "kubeConfig",
      "storageNamespace",
      "persistentClient",
    ]) {
      if (
        s[f] !== undefined &&
        !(f === "install" && Object.keys(s.install as Obj).every((k) => k === "crds"))
      )
        note(
          hr,
          `spec.${f}`,
          "no berth equivalent (berth applies the rendered chart; there is no Helm release); not converted",
        );
    }
    apps.push(app);
  }

  // The source: one GitRepository → `source`; several → the `sources:` map (issue 15).
  const usedGit = [...usedSources].map((k) => sources.get(k)).filter((o): o is Obj => o !== undefined);
  const gits = usedGit.length > 0 ? usedGit : [...sources.values()];
  const sourceOf = (git: Obj): Obj => {
    const s = spec(git);
    const out: Obj = { url: str(s.url) ?? "" };
    const ref = isObj(s.ref) ? s.ref : {};
    const r =
      str(ref.commit) ??
      str(ref.tag) ??
      str(ref.branch) ??
      str(ref.name)?.replace(/^refs\/(heads|tags)\//, "");
    if (r) out.ref = r;
    if (str(ref.semver))
      note(git, "spec.ref.semver", "berth follows a branch, tag or commit, not a semver range");
    if (str(s.interval)) out.interval = s.interval;
    if (str(s.timeout)) out.timeout = s.timeout;
    if (isObj(s.secretRef)) {
      const how = /^(ssh:\/\/|[^/]+@[^/]+:)/.test(String(out.url))
        ? "source.ssh (keyFile, knownHostsFile)"
        : "source.auth (tokenFile, or username and passwordFile)";
      note(
        git,
        "spec.secretRef",
        `set ${how} from Secret ${nsOf(git, "flux-system")}/${str(s.secretRef.name)}`,
      );
    }
    if (s.verify !== undefined)
      note(
        git,
        "spec.verify",
        "berth verifies SSH-signed commits (source.verify.allowedSignersFile); Flux's OpenPGP keys are not converted",
      );
    for (const f of [
      "ignore",
      "include",
      "recurseSubmodules",
      "proxySecretRef",
      "sparseCheckout",
      "provider",
      "suspend",
    ])
      if (s[f] !== undefined) note(git, `spec.${f}`, "no berth equivalent; not converted");
    return out;
  };
  for (const o of ociRepos.values()) {
    const used = [...releases.values()].some(
      (hr) => isObj(spec(hr).chartRef) && str((spec(hr).chartRef as Obj).name) === nameOf(o),
    );
    if (!used)
      notes.push(
        `OCIRepository ${nsOf(o, "flux-system")}/${nameOf(o)}: not converted (berth has no OCI artifact source yet)`,
      );
  }

  const config: Obj = { apiVersion: "berth.dev/v1alpha1", kind: "Agent" };
  if (gits.length === 1 && gits[0]) config.source = sourceOf(gits[0]);
  else if (gits.length > 1)
    config.sources = Object.fromEntries(gits.map((g) => [appName(nameOf(g)), sourceOf(g)]));
  else {
    notes.push("GitRepository: none in the imported files; set source.url by hand");
    config.source = { url: "" };
  }
  config.apps = apps;
  if (healthRules.length > 0) config.rules = [RULES_FILE];
  const result: FluxImport = { config, notes };
  if (healthRules.length > 0)
    result.rules = { apiVersion: "berth.dev/v1alpha1", kind: "Rules", health: healthRules };
  return result;
}
