/** skipWithout(): skips on a developer's machine, fails under CI's BERTH_REQUIRE_ALL=1. */
import { afterEach, expect, test } from "bun:test";
import { skipWithout } from "../support/required.ts";

const saved = process.env.BERTH_REQUIRE_ALL;
afterEach(() => {
  if (saved === undefined) delete process.env.BERTH_REQUIRE_ALL;
  else process.env.BERTH_REQUIRE_ALL = saved;
});

test("a present prerequisite never skips", () => {
  process.env.BERTH_REQUIRE_ALL = "1";
  expect(skipWithout(true, "deno")).toBe(false);
});

test("a missing prerequisite skips outside CI", () => {
  delete process.env.BERTH_REQUIRE_ALL;
  expect(skipWithout(false, "deno")).toBe(true);
});

test("a missing prerequisite fails under CI, naming it", () => {
  process.env.BERTH_REQUIRE_ALL = "1";
  expect(() => skipWithout(false, "systemd-analyze")).toThrow("systemd-analyze is missing");
});
