/**
 * The compiled binary embeds what berth imports lazily as chunks of their own (scripts/build.sh, --splitting),
 * read only when first imported. Each must still load there: client-node's KubeConfig, for a kubeconfig whose
 * user is an exec credential plugin, and age, for a SOPS-encrypted Secret. Both through the binary's
 * `berth sync`, checked in the cluster.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { newAgeIdentity } from "../../agent/render/sops.ts";
import { runBerth } from "../support/binary.ts";
import { useClusterTest } from "../support/cluster-test.ts";
import { configMapYaml, secretYaml } from "../support/manifests.ts";
import { toolPaths } from "../support/tools.ts";

const t = useClusterTest({ prefix: "chunks", binary: true, createNamespace: true });
const dir = mkdtempSync(join(tmpdir(), "berth-chunks-"));
const ran = join(dir, "plugin-ran");
let config: string;
let kubeconfig: string;

/** A copy of the admin kubeconfig whose user is an exec plugin handing out the admin's client certificate. */
function execKubeconfig(admin: string): string {
  const field = (name: string) => {
    const value = new RegExp(`${name}: (\\S+)`).exec(admin)?.[1];
    if (!value) throw new Error(`the admin kubeconfig has no ${name}`);
    return value;
  };
  const pem = (name: string) => Buffer.from(field(name), "base64").toString("utf8");
  const credential = JSON.stringify({
    apiVersion: "client.authentication.k8s.io/v1",
    kind: "ExecCredential",
    status: { clientCertificateData: pem("client-certificate-data"), clientKeyData: pem("client-key-data") },
  });
  writeFileSync(join(dir, "credential.json"), credential);
  const plugin = join(dir, "plugin.sh");
  writeFileSync(plugin, `#!/bin/sh\ntouch ${ran}\ncat ${join(dir, "credential.json")}\n`);
  chmodSync(plugin, 0o755);
  const path = join(dir, "exec.kubeconfig");
  writeFileSync(
    path,
    [
      "apiVersion: v1",
      "kind: Config",
      `clusters: [{name: c, cluster: {server: "${field("server")}", certificate-authority-data: ${field("certificate-authority-data")}}}]`,
      `users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: ${plugin}, interactiveMode: Never}}}]`,
      "contexts: [{name: x, context: {cluster: c, user: u}}]",
      "current-context: x",
      "",
    ].join("\n"),
  );
  return path;
}

beforeAll(async () => {
  const { sops } = await toolPaths();
  const key = await newAgeIdentity();
  const keyFile = join(dir, "age.key");
  writeFileSync(keyFile, `${key.identity}\n`, { mode: 0o600 });
  writeFileSync(join(dir, "secret.yaml"), secretYaml("creds", { password: "chunk-plaintext" }));
  const encrypted = execFileSync(sops, ["--encrypt", "--age", key.recipient, join(dir, "secret.yaml")], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "", HOME: dir },
  });
  expect(encrypted).not.toContain("chunk-plaintext");
  t.commit({ "app/settings.yaml": configMapYaml("settings", "hello"), "app/secret.yaml": encrypted });
  config = t.writeConfig([{ name: "app", path: "app", namespace: t.ns }], {
    extra: `render: {ageKeyFile: ${keyFile}}\n`,
  });
  kubeconfig = execKubeconfig(readFileSync(t.cluster.kubeconfigPath, "utf8"));
}, 600_000);

describe("the compiled binary's lazily loaded chunks", () => {
  test("an exec credential plugin (client-node) and a SOPS Secret (age) both work in berth sync", async () => {
    const r = await runBerth(["sync", "--config", config], { KUBECONFIG: kubeconfig });
    expect(r.stderr).not.toContain("chunk-plaintext");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("2 created");
    expect(existsSync(ran)).toBe(true);
    expect(t.inNs("get", "configmap", "settings", "-o", "jsonpath={.data.greeting}")).toBe("hello");
    const password = t.inNs("get", "secret", "creds", "-o", "jsonpath={.data.password}");
    expect(Buffer.from(password, "base64").toString("utf8")).toBe("chunk-plaintext");
  }, 180_000);
});
