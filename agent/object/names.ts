/**
 * The API server's rules for object names, per kind, so a name it would refuse is a plan error naming the
 * object and file instead of a failed apply (a name with `/` even addresses another URL). Taken from
 * Kubernetes 1.36 (`pkg/apis/<group>/validation`, apiextensions-apiserver, kube-aggregator); kinds berth
 * does not list are held to the DNS-1123 subdomain rule custom resources have. Pure: no I/O.
 */
import { type KubeObject, splitApiVersion } from "./object.ts";

/** How a kind's names are checked. */
export type NameRule =
  /** lower case letters, digits, `-` and `.`, dot-separated labels, at most 253 characters (most kinds) */
  | "dns-subdomain"
  /** lower case letters, digits and `-`, at most 63 characters (Namespace, Service, StatefulSet) */
  | "dns-label"
  /** only not `.`/`..` and without `/` or `%` (RBAC and kinds with their own formats) */
  | "path-segment";

const DNS_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS_LABEL_RE = new RegExp(`^${DNS_LABEL}$`);
const DNS_SUBDOMAIN_RE = new RegExp(`^${DNS_LABEL}(\\.${DNS_LABEL})*$`);
const DNS_LABEL_MAX = 63;
const DNS_SUBDOMAIN_MAX = 253;
/** The CronJob controller appends an 11-character suffix to make a Job name, which is at most 63. */
const CRONJOB_NAME_MAX = 52;

/** `group/Kind` → rule, for kinds whose rule is not dns-subdomain. */
const RULES: ReadonlyMap<string, NameRule> = new Map([
  ["/Namespace", "dns-label"],
  // DNS-1035 (a letter first) before 1.36; RelaxedServiceNameValidation (beta, on in 1.36) allows a label.
  ["/Service", "dns-label"],
  ["apps/StatefulSet", "dns-label"],
  ["rbac.authorization.k8s.io/Role", "path-segment"],
  ["rbac.authorization.k8s.io/ClusterRole", "path-segment"],
  ["rbac.authorization.k8s.io/RoleBinding", "path-segment"],
  ["rbac.authorization.k8s.io/ClusterRoleBinding", "path-segment"],
  ["certificates.k8s.io/CertificateSigningRequest", "path-segment"],
  // These have formats of their own (signer-derived, an IP, version.group, group.resource, a key):
  // the server checks them; berth checks what every name must be.
  ["certificates.k8s.io/ClusterTrustBundle", "path-segment"],
  ["networking.k8s.io/IPAddress", "path-segment"],
  ["apiregistration.k8s.io/APIService", "path-segment"],
  ["internal.apiserver.k8s.io/StorageVersion", "path-segment"],
  ["coordination.k8s.io/LeaseCandidate", "path-segment"],
]);

/** The rule the API server applies to names of this kind. */
export function nameRuleFor(group: string, kind: string): NameRule {
  return RULES.get(`${group}/${kind}`) ?? "dns-subdomain";
}

/** What is wrong with `name` under `rule` (empty when it is valid); phrased after the API server's messages. */
export function nameProblems(name: string, rule: NameRule): string[] {
  const problems: string[] = [];
  if (name === "") return ["must not be empty"];
  if (rule === "path-segment") {
    if (name === "." || name === "..") problems.push(`may not be '${name}'`);
    for (const bad of ["/", "%"]) if (name.includes(bad)) problems.push(`may not contain '${bad}'`);
    return problems;
  }
  const [max, re, what] =
    rule === "dns-label"
      ? [DNS_LABEL_MAX, DNS_LABEL_RE, "a lowercase RFC 1123 label (lower case letters, digits and '-')"]
      : [
          DNS_SUBDOMAIN_MAX,
          DNS_SUBDOMAIN_RE,
          "a lowercase RFC 1123 subdomain (lower case letters, digits, '-' and '.')",
        ];
  if (name.length > max) problems.push(`must be no more than ${max} characters (has ${name.length})`);
  if (!re.test(name)) problems.push(`must be ${what}: ${formatFaults(name, rule).join(", ")}`);
  return problems;
}

/**
 * What the API server would refuse in an object's name (and namespace), as one message naming the field,
 * or undefined when it would accept them. Covers the per-kind extras too: a CronJob name of at most 52
 * characters, a CustomResourceDefinition named `<spec.names.plural>.<spec.group>`.
 */
export function invalidNameMessage(obj: KubeObject): string | undefined {
  const { group } = splitApiVersion(obj.apiVersion);
  const name = obj.metadata.name;
  const rule = nameRuleFor(group, obj.kind);
  const problems = nameProblems(name, rule);
  if (problems.length === 0) {
    if (group === "batch" && obj.kind === "CronJob" && name.length > CRONJOB_NAME_MAX)
      problems.push(`must be no more than ${CRONJOB_NAME_MAX} characters (Jobs get an 11-character suffix)`);
    if (group === "apiextensions.k8s.io" && obj.kind === "CustomResourceDefinition") {
      const spec = (obj.spec ?? {}) as { group?: unknown; names?: { plural?: unknown } };
      const required = `${String(spec.names?.plural ?? "")}.${String(spec.group ?? "")}`;
      if (name !== required) problems.push(`must be spec.names.plural+"."+spec.group ("${required}")`);
    }
  }
  const namespace = obj.metadata.namespace;
  const nsProblems = namespace === undefined || namespace === "" ? [] : nameProblems(namespace, "dns-label");
  const parts: string[] = [];
  if (problems.length > 0)
    parts.push(
      `metadata.name ${JSON.stringify(truncate(name))} is not a valid ${obj.kind} name: ${problems.join("; ")}`,
    );
  if (nsProblems.length > 0)
    parts.push(
      `metadata.namespace ${JSON.stringify(truncate(namespace ?? ""))} is not a valid namespace name: ${nsProblems.join("; ")}`,
    );
  return parts.length > 0 ? parts.join("; ") : undefined;
}

/** Why a name fails the DNS pattern, in words. */
function formatFaults(name: string, rule: NameRule): string[] {
  const faults: string[] = [];
  if (name !== name.toLowerCase()) faults.push("it has upper case letters");
  const others = [...new Set(name.toLowerCase().replace(/[a-z0-9.-]/g, ""))];
  if (others.length > 0)
    faults.push(
      `it has ${others
        .slice(0, 5)
        .map((c) => JSON.stringify(c))
        .join(" ")}`,
    );
  if (rule === "dns-label" && name.includes(".")) faults.push("it has a '.'");
  const parts = rule === "dns-label" ? [name] : name.split(".");
  if (parts.some((p) => p === "")) faults.push("it has an empty part between dots");
  if (parts.some((p) => /^[^a-z0-9]|[^a-z0-9]$/i.test(p) && p !== ""))
    faults.push(
      rule === "dns-label"
        ? "it must start and end with a letter or digit"
        : "each part between dots must start and end with a letter or digit",
    );
  return faults.length > 0 ? faults : ["it does not match"];
}

/** Keeps messages readable when the name is the problem because it is huge. */
function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 60)}…(${s.length} characters)` : s;
}
