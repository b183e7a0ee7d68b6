/** The status page from the running compiled binary, in headless Chromium: an app becomes Synced after a push. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { writeConfig } from "../support/berth.ts";
import { berthBinary, startBerth } from "../support/binary.ts";
import { eventually, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";

const ARTIFACTS = join(import.meta.dir, "..", "..", "test-artifacts");
let cluster: TestCluster;
let git: GitFixture;
let run: ReturnType<typeof startBerth>;
let browser: Browser;
let base: string;
const ns = `page-e2e-${Math.random().toString(16).slice(2, 8)}`;
const TOKEN = "page-read-token";

beforeAll(async () => {
  berthBinary();
  cluster = await useCluster();
  git = await GitFixture.start();
  const url = git.createRepo("infra");
  git.commit("infra", { "base/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n` });
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  base = `http://127.0.0.1:${port}`;
  const config = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", interval: 1s}\napps:\n  - {name: base, path: base}\n  - {name: web, path: web, namespace: ${ns}, dependsOn: [base], allowEmpty: true}\nledger: {path: $DIR/ledger.db}\napi:\n  listen: 127.0.0.1:${port}\n  tokens: [{file: $DIR/token, scope: read}]\n`,
  );
  writeFileSync(join(dirname(config), "token"), TOKEN, { mode: 0o600 });
  run = startBerth(["run", "--config", config, "--kubeconfig", cluster.kubeconfigPath]);
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

afterAll(async () => {
  await browser?.close();
  run?.child.kill("SIGTERM");
  await run?.exited;
  await git?.close();
  try {
    kubectl(cluster, "delete", "namespace", ns, "--wait=false");
  } catch {}
});

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
  git.commit("infra", {
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
