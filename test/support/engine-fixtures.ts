/** What the engine's unit tests sync: an app's settings, a commit snapshot with no files, ConfigMaps. */
import type { AppSpec } from "../../agent/engine/ports.ts";
import type { KubeObject } from "../../agent/object/object.ts";
import type { Snapshot } from "../../agent/object/snapshot.ts";

/** An app named and namespaced `name`, pruning, 300 s timeout, no dependencies. */
export function appSpec(name: string, extra: Partial<AppSpec> = {}): AppSpec {
  return {
    name,
    path: name,
    namespace: name,
    prune: true,
    allowEmpty: false,
    force: false,
    timeout: 300,
    dependsOn: [],
    suspend: false,
    ...extra,
  };
}

/** A snapshot of commit `c`×40 on main; the render is faked, so it has no files. */
export function commitSnapshot(c: string): Snapshot {
  const sha = c.repeat(40);
  return {
    revision: `main@sha1:${sha}`,
    commit: { sha, author: "T <t@example.test>", message: "m", time: "2026-11-01T00:00:00Z" },
    readDir: async () => [],
    readBlob: async () => new Uint8Array(),
    stat: async () => undefined,
  };
}

/** A ConfigMap `namespace/name` holding `v`. */
export function configMap(namespace: string, name: string, v = name): KubeObject {
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace }, data: { v } };
}
