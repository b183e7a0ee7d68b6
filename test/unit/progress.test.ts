/** The CLI's progress lines: a slow stage is never silent, a quick one prints nothing extra. */
import { describe, expect, test } from "bun:test";
import { Progress } from "../../agent/cli/progress.ts";

function reporter() {
  let t = 0;
  const lines: string[] = [];
  const p = new Progress((l) => lines.push(l), { quietMs: 3000, everyMs: 10_000, now: () => t });
  return { p, lines, at: (ms: number) => (t = ms) };
}

describe("progress lines", () => {
  test("a health wait says what it waits for after 3 s, then every 10 s, and stops when the app finishes", () => {
    const { p, lines, at } = reporter();
    p.onEvent({ type: "stage", app: "web", stage: "health" });
    p.onEvent({
      type: "waiting",
      app: "web",
      pending: [{ subject: "Deployment/ns/api", status: "InProgress", message: "0 of 1 replicas available" }],
    });
    at(2000);
    p.tick();
    expect(lines).toEqual([]);
    at(3000);
    p.tick();
    expect(lines).toEqual([
      "  ► web: waiting for 1 object to become ready (3s)\n      Deployment/ns/api: 0 of 1 replicas available\n",
    ]);
    at(12_000);
    p.tick();
    expect(lines.length).toBe(1);
    at(13_000);
    p.tick();
    expect(lines.length).toBe(2);
    expect(lines[1]).toContain("(13s)");
    p.onEvent({
      type: "finished",
      app: "web",
      entry: 1,
      outcome: "Succeeded",
      reason: "Succeeded",
      message: "",
    });
    at(60_000);
    p.tick();
    expect(lines.length).toBe(2);
  });

  test("any stage that hangs is named; a new stage restarts the clock", () => {
    const { p, lines, at } = reporter();
    p.onEvent({ type: "stage", app: "a", stage: "plan" });
    at(2500);
    p.onEvent({ type: "stage", app: "a", stage: "apply" });
    at(5000);
    p.tick();
    expect(lines).toEqual([]);
    at(5500);
    p.tick();
    expect(lines).toEqual(["  ► a: still applying (3s)\n"]);
    p.close();
  });

  test("writes are printed as they happen and count as progress", () => {
    const { p, lines, at } = reporter();
    p.onEvent({ type: "stage", app: "a", stage: "apply" });
    at(2900);
    p.onEvent({ type: "applied", app: "a", subject: "ConfigMap/ns/x", action: "created", ok: true });
    at(4000);
    p.tick();
    expect(lines).toEqual(["  applied created    ConfigMap/ns/x\n"]);
    at(12_900);
    p.tick();
    expect(lines[1]).toBe("  ► a: still applying (13s)\n");
    p.close();
  });
});
