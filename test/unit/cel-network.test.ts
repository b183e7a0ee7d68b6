/** url(), ip() and cidr(): the Kubernetes CEL network functions, good and bad inputs. */
import { describe, expect, test } from "bun:test";
import { CelEnvironment } from "../../agent/cel/cel.ts";

const env = new CelEnvironment({ dynamicVariables: true });
const run = (e: string) => env.compile(e).evaluate({});

describe("url(), ip(), cidr()", () => {
  test.each([
    ["url('https://example.com:8080/a/b?x=1&x=2').getQuery()['x']", ["1", "2"]],
    ["url('https://example.com:8080/a').getPort()", "8080"],
    ["url('https://example.com/a%20b').getEscapedPath()", "/a%20b"],
    ["url('https://example.com/a').getScheme() == 'https'", true],
    ["url('https://[::1]:80/').getHostname()", "::1"],
    ["isURL('not a url')", false],
    ["ip('10.0.0.1').family()", 4n],
    ["ip('2001:db8::1').family()", 6n],
    ["ip('::1').isLoopback()", true],
    ["ip('127.1.2.3').isLoopback()", true],
    ["ip('0.0.0.0').isUnspecified()", true],
    ["cidr('10.0.0.0/8').containsIP('10.2.3.4')", true],
    ["cidr('10.0.0.0/8').containsIP(ip('11.2.3.4'))", false],
    ["cidr('10.0.0.0/8').containsIP('::ffff')", false],
    ["cidr('2001:db8::/32').containsIP('2001:db8::1')", true],
    ["cidr('10.0.0.0/8').containsCIDR(cidr('10.1.0.0/16'))", true],
    ["cidr('10.1.0.0/16').containsCIDR(cidr('10.0.0.0/8'))", false],
    ["cidr('10.0.0.0/8').prefixLength()", 8n],
    ["string(cidr('10.0.0.0/8').ip())", "10.0.0.0"],
    ["isIP('1.2.3.256') || isIP('01.2.3.4') || isIP('1:2:3') || isIP('1::2::3')", false],
    ["isCIDR('1.2.3.4/33') || isCIDR('1.2.3.4') || isCIDR('::/129')", false],
  ] as const)("%s", (expr, want) => {
    expect(run(expr)).toEqual(want);
  });

  test("bad arguments are evaluation errors naming the value", () => {
    expect(() => run("ip('nope').family()")).toThrow(/ip\("nope"\): not an IP address/);
    expect(() => run("cidr('10.0.0.0').prefixLength()")).toThrow(/cidr\("10.0.0.0"\): not a CIDR/);
    expect(() => run("url('/relative').getHost()")).toThrow(/not an absolute URL/);
  });
});
