/** The status page from the running compiled binary, in headless Chromium: an app becomes Synced after a push. */
import { beforeAll, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { writeBeside } from "../support/berth.ts";
import { apiAddress } from "../support/binary.ts";
import { eventually } from "../support/cluster.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { namespaceYaml } from "../support/manifests.ts";

const ARTIFACTS = join(import.meta.dir, "..", "..", "test-artifacts");
const t = useClusterTest({ prefix: "page-e2e", binary: true });
const ns = t.ns;
let browser: Browser;
let base: string;
const TOKEN = "page-read-token";

beforeAll(async () => {
  t.commit({ "base/ns.yaml": namespaceYaml(ns) });
  const api = await apiAddress();
  base = api.base;
  const config = t.writeConfig(
    [
      { name: "base", path: "base" },
      { name: "web", path: "web", namespace: ns, dependsOn: ["base"], allowEmpty: "true" },
    ],
    {
      source: "interval: 1s",
      extra: `api:\n  listen: 127.0.0.1:${api.port}\n  tokens: [{file: $DIR/token, scope: read}]\n`,
    },
  );
  writeBeside(config, { token: TOKEN });
  t.startRun(config);
  t.onTeardown(() => browser?.close());
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}, 600_000);

test("the status page asks for a token, then shows an app become Synced after a push, live", async () => {
  await eventually("the agent listening", 30_000, async () =>
    (await fetch(`${base}/healthz`).catch(() => undefined))?.ok ? true : undefined,
  );
  const page = await browser.newPage({ viewport: { width: 420, height: 900 }, deviceScaleFactor: 2 });
  await page.goto(base);
  await page.fill("#tok", TOKEN);
  await page.click("form.token button");
  await page.waitForSelector('.app[data-app="base"][data-sync="Synced"]', { timeout: 20_000 });
  await page.waitForSelector("#dot.on", { timeout: 10_000 });
  t.commit({
    "web/settings.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  greeting: hello\n`,
    "web/more.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: more\ndata:\n  x: "1"\n`,
  });
  // No reload: the page follows the event stream.
  // Strings: they run in the page, whose DOM types this (non-DOM) tsconfig does not know.
  await page.waitForFunction(
    `document.querySelector('.app[data-app="web"]')?.getAttribute("data-sync") === "Synced" &&
     document.querySelector('.app[data-app="web"] .objs') !== null`,
    undefined,
    { timeout: 20_000 },
  );
  await page.evaluate('for (const d of document.querySelectorAll("details")) d.open = true');
  expect(await page.textContent('.app[data-app="web"] .badge.sync')).toBe("Synced");
  expect(await page.textContent('.app[data-app="web"] .objs')).toContain(`ConfigMap/${ns}/settings`);
  mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, "status-page-phone.png"), fullPage: true });
  await page.setViewportSize({ width: 1100, height: 800 });
  await page.screenshot({ path: join(ARTIFACTS, "status-page-desktop.png"), fullPage: true });
}, 90_000);
