/**
 * Which sources answer, for SourceUnreachable / SourceRecovered: every Git or OCI source of berth.yaml (as the
 * sync loop last polled it) and every chart repository or registry an app's `helm:` pulls from (as the last
 * render that fetched from it found it). The notifier keeps each outage's state in the ledger file.
 */
import type { SourceView } from "../engine/loop.ts";
import type { SourceRef } from "../notify/event.ts";

/** One source's reachability as the notifier is fed it. */
export type SourceState = SourceRef & { unreachableSince?: string | undefined; error?: string | undefined };

/** Chart repositories' reachability, reported by the render port at each remote chart fetch. */
export class ChartSources {
  private readonly states = new Map<string, SourceState>();

  /** A fetch from `source` answered (`error` undefined) or found it unreachable. */
  report(source: { name: string; url: string }, error: string | undefined): void {
    const was = this.states.get(source.name);
    this.states.set(source.name, {
      name: source.name,
      kind: "chart",
      url: source.url,
      ...(error === undefined
        ? {}
        : { unreachableSince: was?.unreachableSince ?? new Date().toISOString(), error }),
    });
  }

  list(): SourceState[] {
    return [...this.states.values()];
  }
}

/** The chart sources of this process (the render port reports to it; `berth run` watches it). */
export const chartSources = new ChartSources();

/**
 * The configured sources' states from the loop's view. A source not polled yet is left out: right after a
 * restart it is neither reachable nor not, and an outage recorded before the restart must not "recover".
 */
export function configuredSourceStates(
  sources: Record<string, { kind?: string; url?: string; oci?: string }>,
  view: { sourceView(name: string): SourceView | undefined },
): SourceState[] {
  const out: SourceState[] = [];
  for (const [name, config] of Object.entries(sources)) {
    const v = view.sourceView(name);
    if (!v || (v.gitUnreachableSince === undefined && v.seenRevision === undefined)) continue;
    out.push({
      name,
      kind: config.kind === "oci" ? "oci" : "git",
      url: config.url ?? config.oci ?? "",
      unreachableSince: v.gitUnreachableSince,
      error: v.gitError,
    });
  }
  return out;
}
