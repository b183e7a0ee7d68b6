/**
 * `berth diff [APP...]`: per object, the live object against what a sync would make of it (the server-side
 * dry-run), as a unified diff of YAML — like `kubectl diff`. berth's bookkeeping (`berth.dev/…` labels and
 * annotations) and fields the server manages are left out; Secret values are redacted. Exit 0 no differences,
 * 1 differences (as kubectl diff), 2 an input error or a plan that could not be made.
 */
import { stringify } from "yaml";
import { silentLogger } from "../../engine/log.ts";
import type { KubeObject } from "../../object/object.ts";
import type { PlannedChange } from "../../plan/plan.ts";
import { type Ctx, EXIT, type Io, namedApps } from "../common.ts";
import { paint } from "../format.ts";
import { unifiedDiff } from "../unified-diff.ts";
import { type GlobalFlags, wire } from "../wire.ts";
import { planApps } from "./plan.ts";

export async function diffCommand(flags: GlobalFlags, ctx: Ctx, io: Io): Promise<number> {
  const names = namedApps(flags.config, ctx);
  const w = await wire(flags, silentLogger);
  try {
    const { plans, failed } = await planApps(w, names, io, true);
    let differs = false;
    for (const p of plans) {
      for (const e of p.errors)
        io.err(`✗ ${p.app}: ${e.subject}${e.source ? ` (${e.source})` : ""}: ${e.message}\n`);
      for (const c of p.changes) {
        const text = changeDiff(c);
        if (!text) continue;
        differs = true;
        io.out(io.color ? colour(text) : text);
      }
    }
    if (failed) return EXIT.usage;
    return differs ? EXIT.failed : EXIT.ok;
  } finally {
    w.close();
  }
}

/** One object's unified diff, or "" when a sync would not change it. */
export function changeDiff(c: PlannedChange): string {
  if (c.action === "unchanged" || c.action === "skipped") return "";
  const name = `${c.ref.group || "core"}.${c.ref.version}.${c.ref.kind}.${c.ref.namespace ? `${c.ref.namespace}.` : ""}${c.ref.name}`;
  const before = c.live ? show(c.live) : "";
  const after = c.action === "deleted" ? "" : show(c.merged ?? c.desired);
  const secret = c.ref.kind === "Secret" && c.ref.group === "";
  const [b, a] = secret ? redactSecrets(before, after, c.live, c.merged ?? c.desired) : [before, after];
  return unifiedDiff(b, a, `live/${name}`, `desired/${name}`);
}

/** Fields the server sets on every write, and berth's own labels and annotations. */
function clean(obj: KubeObject | undefined): Record<string, unknown> | undefined {
  if (!obj) return undefined;
  const { status: _s, ...rest } = obj as KubeObject & { status?: unknown };
  const meta = { ...rest.metadata } as Record<string, unknown>;
  for (const k of ["managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"])
    delete meta[k];
  for (const k of ["labels", "annotations"]) {
    const m = meta[k] as Record<string, string> | undefined;
    if (!m) continue;
    const kept = Object.fromEntries(Object.entries(m).filter(([key]) => !key.startsWith("berth.dev/")));
    if (Object.keys(kept).length > 0) meta[k] = kept;
    else delete meta[k];
  }
  return { ...rest, metadata: meta };
}

function show(obj: KubeObject | undefined): string {
  const c = clean(obj);
  return c ? stringify(c, { sortMapEntries: true }) : "";
}

/** Secret values as kubectl diff shows them: "***" and "*** (before)" where a value changed. */
function redactSecrets(
  before: string,
  after: string,
  live: KubeObject | undefined,
  desired: KubeObject | undefined,
): [string, string] {
  const data = (o: KubeObject | undefined) => ({
    ...((o as { data?: Record<string, string> } | undefined)?.data ?? {}),
    ...((o as { stringData?: Record<string, string> } | undefined)?.stringData ?? {}),
  });
  const l = data(live);
  const d = data(desired);
  const mask = (o: KubeObject | undefined, side: "before" | "after") => {
    const c = clean(o);
    if (!c) return "";
    for (const field of ["data", "stringData"]) {
      const m = c[field] as Record<string, string> | undefined;
      if (!m) continue;
      c[field] = Object.fromEntries(
        Object.keys(m).map((k) => [
          k,
          l[k] === d[k] ? "***" : side === "before" ? "*** (before)" : "*** (after)",
        ]),
      );
    }
    return stringify(c, { sortMapEntries: true });
  };
  return [before && mask(live, "before"), after && mask(desired, "after")];
}

function colour(text: string): string {
  return text
    .split("\n")
    .map((l) =>
      l.startsWith("+++") || l.startsWith("---")
        ? l
        : l.startsWith("+")
          ? paint(l, "green", true)
          : l.startsWith("-")
            ? paint(l, "red", true)
            : l.startsWith("@@")
              ? paint(l, "cyan", true)
              : l,
    )
    .join("\n");
}
