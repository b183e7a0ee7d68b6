/** semver(): the Kubernetes CEL semver functions, precedence as semver 2.0.0 orders it, and bad input. */
import { describe, expect, test } from "bun:test";
import { CelEnvironment } from "../../agent/cel/cel.ts";

const env = new CelEnvironment({ dynamicVariables: true });
const run = (e: string) => env.compile(e).evaluate({});

describe("semver()", () => {
  test.each([
    ["semver('1.2.3').major()", 1n],
    ["semver('v1.2.3').patch()", 3n],
    ["semver('1.9.0').isLessThan(semver('1.10.0'))", true],
    ["semver('1.10.0').isGreaterThan(semver('1.9.9'))", true],
    ["semver('1.0.0-alpha').isLessThan(semver('1.0.0'))", true],
    ["semver('1.0.0-alpha.2').isLessThan(semver('1.0.0-alpha.10'))", true],
    ["semver('1.0.0-alpha.beta').isGreaterThan(semver('1.0.0-alpha.1'))", true],
    ["semver('1.0.0-rc.1').compareTo(semver('1.0.0-rc.1'))", 0n],
    ["semver('1.0.0+build.5').compareTo(semver('1.0.0'))", 0n],
    ["semver('2.0.0').compareTo(semver('1.99.99'))", 1n],
    ["isSemver('1.2')", false],
  ])("%s → %p", (expr, want) => {
    expect(run(expr)).toEqual(want);
  });

  test("a malformed version is an error naming it", () => {
    expect(() => run("semver('1.2')")).toThrow('semver("1.2"): not a semantic version');
  });
});
