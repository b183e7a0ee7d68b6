/** SOPS files encrypted by the real sops binary for an age key, decrypted in-process by render. */
import { beforeAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderApp } from "../../agent/render/app.ts";
import { FsSnapshot } from "../../agent/render/fs-snapshot.ts";
import { newAgeIdentity } from "../../agent/render/sops.ts";
import { toolPaths } from "../support/tools.ts";

let tools: { kustomize: string; helm: string; sops: string };
let key: { identity: string; recipient: string };

const SECRET = `apiVersion: v1
kind: Secret
metadata:
  name: db
  labels: { tier: backend }
type: Opaque
stringData:
  password: s3cr3t-value
  port: "5432"
data:
  token: dG9rZW4tdmFsdWU=
`;

/** `sops --encrypt` of `text` for the recipient, as a team would commit it. */
function sopsEncrypt(
  sops: string,
  recipient: string,
  text: string,
  name = "secret.yaml",
  extra: string[] = [],
): string {
  const dir = mkdtempSync(join(tmpdir(), "berth-sops-"));
  writeFileSync(join(dir, name), text);
  return execFileSync(sops, ["--encrypt", "--age", recipient, ...extra, join(dir, name)], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "", HOME: dir },
  });
}

beforeAll(async () => {
  tools = await toolPaths();
  key = await newAgeIdentity();
}, 600_000);

function repoWith(files: Record<string, string>): FsSnapshot {
  const dir = mkdtempSync(join(tmpdir(), "berth-sopsrepo-"));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return new FsSnapshot(dir);
}

describe("SOPS decryption with age", () => {
  test("a Secret encrypted with --encrypted-regex decrypts to the original values", async () => {
    const enc = sopsEncrypt(tools.sops, key.recipient, SECRET, "secret.yaml", [
      "--encrypted-regex",
      "^(data|stringData)$",
    ]);
    expect(enc).not.toContain("s3cr3t-value");
    const r = await renderApp(
      repoWith({ "app/secret.yaml": enc }),
      { name: "a", path: "app" },
      { sops: { ageIdentities: [key.identity] } },
    );
    expect(r.errors).toEqual([]);
    const secret = r.objects[0]?.object as Record<string, unknown>;
    expect(secret.stringData).toEqual({ password: "s3cr3t-value", port: "5432" });
    expect(secret.data).toEqual({ token: "dG9rZW4tdmFsdWU=" });
    expect(secret.sops).toBeUndefined();
  });

  test("a fully encrypted JSON file with numbers and booleans decrypts with its types", async () => {
    const json = JSON.stringify({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "typed" },
      data: { a: "x" },
      extra: { n: 42, f: 1.5, b: true, list: ["p", "q"] },
    });
    const enc = sopsEncrypt(tools.sops, key.recipient, json, "cm.json", [
      "--unencrypted-regex",
      "^(apiVersion|kind|metadata)$",
    ]);
    const r = await renderApp(
      repoWith({ "app/cm.json": enc }),
      { name: "a", path: "app" },
      { sops: { ageIdentities: [key.identity] } },
    );
    expect(r.errors).toEqual([]);
    expect(((r.objects[0]?.object ?? {}) as Record<string, unknown>).extra).toEqual({
      n: 42,
      f: 1.5,
      b: true,
      list: ["p", "q"],
    });
  });

  test("a tampered plaintext field is refused by the MAC check, naming the file and no value", async () => {
    const enc = sopsEncrypt(tools.sops, key.recipient, SECRET, "secret.yaml", [
      "--encrypted-regex",
      "^(data|stringData)$",
    ]);
    const tampered = enc.replace("tier: backend", "tier: frontend");
    expect(tampered).not.toBe(enc);
    const r = await renderApp(
      repoWith({ "app/secret.yaml": tampered }),
      { name: "a", path: "app" },
      { sops: { ageIdentities: [key.identity] } },
    );
    expect(r.objects).toEqual([]);
    expect(r.errors).toEqual([
      {
        path: "app",
        message: "app/secret.yaml: SOPS MAC mismatch: the file was changed after it was encrypted",
      },
    ]);
    expect(JSON.stringify(r)).not.toContain("s3cr3t");
  });

  test("moving an encrypted value to another key is refused (its key path is authenticated)", async () => {
    const enc = sopsEncrypt(tools.sops, key.recipient, SECRET, "secret.yaml", [
      "--encrypted-regex",
      "^(data|stringData)$",
    ]);
    const lines = enc.split("\n");
    const pw = lines.findIndex((l) => l.trim().startsWith("password:"));
    const port = lines.findIndex((l) => l.trim().startsWith("port:"));
    const pwValue = lines[pw]?.split(": ")[1] ?? "";
    const portValue = lines[port]?.split(": ")[1] ?? "";
    lines[pw] = `    password: ${portValue}`;
    lines[port] = `    port: ${pwValue}`;
    const r = await renderApp(
      repoWith({ "app/secret.yaml": lines.join("\n") }),
      { name: "a", path: "app" },
      { sops: { ageIdentities: [key.identity] } },
    );
    expect(r.errors[0]?.message).toContain("app/secret.yaml: value at stringData.password does not decrypt");
  });

  test("without a matching age key the file is refused naming its recipients", async () => {
    const other = await newAgeIdentity();
    const enc = sopsEncrypt(tools.sops, key.recipient, SECRET);
    const r = await renderApp(
      repoWith({ "app/secret.yaml": enc }),
      { name: "a", path: "app" },
      { sops: { ageIdentities: [other.identity] } },
    );
    expect(r.errors[0]?.message).toContain(
      `app/secret.yaml: none of the configured age keys can decrypt this file (recipients: ${key.recipient})`,
    );
  });

  test("a SOPS Secret referenced by a kustomization is decrypted before kustomize builds", async () => {
    const enc = sopsEncrypt(tools.sops, key.recipient, SECRET, "secret.yaml", [
      "--encrypted-regex",
      "^(data|stringData)$",
    ]);
    const snap = repoWith({
      "k/secret.yaml": enc,
      "k/kustomization.yaml": "resources: [secret.yaml]\nnamePrefix: p-\n",
    });
    const r = await renderApp(
      snap,
      { name: "a", path: "k" },
      { tools: { paths: tools }, sops: { ageIdentities: [key.identity] } },
    );
    expect(r.errors).toEqual([]);
    expect(r.objects[0]?.object.metadata.name).toBe("p-db");
    expect(((r.objects[0]?.object ?? {}) as Record<string, unknown>).stringData).toEqual({
      password: "s3cr3t-value",
      port: "5432",
    });
  });
});
