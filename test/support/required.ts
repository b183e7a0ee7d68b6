/**
 * A test whose prerequisite (a runtime, a system tool, root) is missing skips on a developer's machine but fails
 * under CI: `.ci/run` sets BERTH_REQUIRE_ALL=1, because a skip there would hide that the claim went unchecked.
 */
export function skipWithout(present: boolean, what: string): boolean {
  if (present) return false;
  if (process.env.BERTH_REQUIRE_ALL === "1")
    throw new Error(
      `${what} is missing, and CI runs every test (BERTH_REQUIRE_ALL=1): install it rather than skip`,
    );
  return true;
}
