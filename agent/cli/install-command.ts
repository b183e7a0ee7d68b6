/**
 * `berth install manifests [--namespaced]`: the in-cluster install — a Deployment with a PVC for the ledger, a
 * ServiceAccount and least-privilege RBAC generated from what the configured apps render at the current commit.
 */
import { readFileSync } from "node:fs";
import { parseDocument, stringify } from "yaml";
import type { AgentConfig } from "../config/config.ts";
import { silentLogger } from "../engine/log.ts";
import type { ResourceInfo } from "../kube/client.ts";
import { BerthError } from "../object/errors.ts";
import { type KubeObject, refOf, subject } from "../object/object.ts";
import { buildInfo } from "../version.ts";
import type { Io } from "./cli.ts";
import { type GlobalFlags, wire } from "./wire.ts";

/** Flags of `berth install manifests`. */
export interface InstallFlags {
  /** Where berth itself runs (default `berth`). */
  namespace?: string | undefined;
  /** Roles and RoleBindings in the apps' namespaces only; no cluster-scoped RBAC. */
  namespaced: boolean;
  image?: string | undefined;
}

/** The verbs berth needs on every kind it manages: read and watch (plan, health, drift), apply, prune. */
export const MANAGE_VERBS = ["get", "list", "watch", "create", "patch", "delete"] as const;

/** A kind berth manages, with where its objects live ("" for cluster-scoped). */
export interface ManagedKind {
  group: string;
  plural: string;
  namespaced: boolean;
  namespaces: Set<string>;
}

/** One RBAC rule. */
interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** What the manifests are generated from. */
export interface InstallInput {
  /** The user's berth.yaml text; ledger and API settings are rewritten for the pod. */
  configText: string;
  configPath: string;
  kinds: ManagedKind[];
  /** Rules of Roles/ClusterRoles the apps create: the API server lets berth grant only what it holds. */
  grantedRules: Array<{ namespace: string; rules: PolicyRule[] }>;
  namespace: string;
  namespaced: boolean;
  image: string;
  /** The HA Lease, if configured: berth needs get/create/update on it. */
  lease?: { name: string; namespace: string } | undefined;
  /**
   * The apps' ServiceAccounts berth acts as: it gets `impersonate` on exactly these (resourceNames), and none
   * of those apps' kinds, which the ServiceAccounts' own RBAC must allow.
   */
  impersonate?: Array<{ namespace: string; name: string }>;
}

const LEDGER_DIR = "/var/lib/berth";
const API_PORT = 7420;

/** Runs `berth install manifests`: renders every app at the current commit and prints the manifests as YAML. */
export async function installCommand(
  flags: GlobalFlags,
  opts: InstallFlags,
  rest: string[],
  io: Io,
): Promise<number> {
  if (rest[0] !== "manifests" || rest.length > 1)
    throw new BerthError("usage: berth install manifests [--namespaced] [--namespace NS] [--image IMAGE]");
  const w = await wire(flags, silentLogger);
  try {
    const snapshot = await w.source.snapshot(await w.source.resolve());
    await w.kube.discover();
    const kinds = new Map<string, ManagedKind>();
    const grantedRules: InstallInput["grantedRules"] = [];
    const impersonate: NonNullable<InstallInput["impersonate"]> = [];
    for (const app of w.config.apps) {
      // An app synced as its ServiceAccount needs no rights of berth's own: only leave to impersonate it.
      if (app.serviceAccountName && app.namespace) {
        impersonate.push({ namespace: app.namespace, name: app.serviceAccountName });
        continue;
      }
      const rendered = await w.deps.render(snapshot, app);
      if (rendered.errors.length > 0) {
        const first = rendered.errors[0];
        throw new BerthError(`app ${app.name} does not render: ${first?.path}: ${first?.message}`, {
          subject: snapshot.revision,
        });
      }
      for (const { object } of rendered.objects) {
        const ref = refOf(object);
        const info = w.kube.resource(ref.group, ref.version, ref.kind);
        if (!info) throw new BerthError("the API server does not serve this kind", { subject: subject(ref) });
        const namespace = info.namespaced ? ref.namespace || app.namespace || "" : "";
        if (info.namespaced && !namespace)
          throw new BerthError("a namespaced object without a namespace (set the app's namespace)", {
            subject: subject(ref),
          });
        if (opts.namespaced && !info.namespaced)
          throw new BerthError(
            "is cluster-scoped: --namespaced installs can only manage namespaced objects (drop --namespaced, or move it to an app a cluster admin applies)",
            { subject: subject(ref) },
          );
        addKind(kinds, info, namespace);
        const roleRules = grantedRulesOf(object);
        if (roleRules) grantedRules.push({ namespace, rules: roleRules });
      }
    }
    const objects = installManifests({
      configText: readFileSync(w.config.configPath, "utf8"),
      configPath: w.config.configPath,
      kinds: [...kinds.values()],
      grantedRules,
      namespace: opts.namespace ?? "berth",
      namespaced: opts.namespaced,
      image: opts.image ?? `berth:${buildInfo().version}`,
      lease: leaseOf(w.config),
      impersonate,
    });
    io.out(objects.map((o) => stringify(o)).join("---\n"));
    return 0;
  } finally {
    w.close();
  }
}

function leaseOf(config: AgentConfig): InstallInput["lease"] {
  return config.ha ? { name: config.ha.lease, namespace: config.ha.namespace } : undefined;
}

function addKind(kinds: Map<string, ManagedKind>, info: ResourceInfo, namespace: string): void {
  const key = `${info.group}/${info.plural}`;
  let k = kinds.get(key);
  if (!k) {
    k = { group: info.group, plural: info.plural, namespaced: info.namespaced, namespaces: new Set() };
    kinds.set(key, k);
  }
  if (namespace) k.namespaces.add(namespace);
}

/**
 * What berth must hold to create an RBAC object: a Role's or ClusterRole's own rules (the API server lets it
 * grant only what it holds), and `bind` on exactly the role a binding references (so the binding does not
 * depend on the role being readable yet: both may be applied in one stage). Undefined for other kinds.
 */
function grantedRulesOf(obj: KubeObject): PolicyRule[] | undefined {
  if (!obj.apiVersion.startsWith("rbac.authorization.k8s.io/")) return undefined;
  if (obj.kind === "Role" || obj.kind === "ClusterRole")
    return Array.isArray(obj.rules) ? (obj.rules as PolicyRule[]) : [];
  if (obj.kind === "RoleBinding" || obj.kind === "ClusterRoleBinding") {
    const ref = obj.roleRef as { kind?: string; name?: string } | undefined;
    if (!ref?.name) return [];
    const resource = ref.kind === "ClusterRole" ? "clusterroles" : "roles";
    return [
      {
        apiGroups: ["rbac.authorization.k8s.io"],
        resources: [resource],
        verbs: ["bind"],
        resourceNames: [ref.name],
      },
    ];
  }
  return undefined;
}

/** The install manifests, in apply order: namespace, identity, RBAC, config, storage, workload, service. */
export function installManifests(input: InstallInput): KubeObject[] {
  const ns = input.namespace;
  const labels = { "app.kubernetes.io/name": "berth", "app.kubernetes.io/instance": ns };
  const meta = (name: string, namespace?: string) => ({
    name,
    ...(namespace ? { namespace } : {}),
    labels,
  });
  const subjects = [{ kind: "ServiceAccount", name: "berth", namespace: ns }];
  const out: KubeObject[] = [];
  if (!input.namespaced) out.push({ apiVersion: "v1", kind: "Namespace", metadata: meta(ns) });
  out.push({ apiVersion: "v1", kind: "ServiceAccount", metadata: meta("berth", ns) });

  if (input.namespaced) {
    const byNamespace = new Map<string, PolicyRule[]>();
    for (const k of input.kinds)
      for (const n of k.namespaces)
        pushRule(byNamespace, n, { apiGroups: [k.group], resources: [k.plural], verbs: [...MANAGE_VERBS] });
    for (const g of input.grantedRules) for (const r of g.rules) pushRule(byNamespace, g.namespace, r);
    if (input.lease) pushRule(byNamespace, input.lease.namespace, ...leaseRules(input.lease.name));
    for (const [n, rules] of [...byNamespace].sort(([a], [b]) => a.localeCompare(b))) {
      out.push({
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: meta(`berth-${ns}`, n),
        rules,
      });
      out.push(binding("RoleBinding", `berth-${ns}`, n, "Role", subjects, labels));
    }
  } else {
    // One ClusterRole: kinds are granted cluster-wide, as berth may create the namespaces they live in.
    const rules: PolicyRule[] = input.kinds
      .map((k) => ({ apiGroups: [k.group], resources: [k.plural], verbs: [...MANAGE_VERBS] }))
      .sort((a, b) =>
        `${a.apiGroups[0]}/${a.resources[0]}`.localeCompare(`${b.apiGroups[0]}/${b.resources[0]}`),
      );
    for (const g of input.grantedRules) rules.push(...g.rules);
    const name = `berth-${ns}`;
    // Only tenant apps (synced as their ServiceAccounts): berth needs no cluster-wide rights at all.
    if (rules.length > 0) {
      out.push({
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRole",
        metadata: meta(name),
        rules,
      });
      out.push(binding("ClusterRoleBinding", name, undefined, "ClusterRole", subjects, labels));
    }
    if (input.lease) {
      out.push({
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: meta(`berth-${ns}-lease`, input.lease.namespace),
        rules: leaseRules(input.lease.name),
      });
      out.push(binding("RoleBinding", `berth-${ns}-lease`, input.lease.namespace, "Role", subjects, labels));
    }
  }

  // `impersonate` on the apps' ServiceAccounts by name, one Role per namespace they live in.
  const accounts = new Map<string, Set<string>>();
  for (const sa of input.impersonate ?? [])
    accounts.set(sa.namespace, (accounts.get(sa.namespace) ?? new Set()).add(sa.name));
  for (const [n, names] of [...accounts].sort(([a], [b]) => a.localeCompare(b))) {
    const name = `berth-${ns}-impersonate`;
    out.push({
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "Role",
      metadata: meta(name, n),
      rules: [
        {
          apiGroups: [""],
          resources: ["serviceaccounts"],
          verbs: ["impersonate"],
          resourceNames: [...names].sort(),
        },
      ],
    });
    out.push(binding("RoleBinding", name, n, "Role", subjects, labels));
  }

  out.push({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: meta("berth-config", ns),
    data: { "berth.yaml": podConfig(input.configText, input.configPath) },
  });
  out.push({
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: meta("berth-ledger", ns),
    spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } },
  });
  out.push({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta("berth", ns),
    spec: {
      replicas: 1,
      // One writer per ledger volume: the old pod stops before the new one opens the ledger.
      strategy: { type: "Recreate" },
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: "berth",
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, fsGroup: 65532 },
          containers: [
            {
              name: "berth",
              image: input.image,
              args: ["run", "--config", "/etc/berth/berth.yaml"],
              env: [{ name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } }],
              ports: [{ name: "http", containerPort: API_PORT }],
              readinessProbe: { httpGet: { path: "/readyz", port: "http" } },
              livenessProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 20 },
              resources: { requests: { cpu: "50m", memory: "96Mi" }, limits: { memory: "256Mi" } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ["ALL"] },
              },
              volumeMounts: [
                { name: "config", mountPath: "/etc/berth", readOnly: true },
                { name: "ledger", mountPath: LEDGER_DIR },
              ],
            },
          ],
          volumes: [
            { name: "config", configMap: { name: "berth-config" } },
            { name: "ledger", persistentVolumeClaim: { claimName: "berth-ledger" } },
          ],
        },
      },
    },
  });
  out.push({
    apiVersion: "v1",
    kind: "Service",
    metadata: meta("berth", ns),
    spec: { selector: labels, ports: [{ name: "http", port: API_PORT, targetPort: "http" }] },
  });
  return out;
}

function pushRule(map: Map<string, PolicyRule[]>, namespace: string, ...rules: PolicyRule[]): void {
  map.set(namespace, [...(map.get(namespace) ?? []), ...rules]);
}

/** A Lease can be named for get/update, not for create (the name is not known to RBAC before it exists). */
function leaseRules(name: string): PolicyRule[] {
  return [
    {
      apiGroups: ["coordination.k8s.io"],
      resources: ["leases"],
      verbs: ["get", "update"],
      resourceNames: [name],
    },
    { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
  ];
}

function binding(
  kind: "RoleBinding" | "ClusterRoleBinding",
  name: string,
  namespace: string | undefined,
  roleKind: "Role" | "ClusterRole",
  subjects: object[],
  labels: Record<string, string>,
): KubeObject {
  return {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind,
    metadata: { name, ...(namespace ? { namespace } : {}), labels },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: roleKind, name },
    subjects,
  };
}

/** The user's config with the ledger on the PVC and the API on the pod's port; comments are kept. */
function podConfig(text: string, path: string): string {
  const doc = parseDocument(text);
  if (doc.errors.length > 0)
    throw new BerthError(doc.errors[0]?.message ?? "invalid YAML", { subject: path });
  doc.setIn(["ledger", "path"], `${LEDGER_DIR}/ledger.db`);
  doc.setIn(["api", "listen"], `0.0.0.0:${API_PORT}`);
  return doc.toString();
}
