/**
 * Bad inputs: each gives a clear error naming its file or object, applies
 * nothing for the app, and is recorded in the ledger.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { syncApp, wireFor, writeConfig } from "../support/berth.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import type { TreeEntry } from "../support/git.ts";
import { rawDatabaseBytes } from "../support/ledger-fixtures.ts";

const t = useClusterTest({ prefix: "bad", createNamespace: true, git: { token: "the-right-token" } });
const ns = t.ns;

const marker = (name: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata: {ok: "yes"}\n`;

/** Pushes `files` (plus a valid marker ConfigMap) to a new repo and syncs it once. */
async function syncRepo(
  repo: string,
  files: Record<string, TreeEntry>,
  extra: { token?: string; url?: string } = {},
) {
  const url = t.git.createRepo(repo);
  t.git.commit(repo, { "app/marker.yaml": marker(`marker-${repo}`), ...files });
  const dir = writeConfig(
    `apiVersion: berth.dev/v1alpha1\nkind: Agent\nsource:\n  url: "${extra.url ?? url}"\n  timeout: 3s\n  auth: {tokenFile: $DIR/token}\napps:\n  - {name: app, path: app, namespace: ${ns}, timeout: 10s}\nledger: {path: $DIR/ledger.db}\n`,
  );
  await Bun.write(join(dir, "..", "token"), `${extra.token ?? "the-right-token"}\n`);
  const w = await wireFor(dir, t.cluster.kubeconfigPath);
  try {
    const result = await syncApp(w, "app");
    const entry = w.ledger.get(result.entry);
    // The open ledger's newest pages are still in -wal (and -shm): read all three.
    const ledgerBytes = rawDatabaseBytes(join(dir, "..", "ledger.db"));
    return { result, entry, ledgerBytes };
  } finally {
    w.close();
  }
}

function markerExists(repo: string): boolean {
  try {
    t.kubectl("get", "configmap", `marker-${repo}`, "-n", ns);
    return true;
  } catch {
    return false;
  }
}

describe("bad inputs apply nothing and are recorded", () => {
  test("malformed YAML → BuildFailed naming the file and line", async () => {
    const { result, entry } = await syncRepo("malformed", {
      "app/broken.yaml": "apiVersion: v1\nkind: [ConfigMap\n",
    });
    expect(result.reason).toBe("BuildFailed");
    expect(result.message).toContain("app/broken.yaml");
    expect(result.message).toMatch(/line \d+|:\d+:\d+/);
    expect(entry?.reason).toBe("BuildFailed");
    expect(markerExists("malformed")).toBe(false);
  }, 30_000);

  test("a duplicate object → PlanRejected naming both files", async () => {
    const { result, entry } = await syncRepo("dupe", { "app/again.yaml": marker("marker-dupe") });
    expect(result.reason).toBe("PlanRejected");
    expect(result.message).toContain(`ConfigMap/${ns}/marker-dupe`);
    expect(result.message).toContain("duplicate object");
    expect(result.message).toContain("app/again.yaml");
    expect(result.message).toContain("app/marker.yaml");
    expect(entry?.reason).toBe("PlanRejected");
    expect(markerExists("dupe")).toBe(false);
  }, 30_000);

  // Objects the plan refuses: [test name, repository, files, what the message must name].
  const refused: Array<[string, string, Record<string, string>, string[]]> = [
    [
      "an unknown kind → PlanRejected naming the object",
      "unknown",
      { "app/thing.yaml": "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\n" },
      ["Gadget/g (app/thing.yaml#0)", "not served by the API server"],
    ],
    [
      "a cluster-scoped object given a namespace → PlanRejected",
      "scoped",
      { "app/ns.yaml": `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: wrong\n  namespace: ${ns}\n` },
      ["cluster-scoped"],
    ],
    [
      "an object the API server rejects → PlanRejected before anything is written",
      "invalid",
      {
        "app/svc.yaml":
          "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports: [{port: 99999}]\n",
      },
      [`Service/${ns}/bad`, "99999"],
    ],
  ];
  for (const [name, repo, files, named] of refused) {
    test(name, async () => {
      const { result } = await syncRepo(repo, files);
      expect(result.reason).toBe("PlanRejected");
      for (const text of named) expect(result.message).toContain(text);
      expect(markerExists(repo)).toBe(false);
    }, 30_000);
  }

  test("a YAML alias bomb → BuildFailed, quickly", async () => {
    const bomb = [
      "apiVersion: v1",
      "kind: ConfigMap",
      "metadata: {name: bomb}",
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]",
      "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]",
      "g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]",
    ].join("\n");
    const t0 = Date.now();
    const { result } = await syncRepo("bomb", { "app/bomb.yaml": bomb });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(result.reason).toBe("BuildFailed");
    expect(result.message).toContain("app/bomb.yaml");
    expect(result.message.toLowerCase()).toContain("alias");
    expect(markerExists("bomb")).toBe(false);
  }, 30_000);

  test("a symlink that leaves the repository → BuildFailed naming the link", async () => {
    const { result } = await syncRepo("escape", { "app/passwd.yaml": { symlink: "../../../../etc/passwd" } });
    expect(result.reason).toBe("BuildFailed");
    expect(result.message).toContain("app/passwd.yaml");
    expect(result.message).toMatch(/outside|leaves|escape/i);
    expect(markerExists("escape")).toBe(false);
  }, 30_000);

  test("a wrong Git token → FetchFailed saying authentication failed, without the token", async () => {
    const { result, entry, ledgerBytes } = await syncRepo("private", {}, { token: "a-wrong-token-value" });
    expect(result.reason).toBe("FetchFailed");
    expect(result.message.toLowerCase()).toContain("authentication");
    expect(result.message).not.toContain("a-wrong-token-value");
    expect(entry?.reason).toBe("FetchFailed");
    expect(ledgerBytes.includes("a-wrong-token-value")).toBe(false);
    expect(markerExists("private")).toBe(false);
  }, 30_000);

  test("unreachable Git → FetchFailed saying it cannot reach the server", async () => {
    const { result, entry } = await syncRepo("down", {}, { url: "http://127.0.0.1:9/nothing.git" });
    expect(result.reason).toBe("FetchFailed");
    expect(result.message).toMatch(/cannot reach/i);
    expect(entry?.reason).toBe("FetchFailed");
  }, 60_000);
});
