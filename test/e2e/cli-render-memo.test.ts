/**
 * The render memo (agent/ledger/README.md, "Render memo") through the compiled binary: a second `berth sync` of
 * an unchanged app takes its desired objects from the ledger instead of rendering (the debug line says so),
 * with the same outcome, message (skipped documents included) and no write; a changed varsFrom file, a changed
 * render setting, a new commit, a manifest missing from the ledger and a Secret the ledger cannot decrypt
 * each render again.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Ledger } from "../../agent/ledger/ledger.ts";
import { writeConfig } from "../support/berth.ts";
import { runBerth } from "../support/binary.ts";
import { auditEvents, quietSince, writesIn } from "../support/cluster.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { namespaceYaml, secretYaml } from "../support/manifests.ts";

const t = useClusterTest({ prefix: "memo", binary: true });
const ns = t.ns;
const KEY = "4d3e".repeat(16);
const REUSED = "render reused from the ledger";
let config: string;
let dir: string;

/** The ConfigMap has no namespace (the app's is given it) and reads two variables. */
const cm =
  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {greeting: '${GREETING}', who: '${WHO}'}\n";

function writeApp(extra = "", key = true): void {
  const ledger = `ledger: {path: "${join(dir, "ledger.db")}"${key ? `, secretKeyFile: "${join(dir, "ledger.key")}"` : ""}}`;
  writeFileSync(
    config,
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource: {url: "${t.url}"}\napps:\n  - {name: memo, path: app, namespace: ${ns}, timeout: 60s, varsFrom: [{file: "${join(dir, "vars.env")}"}]${extra}}\n${ledger}\n`,
  );
}

async function sync(): Promise<{ code: number | null; stdout: string; stderr: string; reused: boolean }> {
  const r = await runBerth(["sync", "--debug", "--config", config], t.env());
  return { ...r, reused: r.stderr.includes(REUSED) };
}

/** The entry line of `berth sync`'s output, without the revision, entry id and timings. */
const outcome = (stdout: string) => /✓ memo \S+: (.*?) {2}\[entry/.exec(stdout)?.[1] ?? stdout;

beforeAll(() => {
  t.commit({
    "app/ns.yaml": namespaceYaml(ns),
    "app/settings.yaml": cm,
    "app/secret.yaml": secretYaml("creds", { password: "memo-plaintext" }),
    "app/notes.yaml": "just: notes\n",
  });
  config = writeConfig("");
  dir = dirname(config);
  writeFileSync(join(dir, "ledger.key"), `${KEY}\n`);
  writeFileSync(join(dir, "vars.env"), "GREETING=hello\nWHO=world\n");
  writeApp();
});

describe("berth sync of an unchanged app", () => {
  let first = "";

  test("the second sync takes the render from the ledger: same outcome and message, no write", async () => {
    const one = await sync();
    expect(one.code).toBe(0);
    expect(one.reused).toBe(false);
    first = outcome(one.stdout);
    expect(first).toContain("3 created");
    expect(first).toContain("skipped 1 document(s) that are not Kubernetes objects: app/notes.yaml");

    const since = await quietSince();
    const two = await sync();
    expect(two.code).toBe(0);
    expect(two.reused).toBe(true);
    expect(outcome(two.stdout)).toBe(
      first.replace("3 created, 0 configured, 0 unchanged", "0 created, 0 configured, 3 unchanged"),
    );
    expect(writesIn(auditEvents(t.cluster, since, "berth", ns))).toEqual([]);
    // The ledger recorded the same render digest for both.
    const ledger = await Ledger.open(join(dir, "ledger.db"), { secretKey: Buffer.from(KEY, "hex") });
    try {
      const [b, a] = ledger.list({ app: "memo", limit: 2 });
      expect(a && b && ledger.get(b.id)?.renderedDigest).toBe(a ? ledger.get(a.id)?.renderedDigest : "x");
    } finally {
      ledger.close();
    }
  }, 180_000);

  test("a changed varsFrom file renders again (and the next sync reuses that render)", async () => {
    writeFileSync(join(dir, "vars.env"), "GREETING=hi\nWHO=world\n");
    const r = await sync();
    expect(r.code).toBe(0);
    expect(r.reused).toBe(false);
    expect(r.stdout).toContain("1 configured");
    expect(t.inNs("get", "configmap", "settings", "-o", "jsonpath={.data.greeting}")).toBe("hi");
    expect((await sync()).reused).toBe(true);
  }, 180_000);

  test("a setting that is not a render input keeps the memo; a render setting renders again", async () => {
    writeApp(", force: false");
    expect((await sync()).reused).toBe(true);
    writeApp(", vars: {WHO: berth}");
    const r = await sync();
    expect(r.reused).toBe(false);
    expect(r.stdout).toContain("1 configured");
    expect(t.inNs("get", "configmap", "settings", "-o", "jsonpath={.data.who}")).toBe("berth");
    expect((await sync()).reused).toBe(true);
  }, 180_000);

  test("a new commit renders again, even one touching nothing the app reads", async () => {
    t.commit({ "elsewhere/readme.md": "unrelated\n" });
    const r = await sync();
    expect(r.code).toBe(0);
    expect(r.reused).toBe(false);
    expect((await sync()).reused).toBe(true);
  }, 180_000);

  test("a manifest missing from the ledger renders again (and stores it again)", async () => {
    const path = join(dir, "ledger.db");
    const ledger = await Ledger.open(path, { secretKey: Buffer.from(KEY, "hex") });
    const last = ledger.list({ app: "memo", limit: 1 })[0];
    const digest = ledger.get(last?.id ?? 0)?.objects.find((o) => o.ref.kind === "ConfigMap")?.digest ?? "";
    expect(digest).toMatch(/^sha256:/);
    ledger.close();
    const { Database } = await import("bun:sqlite");
    const db = new Database(path);
    db.run("DELETE FROM blobs WHERE digest = ?", [digest]);
    db.close();
    const r = await sync();
    expect(r.code).toBe(0);
    expect(r.reused).toBe(false);
    const again = await Ledger.open(path, { secretKey: Buffer.from(KEY, "hex") });
    expect(again.blobInfo(digest)?.encoding).toBe("plain");
    again.close();
    expect((await sync()).reused).toBe(true);
  }, 180_000);

  test("a Secret the ledger cannot decrypt (no key) renders again; nothing is read back in plaintext", async () => {
    writeApp(", vars: {WHO: berth}", false);
    const r = await sync();
    expect(r.code).toBe(0);
    expect(r.reused).toBe(false);
    expect(r.stdout + r.stderr).not.toContain("memo-plaintext");
    expect(readFileSync(join(dir, "ledger.db")).includes("memo-plaintext")).toBe(false);
  }, 180_000);
});
