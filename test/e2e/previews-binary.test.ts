/**
 * The compiled binary previews pull-request heads in `berth run`: a PR opened after the first sync shows up in
 * GET /api/v1/previews with what merging it would change, while the cluster receives no write from berth.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";
import type { RefPreview } from "../../agent/engine/ports.ts";
import { writeBeside } from "../support/berth.ts";
import { apiAddress, getJson, untilReady } from "../support/binary.ts";
import { auditEvents, eventually, quietSince, writesIn } from "../support/cluster.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { git as runGit } from "../support/git.ts";
import { configMapYaml, namespaceYaml } from "../support/manifests.ts";

const t = useClusterTest({ prefix: "previews-e2e", binary: true });
const ns = t.ns;
let base: string;
const ARTIFACTS = join(import.meta.dir, "..", "..", "test-artifacts");
const TOKEN = "e2e-read-token";
const cm = (greeting: string) => configMapYaml("settings", greeting);

const get = <T>(path: string) => getJson<T>(base, path, TOKEN);

beforeAll(async () => {
  t.commit({ "app/ns.yaml": namespaceYaml(ns), "app/settings.yaml": cm("one") });
  const api = await apiAddress();
  base = api.base;
  // Syncs once an hour: after the first one, nothing else of berth's may write.
  const config = t.writeConfig([{ name: "app", path: "app", namespace: ns, timeout: "30s" }], {
    source: "interval: 1h",
    extra: `api:\n  listen: 127.0.0.1:${api.port}\n  tokens: [{file: $DIR/read-token, scope: read}]\npreviews: {refs: ["refs/pull/*/head"], apps: [app], interval: 1s}\n`,
  });
  writeBeside(config, { "read-token": `${TOKEN}\n` });
  t.startRun(config);
  await untilReady(base, "the first sync", 60_000);
}, 600_000);

describe("berth run previews pull requests", () => {
  test("a PR's head is previewed and served; berth writes nothing to the cluster meanwhile", async () => {
    expect((await get<{ enabled: boolean }>("/api/v1/previews")).body.enabled).toBe(true);
    const since = await quietSince();
    runGit(join(t.git.dir, "work", "infra"), "checkout", "--quiet", "-b", "change");
    const head = t.git.commit(
      "infra",
      { "app/settings.yaml": cm("two") },
      { branch: "change", message: "say two" },
    );
    t.git.moveRef("infra", "refs/pull/1/head", head);
    const preview = await eventually("the PR previewed", 30_000, async () => {
      const r = await get<RefPreview>("/api/v1/previews/refs/pull/1/head");
      return r.status === 200 && r.body.sha === head ? r.body : undefined;
    });
    expect(preview.pr).toBe(1);
    expect(preview.commit?.message).toContain("say two");
    expect(preview.apps).toEqual([
      expect.objectContaining({
        app: "app",
        outcome: "changes",
        summary: "1 changed",
        objects: [
          {
            subject: `ConfigMap/${ns}/settings`,
            action: "configured",
            source: "app/settings.yaml#0",
            diff: ["/data/greeting", "/metadata/annotations/berth.dev~1applied-digest"],
          },
          expect.objectContaining({ subject: `Namespace/${ns}`, action: "unchanged" }),
        ],
      }),
    ]);
    await quietSince(1500); // the audit log is written in batches
    const berth = auditEvents(t.cluster, since, "berth", ns);
    expect(berth.some((e) => /[?&]dryRun=All/.test(e.requestURI))).toBe(true);
    expect(writesIn(berth)).toEqual([]);
    expect(t.kubectl("get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.greeting}")).toBe(
      "one",
    );
  }, 60_000);

  test("the status page shows the preview in its own section", async () => {
    const browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1000, height: 800 } });
      await page.goto(base);
      await page.fill("#tok", TOKEN);
      await page.click("form.token button");
      const app = '.preview[data-ref="refs/pull/1/head"] .preview-app[data-app="app"]';
      await page.waitForSelector(app, { timeout: 20_000 });
      expect(await page.textContent("h2.previews")).toBe("Previews of unmerged changes");
      expect(await page.textContent(`${app} .summary`)).toBe("1 changed");
      expect(await page.textContent(`${app} .badge`)).toBe("changes");
      expect(await page.textContent(`${app} .objs`)).toContain(`ConfigMap/${ns}/settings`);
      expect(await page.textContent('.preview[data-ref="refs/pull/1/head"] .name')).toBe(
        "#1 refs/pull/1/head",
      );
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "status-page-previews.png"), fullPage: true });
    } finally {
      await browser.close();
    }
  }, 60_000);
});
