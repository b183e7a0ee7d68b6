/**
 * What an app's dependencies (its `dependsOn`, transitively) will create before it is applied: the kinds their
 * CustomResourceDefinitions define and the Namespaces they hold. `berth plan` plans every app before any is
 * applied, so objects that need these are shown as "will be validated after <app>" rather than as errors.
 */
import type { KubeObject } from "../object/object.ts";

/** Kinds and namespaces that dependency apps create, each with the app that creates it. */
export interface FromDependencies {
  /** Keyed `group/version/kind`. */
  kinds: ReadonlyMap<string, { namespaced: boolean; app: string }>;
  /** Namespace name → app. */
  namespaces: ReadonlyMap<string, string>;
}

/** Kinds the CRDs in a set define, keyed `group/version/kind`. */
export function kindsDefinedByCrds(objects: readonly KubeObject[]): Map<string, { namespaced: boolean }> {
  const out = new Map<string, { namespaced: boolean }>();
  for (const o of objects) {
    if (o.kind !== "CustomResourceDefinition" || !o.apiVersion.startsWith("apiextensions.k8s.io/")) continue;
    const spec = o.spec as
      | { group?: string; scope?: string; names?: { kind?: string }; versions?: Array<{ name?: string }> }
      | undefined;
    if (!spec?.group || !spec.names?.kind) continue;
    for (const v of spec.versions ?? []) {
      if (v.name)
        out.set(`${spec.group}/${v.name}/${spec.names.kind}`, { namespaced: spec.scope !== "Cluster" });
    }
  }
  return out;
}

/** What the given dependency apps create, in dependency order (the first app to create a thing names it). */
export function fromDependencies(
  apps: ReadonlyArray<{ app: string; objects: readonly KubeObject[] }>,
): FromDependencies {
  const kinds = new Map<string, { namespaced: boolean; app: string }>();
  const namespaces = new Map<string, string>();
  for (const { app, objects } of apps) {
    for (const [key, info] of kindsDefinedByCrds(objects))
      if (!kinds.has(key)) kinds.set(key, { ...info, app });
    for (const o of objects) {
      if (o.kind === "Namespace" && o.apiVersion === "v1" && !namespaces.has(o.metadata.name))
        namespaces.set(o.metadata.name, app);
    }
  }
  return { kinds, namespaces };
}
