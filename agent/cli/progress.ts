/**
 * Progress lines of `berth sync`, `run` and `replay` on standard error: every write as it happens, and,
 * while a stage of an app takes longer than a few seconds, what it is waiting for — first after
 * `quietMs`, then every `everyMs` (5 s) — so a slow sync is never silent, with or without a terminal.
 */
import type { EngineEvent } from "../engine/ports.ts";

interface Busy {
  stage: string;
  since: number;
  lastSaid: number;
  pending?: Extract<EngineEvent, { type: "waiting" }>["pending"];
}

export interface ProgressOptions {
  /** Silence before the first "still …" line of a stage, ms. */
  quietMs?: number;
  /** Interval between further lines while the stage lasts, ms. */
  everyMs?: number;
  now?: () => number;
}

const STAGE_WORDS: Record<string, string> = {
  fetch: "fetching from Git",
  render: "rendering",
  plan: "planning (server-side dry-run)",
  apply: "applying",
  prune: "pruning",
  health: "waiting for health",
};

/** Objects named per progress line group; the rest are counted. */
const SHOWN = 5;

/** A reporter: feed it engine events; `tick()` (called by its own unref'd timer) says what is slow. */
export class Progress {
  private readonly busy = new Map<string, Busy>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly quietMs: number;
  private readonly everyMs: number;
  private readonly now: () => number;

  constructor(
    private readonly write: (line: string) => void,
    options: ProgressOptions = {},
  ) {
    this.quietMs = options.quietMs ?? 3000;
    this.everyMs = options.everyMs ?? 5000;
    this.now = options.now ?? Date.now;
  }

  readonly onEvent = (e: EngineEvent): void => {
    if (e.type === "applied") {
      this.write(
        `  ${e.ok ? "applied" : "FAILED "} ${e.action.padEnd(10)} ${e.subject}${e.error ? `: ${e.error}` : ""}\n`,
      );
      const b = this.busy.get(e.app);
      if (b) b.lastSaid = this.now();
    } else if (e.type === "stage") {
      const t = this.now();
      this.busy.set(e.app, { stage: e.stage, since: t, lastSaid: t });
      this.timer ??= unref(setInterval(() => this.tick(), 1000));
    } else if (e.type === "waiting") {
      const b = this.busy.get(e.app);
      if (b) b.pending = e.pending;
    } else if (e.type === "finished") {
      this.busy.delete(e.app);
      if (this.busy.size === 0) this.close();
    }
  };

  /** Prints a line for every stage that has been quiet too long. */
  tick(): void {
    const t = this.now();
    for (const [app, b] of this.busy) {
      const quiet = t - b.lastSaid;
      const first = b.lastSaid === b.since;
      if (quiet < (first ? this.quietMs : this.everyMs)) continue;
      b.lastSaid = t;
      const secs = Math.round((t - b.since) / 1000);
      const what = STAGE_WORDS[b.stage] ?? b.stage;
      const pending = b.stage === "health" ? (b.pending ?? []) : [];
      if (pending.length === 0) {
        this.write(`  ► ${app}: still ${what} (${secs}s)\n`);
        continue;
      }
      // One line per object in plain words ("Deployment/shop/web: 2 of 3 replicas ready"), a few at most.
      const shown = pending.slice(0, SHOWN);
      const lines = [
        `  ► ${app}: waiting for ${pending.length} object${pending.length === 1 ? "" : "s"} to become ready (${secs}s)`,
        ...shown.map((p) => `      ${p.subject}: ${p.message || p.status}`),
        ...(pending.length > SHOWN ? [`      … and ${pending.length - SHOWN} more`] : []),
      ];
      this.write(`${lines.join("\n")}\n`);
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

function unref<T>(timer: T): T {
  (timer as { unref?: () => void }).unref?.();
  return timer;
}
