/** The one wake-up bus of the engine: what the run loop sleeps on and the event stream waits on. */
import { describe, expect, test } from "bun:test";
import { Bus, EventBus, MAX_SUBSCRIBERS } from "../../agent/engine/events.ts";

/** Which of `p` and a `ms` timer settles first. */
const first = (p: Promise<void>, ms: number) =>
  Promise.race([p.then(() => "woken"), Bun.sleep(ms).then(() => "still waiting")]);

describe("Bus", () => {
  test("next() resolves at the next emit, not before", async () => {
    const bus = new Bus<number>();
    const waiting = bus.next(60_000);
    expect(await first(waiting, 20)).toBe("still waiting");
    bus.emit(1);
    expect(await first(waiting, 20)).toBe("woken");
  });

  test("next() resolves after its timeout, or at once when the signal aborts (or has aborted)", async () => {
    const bus = new Bus<void>();
    expect(await first(bus.next(10), 200)).toBe("woken");
    const stop = new AbortController();
    const waiting = bus.next(60_000, stop.signal);
    expect(await first(waiting, 20)).toBe("still waiting");
    stop.abort();
    expect(await first(waiting, 20)).toBe("woken");
    expect(await first(bus.next(60_000, stop.signal), 20)).toBe("woken");
  });

  test("listeners get every value; a throwing one breaks neither the emitter nor the others", () => {
    const bus = new Bus<string>();
    const got: string[] = [];
    bus.subscribe(() => {
      throw new Error("closed stream");
    });
    const off = bus.subscribe((v) => got.push(v));
    bus.emit("a");
    off?.();
    bus.emit("b");
    expect(got).toEqual(["a"]);
    expect(bus.size).toBe(1);
  });

  test("the engine's bus refuses listeners past MAX_SUBSCRIBERS and stamps each event", () => {
    const bus = new EventBus();
    const seen: Array<{ seq: number; at: string }> = [];
    for (let i = 0; i < MAX_SUBSCRIBERS; i++) expect(bus.subscribe((p) => seen.push(p))).toBeDefined();
    expect(bus.subscribe(() => {})).toBeUndefined();
    bus.emit({ type: "stage", app: "web", stage: "apply" });
    bus.emit({ type: "stage", app: "web", stage: "wait" });
    expect(seen.length).toBe(2 * MAX_SUBSCRIBERS);
    expect(seen.at(-1)?.seq).toBe(2);
    expect(Number.isNaN(Date.parse(seen.at(-1)?.at ?? ""))).toBe(false);
  });
});
