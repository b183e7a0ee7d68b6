/** Manifest text for test repositories: the objects most tests sync, written once. */

/** A Namespace. */
export const namespaceYaml = (name: string): string =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`;

/** A ConfigMap with one `greeting` key, or the data given. */
export const configMapYaml = (name: string, data: string | Record<string, string>): string =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n${Object.entries(
    typeof data === "string" ? { greeting: data } : data,
  )
    .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}\n`)
    .join("")}`;

/** A Secret with `stringData`. */
export const secretYaml = (name: string, stringData: Record<string, string>): string =>
  `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\nstringData:\n${Object.entries(stringData)
    .map(([k, v]) => `  ${k}: ${JSON.stringify(v)}\n`)
    .join("")}`;

/** A Deployment of nginx:1.27 whose container is named `container` (the Deployment's name unless given). */
export const deploymentYaml = (name: string, replicas: number, container = name): string =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\nspec:\n  replicas: ${replicas}\n  selector: {matchLabels: {app: ${name}}}\n  template:\n    metadata: {labels: {app: ${name}}}\n    spec:\n      containers: [{name: ${container}, image: "nginx:1.27"}]\n`;

/** The CRD of namespaced `Widget`s (plural `widgets`) in `group`, with a free-form spec. */
export const widgetCrdYaml = (group: string): string =>
  `apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.${group}\nspec:\n  group: ${group}\n  scope: Namespaced\n  names: {plural: widgets, singular: widget, kind: Widget}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        properties:\n          spec: {type: object, x-kubernetes-preserve-unknown-fields: true}\n`;

/** A Widget of `group` with `spec.size`. */
export const widgetYaml = (group: string, name: string, size: number): string =>
  `apiVersion: ${group}/v1\nkind: Widget\nmetadata:\n  name: ${name}\nspec:\n  size: ${size}\n`;

/** A sync rule: creating an object whose name starts with `gated` is held for approval. */
export const GATE_RULE = `  - name: gate-the-gated
    when: change.action == 'created' && change.object.metadata.name.startsWith('gated')
    verdict: hold
    message: a gated object needs an approval
`;

/** A rules file of sync rules (YAML list items). */
export const syncRules = (...rules: string[]): string =>
  `apiVersion: berth.dev/v1alpha1\nkind: Rules\nsync:\n${rules.join("")}`;

/** A tenant's ServiceAccount `deployer` whose Role lets it manage `resources` (ConfigMaps) in `namespace`, nothing else. */
export const deployerRbacYaml = (
  namespace: string,
  resources: readonly string[] = ["configmaps"],
): string => `apiVersion: v1
kind: ServiceAccount
metadata: {name: deployer, namespace: ${namespace}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: deployer, namespace: ${namespace}}
rules:
  - {apiGroups: [""], resources: [${resources.join(", ")}], verbs: [get, list, watch, create, patch, delete]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: deployer, namespace: ${namespace}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: deployer}
subjects: [{kind: ServiceAccount, name: deployer, namespace: ${namespace}}]
`;
