/**
 * The in-memory view of the live objects berth owns, kept current by watches scoped by berth's labels. With
 * `shared`, apps on the view's own client share one KindWatch per kind, selecting the objects of the apps it
 * names and sorting them by their app label; otherwise (and always for an app with a client of its own, whose
 * ServiceAccount may list no more than its namespace) each app has its own KindWatch per kind. A watch is a
 * request that stays open, a connection and a buffer each: 100 apps of 3 kinds were 300 of them. Objects are
 * kept stripped (no last-applied annotation, other managers' fieldsV1 dropped), so memory grows with what
 * berth owns, not with what the cluster holds. The plan reads it instead of GETting each object; drift
 * detection is fed every change with the object before and after.
 */
import { createHash } from "node:crypto";
import {
  APP_LABEL,
  FIELD_MANAGER,
  type KubeObject,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  type ObjectRef,
  objectId,
  refOf,
} from "../object/object.ts";
import type { KubeClient, ResourceInfo } from "./client.ts";
import { KindWatch, type WatchUpdate } from "./watch.ts";

/** One change the view saw: `before` is the stripped object it held, `after` the full new object. */
export interface ViewChange {
  app: string;
  ref: ObjectRef;
  before?: KubeObject;
  after?: KubeObject;
  /** True when the change was found by a relist (after a reconnect) rather than a watch event. */
  relisted: boolean;
}

/** The app onState names for a watch shared by every app on the view's client. */
export const SHARED_WATCH = "*";

/** How the view is set up. */
export interface LiveViewOptions {
  /**
   * The client an app's watches use (its ServiceAccount impersonated); absent: the view's client. An
   * impersonating client watches namespaced kinds per namespace, as a namespace Role allows no wider list.
   */
  clientFor?: (app: string) => KubeClient;
  /** The app's default namespace, for rendered refs of namespaced kinds that name none yet. */
  defaultNamespace?: (app: string) => string | undefined;
  /**
   * The apps that may share watches (`berth run`: every app it runs; those on the view's own client do): one
   * watch per kind selects them by name, as all their objects are wanted anyway. By name, so objects of apps
   * this agent does not run (another agent's on the same cluster, a removed app's) are neither listed nor held.
   * An app that is not named yet when it first tracks a kind (a generated one) restarts that kind's watch once.
   * Absent, each app lists only its own (a one-shot `berth sync` of one app among many).
   */
  shared?: () => Iterable<string>;
  onChange?: (change: ViewChange) => void;
  /** A watch connected or was lost; `app` is SHARED_WATCH for a shared one. */
  onState?: (app: string, kind: string, connected: boolean, error?: string) => void;
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Watches one app may have (default MAX_WATCHES_PER_APP). */
  maxWatchesPerApp?: number;
  /**
   * An app needs more watches than it may have: `wanted` in all, `limit` kept. Called when the number it needs
   * changes; its objects past the limit are read from the server by each sync instead.
   */
  onWatchLimit?: (app: string, wanted: number, limit: number) => void;
}

/**
 * The most watches one app may have. Each is a connection the agent keeps open, with its buffers, and the app
 * chooses how many: an app with a ServiceAccount of its own needs one per kind and namespace, so one that spreads
 * a few kinds over hundreds of namespaces would hold hundreds. Past the limit its other objects are not watched:
 * its syncs read them from the server (a GET and a dry-run each) and find their drift then, not as it happens.
 */
export const MAX_WATCHES_PER_APP = 100;

interface KindEntry {
  watch: KindWatch;
  /** The objects by app (an app's own watch holds one app's), then by object id. */
  objects: Map<string, Map<string, KubeObject>>;
  /** The app each held object is under, by object id: a relabel is found without asking every app. */
  owner: Map<string, string>;
  /** Apps that tracked this watch: changes are reported for them only. */
  apps: Set<string>;
  /** A shared watch's apps, as its label selector names them. */
  selected?: ReadonlySet<string>;
}

const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/** Live objects per app and kind, kept current by watches. */
export class LiveView {
  private readonly kinds = new Map<string, KindEntry>();
  /** The watches each app tracked, by key. */
  private readonly tracked = new Map<string, Set<string>>();
  /** Stops of watches replaced by one with another selector. */
  private readonly retiring = new Set<Promise<void>>();
  /** The watches each app over its limit last wanted, so the limit is reported once per change. */
  private readonly overLimit = new Map<string, number>();

  constructor(
    private readonly client: KubeClient,
    private readonly options: LiveViewOptions = {},
  ) {}

  /** Watches every kind of `refs` for `app` (idempotent); resolves when each has listed once. */
  async track(app: string, refs: ReadonlyArray<ObjectRef>): Promise<void> {
    await this.client.discover();
    const client = this.clientOf(app);
    const shared = this.sharesWatches(client);
    const waits: Promise<void>[] = [];
    const perNamespace = this.perNamespace(client);
    const fallback = this.options.defaultNamespace?.(app) ?? "";
    let keys = this.tracked.get(app);
    if (!keys) {
      keys = new Set();
      this.tracked.set(app, keys);
    }
    const limit = this.options.maxWatchesPerApp ?? MAX_WATCHES_PER_APP;
    const needed = this.kindsOf(refs, perNamespace, fallback).map((k) => ({
      ...k,
      key: kindKey(shared ? SHARED_WATCH : app, k.info, k.namespace),
    }));
    // Kinds and namespaces the app no longer has objects in are let go: each held a connection, and a place under
    // the limit. `refs` is everything the app has or will have (its inventory and its render).
    const neededKeys = new Set(needed.map((k) => k.key));
    for (const key of keys) if (!neededKeys.has(key)) this.release(app, key, keys);
    const wanted = neededKeys.size;
    if (wanted > limit && this.overLimit.get(app) !== wanted) this.options.onWatchLimit?.(app, wanted, limit);
    if (wanted > limit) this.overLimit.set(app, wanted);
    else this.overLimit.delete(app);
    for (const { info, namespace, key } of needed) {
      // Past its limit an app's new kinds go unwatched: lookup() answers "ask the server" for them.
      if (!keys.has(key) && keys.size >= limit) continue;
      let entry = this.kinds.get(key);
      // A watch the server forbade has ended; try again now (RBAC may have changed since).
      if (!entry || entry.watch.forbidden) {
        const fresh = { objects: new Map(), owner: new Map(), apps: entry?.apps ?? new Set<string>() };
        entry = this.startWatch(key, client, info, namespace, app, shared, fresh);
      } else if (entry.selected && !entry.selected.has(app)) {
        // Its selector does not name this app: watch again with one that does. The objects held stay, so the
        // relist reports only what changed (this app's objects, new to the view).
        const old = entry.watch.stop();
        this.retiring.add(old);
        void old.finally(() => this.retiring.delete(old));
        entry = this.startWatch(key, client, info, namespace, app, shared, entry);
      }
      entry.apps.add(app);
      keys.add(key);
      waits.push(entry.watch.synced);
    }
    await Promise.all(waits);
  }

  /** Drops `app` from the watch `key`; a watch no app tracks any more is stopped. */
  private release(app: string, key: string, keys: Set<string>): void {
    keys.delete(key);
    const entry = this.kinds.get(key);
    if (!entry) return;
    entry.apps.delete(app);
    if (entry.apps.size > 0) return;
    this.kinds.delete(key);
    const old = entry.watch.stop();
    this.retiring.add(old);
    void old.finally(() => this.retiring.delete(old));
  }

  /** The live object if its kind is watched and connected; undefined means "not known here, ask the server". */
  lookup(app: string, ref: ObjectRef): KubeObject | undefined {
    const info = this.client.resource(ref.group, ref.version, ref.kind);
    if (!info) return undefined;
    const client = this.clientOf(app);
    const namespace = info.namespaced && this.perNamespace(client) ? ref.namespace : "";
    const key = kindKey(this.sharesWatches(client) ? SHARED_WATCH : app, info, namespace);
    // Only a kind the app tracked: a shared watch another app started answers for this app once it tracks it.
    if (!this.tracked.get(app)?.has(key)) return undefined;
    const entry = this.kinds.get(key);
    if (!entry?.watch.connected) return undefined;
    return entry.objects.get(app)?.get(objectId(ref));
  }

  /** Every object the view holds for an app. */
  objectsOf(app: string): KubeObject[] {
    const out: KubeObject[] = [];
    for (const key of this.tracked.get(app) ?? []) {
      const objects = this.kinds.get(key)?.objects.get(app);
      if (objects) out.push(...objects.values());
    }
    return out;
  }

  /** Whether every watch of the app is connected (false when it tracks nothing). */
  connected(app: string): boolean {
    let any = false;
    for (const key of this.tracked.get(app) ?? []) {
      any = true;
      if (!this.kinds.get(key)?.watch.connected) return false;
    }
    return any;
  }

  /** How many objects the view holds. */
  get size(): number {
    let n = 0;
    for (const entry of this.kinds.values()) for (const objects of entry.objects.values()) n += objects.size;
    return n;
  }

  /** How many watches the view runs. */
  get watches(): number {
    return this.kinds.size;
  }

  /** Stops every watch. */
  async close(): Promise<void> {
    await Promise.all([...this.kinds.values()].map((e) => e.watch.stop()));
    await Promise.all(this.retiring);
    this.kinds.clear();
    this.tracked.clear();
  }

  private clientOf(app: string): KubeClient {
    return this.options.clientFor?.(app) ?? this.client;
  }

  /** Whether an app on `client` uses the shared watches: sharing is on and it is the view's own client. */
  private sharesWatches(client: KubeClient): boolean {
    return this.options.shared !== undefined && client === this.client;
  }

  /** Starts `entry`'s (new) watch of a kind: the app's own, or the shared one naming every app that shares. */
  private startWatch(
    key: string,
    client: KubeClient,
    info: ResourceInfo,
    namespace: string,
    app: string,
    shared: boolean,
    base: Omit<KindEntry, "watch" | "selected">,
  ): KindEntry {
    let selected: Set<string> | undefined;
    if (shared) {
      selected = new Set([app]);
      for (const name of this.options.shared?.() ?? []) {
        if (this.sharesWatches(this.clientOf(name))) selected.add(name);
      }
    }
    const apps = selected ? `${APP_LABEL} in (${[...selected].sort().join(",")})` : `${APP_LABEL}=${app}`;
    const watch: KindWatch = new KindWatch(client, {
      info,
      ...(namespace ? { namespace } : {}),
      labelSelector: `${apps},${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`,
      // A replaced watch's last updates are not the entry's any more.
      onUpdate: (u) => {
        if (entry.watch === watch) this.apply(entry, u);
      },
      onState: (connected, error) =>
        this.options.onState?.(shared ? SHARED_WATCH : app, info.kind, connected, error),
      ...(this.options.backoffMs ? { backoffMs: this.options.backoffMs } : {}),
      ...(this.options.maxBackoffMs ? { maxBackoffMs: this.options.maxBackoffMs } : {}),
    });
    const entry: KindEntry = Object.assign(base, { watch }, selected ? { selected } : {});
    this.kinds.set(key, entry);
    watch.start();
    return entry;
  }

  private perNamespace(client: KubeClient): boolean {
    return client.impersonate !== undefined;
  }

  /** The watches refs need: one per kind, or per kind and namespace for namespaced kinds when perNamespace. */
  private kindsOf(
    refs: ReadonlyArray<ObjectRef>,
    perNamespace: boolean,
    fallback: string,
  ): Array<{ info: ResourceInfo; namespace: string }> {
    const out = new Map<string, { info: ResourceInfo; namespace: string }>();
    for (const ref of refs) {
      const info = this.client.resource(ref.group, ref.version, ref.kind);
      if (!info?.verbs.includes("watch")) continue;
      const namespace = perNamespace && info.namespaced ? ref.namespace || fallback : "";
      // No namespace at all: the plan refuses the object, so there is nothing to watch.
      if (perNamespace && info.namespaced && !namespace) continue;
      out.set(`${info.group}/${info.kind}/${namespace}`, { info, namespace });
    }
    return [...out.values()];
  }

  /**
   * Applies one watch update to a watch's objects and reports what changed, per app (the object's app label).
   * A relabelled object leaves the app it was under. Changes are reported for apps that tracked the watch only.
   */
  private apply(entry: KindEntry, u: WatchUpdate): void {
    const report = (
      app: string,
      ref: ObjectRef,
      before: KubeObject | undefined,
      after: KubeObject | undefined,
      relisted: boolean,
    ) => {
      if (!entry.apps.has(app)) return;
      this.options.onChange?.({
        app,
        ref,
        relisted,
        ...(before ? { before } : {}),
        ...(after ? { after } : {}),
      });
    };
    const objectsOf = (app: string) => {
      let objects = entry.objects.get(app);
      if (!objects) {
        objects = new Map();
        entry.objects.set(app, objects);
      }
      return objects;
    };
    if (u.type === "relist") {
      const seen = new Map<string, Set<string>>();
      for (const obj of u.objects) {
        const app = appOf(obj);
        if (app === undefined) continue;
        const ref = refOf(obj);
        const id = objectId(ref);
        let ids = seen.get(app);
        if (!ids) {
          ids = new Set();
          seen.set(app, ids);
        }
        ids.add(id);
        const objects = objectsOf(app);
        const before = objects.get(id);
        objects.set(id, strip(obj));
        if (before?.metadata.resourceVersion !== obj.metadata.resourceVersion)
          report(app, ref, before, obj, true);
      }
      entry.owner.clear();
      for (const [app, objects] of entry.objects) {
        const ids = seen.get(app);
        for (const [id, before] of objects) {
          if (ids?.has(id)) {
            entry.owner.set(id, app);
            continue;
          }
          objects.delete(id);
          report(app, refOf(before), before, undefined, true);
        }
        if (objects.size === 0) entry.objects.delete(app);
      }
      return;
    }
    const app = appOf(u.object);
    if (app === undefined) return;
    const ref = refOf(u.object);
    const id = objectId(ref);
    // Relabelled to another app (or deleted under its old label): gone from the app it was under.
    const was = entry.owner.get(id);
    if (was !== undefined && was !== app) {
      const previous = entry.objects.get(was);
      const before = previous?.get(id);
      previous?.delete(id);
      if (before) report(was, ref, before, undefined, false);
    }
    const objects = objectsOf(app);
    const before = objects.get(id);
    if (u.type === "DELETED") {
      objects.delete(id);
      entry.owner.delete(id);
      report(app, ref, before, undefined, false);
      return;
    }
    objects.set(id, strip(u.object));
    entry.owner.set(id, app);
    report(app, ref, before, u.object, false);
  }
}

/** The app an object is labelled with (the watches select only labelled objects). */
function appOf(obj: KubeObject): string | undefined {
  return obj.metadata.labels?.[APP_LABEL];
}

/**
 * A copy without what neither the plan nor drift detection needs: other managers' field sets, last-applied.
 * berth's own field set (drift detection reads it) is shared between objects that own the same fields.
 */
export function strip(obj: KubeObject): KubeObject {
  const copy = { ...obj, metadata: { ...obj.metadata } };
  if (copy.metadata.annotations?.[LAST_APPLIED]) {
    const { [LAST_APPLIED]: _drop, ...rest } = copy.metadata.annotations;
    copy.metadata.annotations = rest;
  }
  if (copy.metadata.managedFields) {
    copy.metadata.managedFields = copy.metadata.managedFields.map((m) => {
      if (m.manager === FIELD_MANAGER && m.operation === "Apply")
        return "fieldsV1" in m ? { ...m, fieldsV1: sharedFieldSet(m.fieldsV1) } : m;
      const { fieldsV1: _f, ...rest } = m as typeof m & { fieldsV1?: unknown };
      return rest;
    });
  }
  return copy;
}

/**
 * berth's field sets by content. Objects rendered from one template own the same fields (every ConfigMap of
 * an app with the same keys, every Deployment of one shape), and the set is a tree of small objects, often the
 * largest part of a stripped object: the view keeps one per distinct set. Entries are weak, so a set no held
 * object uses any more goes; readers (drift detection, health rules) never modify an object of the view.
 */
const fieldSets = new Map<string, WeakRef<object>>();
const forgetFieldSet = new FinalizationRegistry<string>((key) => {
  if (fieldSets.get(key)?.deref() === undefined) fieldSets.delete(key);
});

/** The held field set equal to `fields` (by its JSON), else `fields`, kept for the next equal one. */
export function sharedFieldSet(fields: unknown): unknown {
  if (fields === null || typeof fields !== "object") return fields;
  // A digest as the key: holding the JSON itself would cost as much as the set it saves.
  const json = JSON.stringify(fields);
  const key = createHash("sha1").update(json).digest("base64");
  const known = fieldSets.get(key)?.deref();
  if (known !== undefined && JSON.stringify(known) === json) return known;
  fieldSets.set(key, new WeakRef(fields));
  forgetFieldSet.register(fields, key);
  return fields;
}

function kindKey(app: string, info: ResourceInfo, namespace: string): string {
  return `${app}\u0000${info.group}/${info.kind}\u0000${namespace}`;
}
