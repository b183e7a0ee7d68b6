/** The generated 1,000-object app of the benchmarks and the load script: 400 ConfigMaps, 300 Services, 300 Deployments. */

/** Files of the app under `app/`, in namespace `ns`; `version` is cm-0's value, `bump` the value of the other ConfigMaps. */
export function tree1000(ns: string, version: string, bump = "1"): Record<string, string> {
  const files: Record<string, string> = {
    "app/namespace.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
  };
  for (let i = 0; i < 400; i++) {
    files[`app/config/cm-${i}.yaml`] =
      `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\n  namespace: ${ns}\ndata:\n  index: "${i}"\n  version: "${i === 0 ? version : bump}"\n`;
  }
  for (let i = 0; i < 300; i++) {
    files[`app/svc/svc-${i}.yaml`] =
      `apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-${i}\n  namespace: ${ns}\nspec:\n  selector: {app: d-${i}}\n  ports: [{port: 80, targetPort: 8080}]\n`;
    files[`app/deploy/d-${i}.yaml`] =
      `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d-${i}\n  namespace: ${ns}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: d-${i}}}\n  template:\n    metadata: {labels: {app: d-${i}}}\n    spec:\n      containers: [{name: c, image: "nginx:1.27"}]\n`;
  }
  return files;
}
