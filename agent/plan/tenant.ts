/**
 * The tenant boundary berth checks itself, before any request: an app's `allowedNamespaces` and
 * `clusterScoped: false`. It needs no RBAC, so it holds even for apps that run as the agent; RBAC (the
 * app's `serviceAccountName`) is the second line, decided by the API server.
 */

/** An app's boundary settings (the config's AppConfig satisfies it). */
export interface TenantBounds {
  name: string;
  /** The only namespaces its namespaced objects may be in; absent: any. */
  allowedNamespaces?: readonly string[];
  /** False: no cluster-scoped objects at all; absent: allowed. */
  clusterScoped?: boolean;
}

/**
 * Why the app may not hold an object in `namespace` ("" for a cluster-scoped one), or undefined when it may.
 * The namespace is the final one, after the app's default namespace was filled in.
 */
export function outsideTenant(app: TenantBounds, namespace: string): string | undefined {
  if (namespace === "") {
    if (app.clusterScoped === false)
      return `is cluster-scoped, and app "${app.name}" sets clusterScoped: false (it may hold namespaced objects only)`;
    return undefined;
  }
  const allowed = app.allowedNamespaces;
  if (allowed && !allowed.includes(namespace))
    return `is in namespace "${namespace}", outside app "${app.name}"'s allowedNamespaces (${allowed.join(", ")})`;
  return undefined;
}
