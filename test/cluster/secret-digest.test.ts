/**
 * A Secret synced without a ledger key, against the real control plane: the ledger file and its export hold no
 * SHA-256 of the value (hex or base64), the ledger verifies, a changed value in Git is applied and recorded as a
 * change, and a kubectl edit of the value is still found as drift (reported, not "healed" with digests).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { type DriftWiring, type Wired, wireDrift } from "../../agent/cli/wire.ts";
import type { DriftReport } from "../../agent/drift/drift.ts";
import { silentLogger } from "../../agent/engine/log.ts";
import { digestKeyPathOf } from "../../agent/ledger/secrets.ts";
import { syncApp, wireFor, writeConfig } from "../support/berth.ts";
import { eventually, kubectl, type TestCluster, useCluster } from "../support/cluster.ts";
import { GitFixture } from "../support/git.ts";
import { rawDatabaseBytes } from "../support/ledger-fixtures.ts";

let cluster: TestCluster;
let git: GitFixture;
let w: Wired;
let drift: DriftWiring;
let ledgerPath: string;
const reports: DriftReport[] = [];
const id = Math.random().toString(16).slice(2, 8);
const ns = `secret-digest-${id}`;
const app = `secret-digest-${id}`;
const PASSWORD = `hunter2-${id}`;
const ROTATED = `hunter3-${id}`;

const files = (password: string) => ({
  [`${ns}/ns.yaml`]: `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`,
  [`${ns}/secret.yaml`]: `apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n  password: ${Buffer.from(password).toString("base64")}\n`,
});
/** Every form of a value a guesser could compare against: plaintext, base64, SHA-256 in hex and base64. */
const guessable = (value: string) => {
  const b64 = Buffer.from(value).toString("base64");
  return [value, b64, ...[value, b64].flatMap((v) => [sha256(v, "hex"), sha256(v, "base64")])];
};
const sha256 = (v: string, enc: "hex" | "base64") => createHash("sha256").update(v).digest(enc);
const expectNothingGuessable = (file: string, value: string) => {
  const raw = rawDatabaseBytes(file);
  expect(raw.includes(ns)).toBe(true); // the scan sees ordinary content
  for (const leak of guessable(value))
    expect({ leak, found: raw.includes(leak) }).toEqual({ leak, found: false });
};

beforeAll(async () => {
  cluster = await useCluster();
  git = await GitFixture.start();
  const url = git.createRepo("infra");
  git.commit("infra", files(PASSWORD), { message: "secret" });
  const config = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${url}", ref: main, interval: 1h}\napps:\n  - {name: ${app}, path: ${ns}, namespace: ${ns}, timeout: 60s, drift: heal}\nledger: {path: $DIR/ledger.db}\n`,
  );
  ledgerPath = join(dirname(config), "ledger.db");
  w = await wireFor(config, cluster.kubeconfigPath);
  drift = wireDrift(w, silentLogger, (r) => reports.push(r));
}, 600_000);

afterAll(async () => {
  await drift?.close();
  w?.close();
  await git?.close();
  try {
    kubectl(cluster, "delete", "namespace", ns, "--wait=false");
  } catch {}
});

test("no guessable digest in the ledger or its export; a changed value is a change; an edit is drift", async () => {
  const first = await syncApp(w, app);
  expect(first.outcome).toBe("Succeeded");
  const secretRecord = () =>
    w.ledger.get(w.ledger.list({ app, limit: 1 })[0]?.id ?? 0)?.objects.find((o) => o.ref.kind === "Secret");
  const before = secretRecord();
  expect(before?.action).toBe("created");
  expect(statSync(digestKeyPathOf(ledgerPath)).mode & 0o777).toBe(0o600);
  expectNothingGuessable(ledgerPath, PASSWORD);
  const exported = join(dirname(ledgerPath), "export.db");
  await w.ledger.backup(exported);
  expectNothingGuessable(exported, PASSWORD);
  expect(existsSync(digestKeyPathOf(exported))).toBe(false);
  expect(w.ledger.verify().ok).toBe(true);

  // Unchanged: unchanged. Changed in Git: configured, with another digest, and applied.
  expect((await syncApp(w, app)).plan?.summary).toMatchObject({ unchanged: 2 });
  git.commit("infra", files(ROTATED), { message: "rotate" });
  const rotated = await syncApp(w, app);
  expect(rotated.outcome).toBe("Succeeded");
  const after = secretRecord();
  expect(after?.action).toBe("configured");
  expect(after?.digest).not.toBe(before?.digest);
  const live = JSON.parse(kubectl(cluster, "get", "secret", "db", "-n", ns, "-o", "json"));
  expect(Buffer.from(live.data.password, "base64").toString()).toBe(ROTATED);
  expectNothingGuessable(ledgerPath, ROTATED);
  expect(w.ledger.verify().ok).toBe(true);
  expect(readFileSync(digestKeyPathOf(ledgerPath), "utf8")).toMatch(/^[0-9a-f]{64}\n$/);

  // Drift on the value: found and recorded; the redacted manifest is never applied in its place.
  kubectl(
    cluster,
    "patch",
    "secret",
    "db",
    "-n",
    ns,
    "-p",
    `{"data":{"password":"${Buffer.from("edited").toString("base64")}"}}`,
  );
  const r = await eventually("a drift report for the Secret", 15_000, async () =>
    reports.find((x) => x.subject === `Secret/${ns}/db`),
  );
  expect(r).toMatchObject({ action: "heal-failed", fields: ["/data/password"] });
  expect(r.message).toContain("redacted");
  const edited = JSON.parse(kubectl(cluster, "get", "secret", "db", "-n", ns, "-o", "json"));
  expect(Buffer.from(edited.data.password, "base64").toString()).toBe("edited");
}, 120_000);
