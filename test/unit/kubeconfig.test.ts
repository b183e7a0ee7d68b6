/**
 * kubeconfig resolution (agent/kube/kubeconfig.ts) agrees with @kubernetes/client-node's on the forms it
 * handles itself, and leaves exec credentials to client-node (loaded then): requests carry what each says.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import type { Agent as HttpsAgent } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { agentOf, KubeClient, TLS_AGENT_TTL_MS } from "../../agent/kube/client.ts";
import { authorizationOf, loadKubeAccess, tlsOf } from "../../agent/kube/kubeconfig.ts";

const dir = mkdtempSync(join(tmpdir(), "berth-kubeconfig-"));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const b64 = (s: string) => Buffer.from(s).toString("base64");

const main = file(
  "main",
  `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://a.example:6443/", certificate-authority: certs/ca.pem, tls-server-name: api.a}
- name: b
  cluster: {server: "https://b.example", certificate-authority-data: ${b64("CA-B")}, insecure-skip-tls-verify: true}
users:
- name: certs
  user: {client-certificate: certs/c.pem, client-key-data: ${b64("KEY")}}
- name: token
  user: {token: tok-1, as: someone}
- name: basic
  user: {username: u, password: p}
contexts:
- {name: ca, context: {cluster: a, user: certs}}
- {name: cb, context: {cluster: b, user: token}}
- {name: basic, context: {cluster: b, user: basic}}
current-context: ca
`,
);
writeFileSync(join(dir, "token-file"), "tok-from-file\n");
const second = file(
  "second",
  `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "https://c.example"}}]\nusers: [{name: tf, user: {token-file: ${join(dir, "token-file")}}}]\ncontexts: [{name: cc, context: {cluster: c, user: tf}}]\n`,
);

describe("loadKubeAccess", () => {
  test("agrees with client-node on server, CA, certificates and relative paths", () => {
    const kc = new KubeConfig();
    kc.loadFromFile(main);
    const access = loadKubeAccess({ kubeconfig: main });
    expect(access.server).toBe(kc.getCurrentCluster()?.server ?? "");
    expect(access.caFile).toBe(kc.getCurrentCluster()?.caFile ?? "");
    expect(access.caFile).toBe(join(dir, "certs", "ca.pem"));
    expect(access.tlsServerName).toBe("api.a");
    expect(access.certFile).toBe(kc.getCurrentUser()?.certFile ?? "");
    expect(access.keyData).toBe(b64("KEY"));
    expect(access.delegated).toBeUndefined();
  });

  test("a named context; a token, `as`, skip-verify, inline CA; basic auth", () => {
    const cb = loadKubeAccess({ kubeconfig: main, context: "cb" });
    expect(cb.server).toBe("https://b.example");
    expect(cb.skipTLSVerify).toBe(true);
    expect(tlsOf(cb).ca?.toString()).toBe("CA-B");
    expect(authorizationOf(cb)).toBe("Bearer tok-1");
    expect(cb.impersonateUser).toBe("someone");
    expect(authorizationOf(loadKubeAccess({ kubeconfig: main, context: "basic" }))).toBe(
      `Basic ${b64("u:p")}`,
    );
  });

  test("KUBECONFIG files merge, a later current-context wins, a token file is read", () => {
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = `${main}:${second}`;
    try {
      expect(loadKubeAccess().server).toBe("https://a.example:6443");
      const withContext = file("third", "apiVersion: v1\nkind: Config\ncurrent-context: cc\n");
      process.env.KUBECONFIG = `${main}:${second}:${withContext}`;
      const cc = loadKubeAccess();
      expect(cc.server).toBe("https://c.example");
      expect(authorizationOf(cc)).toBe("Bearer tok-from-file");
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
    }
  });

  test("an unknown context, a context without cluster and a cluster without server are errors", () => {
    expect(() => loadKubeAccess({ kubeconfig: main, context: "nope" })).toThrow('context "nope" not found');
    const dangling = file(
      "dangling",
      "apiVersion: v1\nkind: Config\ncontexts: [{name: x, context: {cluster: gone, user: u}}]\ncurrent-context: x\n",
    );
    expect(() => loadKubeAccess({ kubeconfig: dangling })).toThrow("no current cluster");
    const noServer = file("no-server", "apiVersion: v1\nkind: Config\nclusters: [{name: a, cluster: {}}]\n");
    expect(() => loadKubeAccess({ kubeconfig: noServer })).toThrow("clusters[0].cluster.server is missing");
    expect(() => KubeClient.connect({ kubeconfig: join(dir, "absent") })).toThrow("cannot load kubeconfig");
  });
});

describe("TLS agents", () => {
  test("one per access, its certificate files read again once TLS_AGENT_TTL_MS passed (a rotated file)", () => {
    mkdirSync(join(dir, "certs"), { recursive: true });
    writeFileSync(join(dir, "certs", "ca.pem"), "CA-1");
    writeFileSync(join(dir, "certs", "c.pem"), "CERT-1");
    const access = loadKubeAccess({ kubeconfig: main });
    const t0 = 1_000_000;
    const first = agentOf(access, t0) as HttpsAgent;
    expect(String(first.options.cert)).toBe("CERT-1");
    expect(String(first.options.key)).toBe("KEY");
    expect(first.options.servername).toBe("api.a");
    writeFileSync(join(dir, "certs", "c.pem"), "CERT-2");
    expect(agentOf(access, t0 + TLS_AGENT_TTL_MS - 1)).toBe(first);
    const later = agentOf(access, t0 + TLS_AGENT_TTL_MS) as HttpsAgent;
    expect(later).not.toBe(first);
    expect(String(later.options.cert)).toBe("CERT-2");
    // Another access (another kubeconfig context) has its own.
    expect(agentOf(loadKubeAccess({ kubeconfig: main, context: "cb" }), t0)).not.toBe(later);
  });
});

describe("requests", () => {
  let server: ReturnType<typeof Bun.serve>;
  const seen: Array<Record<string, string | null>> = [];
  beforeAll(() => {
    server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req) {
        seen.push({
          authorization: req.headers.get("authorization"),
          impersonate: req.headers.get("impersonate-user"),
        });
        return Response.json({ kind: "APIVersions", versions: ["v1"] });
      },
    });
  });
  afterAll(() => server.stop(true));

  test("a token user's request carries its bearer token and `as`", async () => {
    const kubeconfig = file(
      "plain",
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:${server.port}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {token: plain-token, as: ops}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
    );
    seen.length = 0;
    await KubeClient.connect({ kubeconfig }).request("get", "GET", "/api");
    expect(seen).toEqual([{ authorization: "Bearer plain-token", impersonate: "ops" }]);
  });

  test("an exec credential plugin is run through client-node, loaded for it", async () => {
    const plugin = file(
      "plugin.sh",
      `#!/bin/sh\necho '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"exec-token"}}'\n`,
    );
    chmodSync(plugin, 0o755);
    const kubeconfig = file(
      "exec",
      `apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: "http://127.0.0.1:${server.port}", insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: ${plugin}, interactiveMode: Never}}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n`,
    );
    expect(loadKubeAccess({ kubeconfig }).delegated).toBeDefined();
    seen.length = 0;
    await KubeClient.connect({ kubeconfig }).request("get", "GET", "/api");
    expect(seen).toEqual([{ authorization: "Bearer exec-token", impersonate: null }]);
  });
});
