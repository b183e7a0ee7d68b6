/**
 * The preview tests' repository: a database StatefulSet whose PersistentVolumeClaim is bound to a volume made
 * before the app, and the rule that holds deleting the claim. Both the in-process and the Gitea preview tests
 * drop the claim in a pull request and expect the hold.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { kubectl, type TestCluster } from "./cluster.ts";
import type { ClusterTest } from "./cluster-test.ts";

/** A rules file: deleting a PersistentVolumeClaim is held for approval (rule no-pvc-delete). */
export const NO_PVC_DELETE_RULES = `apiVersion: berth.dev/v1alpha1
kind: Rules
sync:
  - name: no-pvc-delete
    when: change.action == 'deleted' && change.object.kind == 'PersistentVolumeClaim'
    verdict: hold
    message: deleting a claim deletes its data
`;

/** The `settings` ConfigMap with a level. */
export const settingsYaml = (level: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {level: "${level}"}\n`;

/** The StatefulSet `db` mounting `volume` (a pod volume in YAML flow style) at /var/lib/db. */
export const statefulSetYaml = (volume: string) => `apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
        - name: db
          image: registry.invalid/db:1
          volumeMounts: [{name: data, mountPath: /var/lib/db}]
      volumes:
        - ${volume}
`;

/** The database app's first commit in `ns`: the namespace, settings, the claim `data` bound to volume `pv`, the StatefulSet. */
export function databaseFiles(ns: string, pv: string): Record<string, string> {
  return {
    "app/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${ns}}\n`,
    "app/settings.yaml": settingsYaml("info"),
    "app/claim.yaml": `apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  storageClassName: ""
  volumeName: ${pv}
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
`,
    "app/db.yaml": statefulSetYaml("{name: data, persistentVolumeClaim: {claimName: data}}"),
  };
}

/** The commit of the pull request that drops the claim (the database moves to an emptyDir). */
export const dropClaimFiles = (): Record<string, string | null> => ({
  "app/claim.yaml": null,
  "app/db.yaml": statefulSetYaml("{name: data, emptyDir: {}}"),
  "app/settings.yaml": settingsYaml("debug"),
});

/** Creates the PersistentVolume `pv` (written into `dir`), pre-bound to the claim `data` of `ns`. */
export function createBoundVolume(cluster: TestCluster, dir: string, ns: string, pv: string): void {
  const file = join(dir, "pv.yaml");
  writeFileSync(
    file,
    `apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: ${pv}}\nspec:\n  capacity: {storage: 1Gi}\n  accessModes: [ReadWriteOnce]\n  storageClassName: ""\n  persistentVolumeReclaimPolicy: Retain\n  hostPath: {path: /tmp/${pv}}\n  claimRef: {namespace: ${ns}, name: data}\n`,
  );
  kubectl(cluster, "apply", "-f", file);
}

/** The PersistentVolume's name for a test's database (`<namespace>-pv`), removed at the test's teardown. */
export function volumeNameFor(t: ClusterTest): string {
  const pv = `${t.ns}-pv`;
  t.removeAtTeardown(`persistentvolume/${pv}`);
  return pv;
}
