/** Orders apps so every app comes after the apps it depends on, and finds dependency cycles. */

/** The minimum an app needs for ordering. */
export interface DependencyNode {
  name: string;
  dependsOn: readonly string[];
}

/** The first dependency cycle as names (`["a", "b", "a"]`), or undefined. Unknown names are ignored. */
export function findCycle(apps: readonly DependencyNode[]): string[] | undefined {
  const byName = new Map(apps.map((app) => [app.name, app]));
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (name: string): string[] | undefined => {
    const mark = state.get(name);
    if (mark === "done") return undefined;
    if (mark === "visiting") return [...stack.slice(stack.indexOf(name)), name];
    state.set(name, "visiting");
    stack.push(name);
    for (const dep of byName.get(name)?.dependsOn ?? []) {
      if (!byName.has(dep)) continue;
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(name, "done");
    return undefined;
  };
  for (const app of apps) {
    const cycle = visit(app.name);
    if (cycle) return cycle;
  }
  return undefined;
}

/** Apps in an order where dependencies come first; ties keep file order. Throws on a cycle. */
export function dependencyOrder<T extends DependencyNode>(apps: readonly T[]): T[] {
  const cycle = findCycle(apps);
  if (cycle) throw new Error(`dependency cycle: ${cycle.join(" → ")}`);
  const byName = new Map(apps.map((app) => [app.name, app]));
  const out: T[] = [];
  const placed = new Set<string>();
  const place = (app: T): void => {
    if (placed.has(app.name)) return;
    placed.add(app.name);
    for (const dep of app.dependsOn) {
      const target = byName.get(dep);
      if (target) place(target);
    }
    out.push(app);
  };
  for (const app of apps) place(app);
  return out;
}

/** Every app `app` depends on, directly or through others, dependencies first. Unknown names are ignored. */
export function dependenciesOf<T extends DependencyNode>(app: T, apps: readonly T[]): T[] {
  const byName = new Map(apps.map((a) => [a.name, a]));
  const out: T[] = [];
  const seen = new Set([app.name]);
  const visit = (node: T): void => {
    for (const name of node.dependsOn) {
      const dep = byName.get(name);
      if (!dep || seen.has(name)) continue;
      seen.add(name);
      visit(dep);
      out.push(dep);
    }
  };
  visit(app);
  return out;
}
