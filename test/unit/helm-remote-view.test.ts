/** The remote chart an entry applied, as the ledger records it and GET /api/v1/apps shows it. */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv } from "ajv";
import { appView } from "../../agent/api/app-view.ts";
import { API_SCHEMAS } from "../../agent/api/schemas.ts";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { chartOfMessage } from "../../agent/object/records.ts";

const dir = mkdtempSync(join(tmpdir(), "berth-chartview-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const digest = `sha256:${"ab".repeat(32)}`;

describe("the chart of an entry", () => {
  test("chartOfMessage reads what the engine appends, and nothing else", () => {
    expect(chartOfMessage(`1 configured; chart demo 1.1.0 ${digest}`)).toBe(`chart demo 1.1.0 ${digest}`);
    expect(
      chartOfMessage(`replay of entry 3: 1 configured; chart demo 1.0.0 ${digest}; not restored: x`),
    ).toBe(`chart demo 1.0.0 ${digest}`);
    expect(chartOfMessage("1 configured")).toBeUndefined();
    expect(chartOfMessage("chart demo 1.0.0 sha256:short")).toBeUndefined();
  });

  test("the app view names the chart of the last successful sync next to its Git revision", async () => {
    const ledger = await Ledger.open(join(dir, "ledger.db"));
    try {
      const ok = ledger.begin({ app: "demo", revision: "main@sha1:abc", trigger: "manual" });
      ledger.finish(ok, {
        outcome: "Succeeded",
        reason: "Succeeded",
        message: `1 created; chart demo 1.0.0 ${digest}`,
        objects: [],
        timings: {},
      });
      const bad = ledger.begin({ app: "demo", revision: "main@sha1:abc", trigger: "manual" });
      ledger.finish(bad, {
        outcome: "Failed",
        reason: "BuildFailed",
        message: "helm repository https://c.example: chart demo 1.1.0 was republished with different content",
        objects: [],
        timings: {},
      });
      const git = { seenRevision: "main@sha1:abc", gitUnreachableSince: undefined, gitError: undefined };
      const view = appView({ name: "demo", path: "apps/demo", dependsOn: [] }, undefined, git, ledger, false);
      expect(view.revision).toEqual({
        applied: "main@sha1:abc",
        seen: "main@sha1:abc",
        chart: `chart demo 1.0.0 ${digest}`,
      });
      expect(view.lastError?.message).toContain("republished");
      const validate = new Ajv({ strict: true, allowUnionTypes: true, validateFormats: false }).compile(
        API_SCHEMAS.App,
      );
      expect(validate(view)).toBe(true);
    } finally {
      ledger.close();
    }
  });
});
