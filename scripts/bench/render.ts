/**
 * Render time of the Kustomize (prod overlay) and Helm fixture apps, tool process included, and the time SOPS
 * decryption adds for 100 age-encrypted Secrets (same 100 Secrets in plaintext as the baseline). Medians of 7 runs.
 * Needs the tools: bash scripts/tools/build.sh. Run: bun scripts/bench/render.ts
 */
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AppRenderSpec, type RenderEnvironment, renderApp } from "../../agent/render/app.ts";
import { FsSnapshot } from "../../agent/render/fs-snapshot.ts";
import { newAgeIdentity } from "../../agent/render/sops.ts";
import { figurePrinter, median } from "./flags.ts";

const print = figurePrinter("render");

const toolsDir = execFileSync("bash", [join(import.meta.dir, "../tools/build.sh")], {
  encoding: "utf8",
}).trim();
const paths = {
  kustomize: join(toolsDir, "kustomize"),
  helm: join(toolsDir, "helm"),
  sops: join(toolsDir, "sops"),
};
const repo = mkdtempSync(join(tmpdir(), "berth-bench-render-"));
cpSync(join(import.meta.dir, "../../test/fixtures/render/repo"), repo, { recursive: true });

async function time(
  app: AppRenderSpec,
  env: RenderEnvironment,
  snapshot = new FsSnapshot(repo),
): Promise<number> {
  const runs: number[] = [];
  for (let i = 0; i < 8; i++) {
    const t0 = performance.now();
    const r = await renderApp(snapshot, app, env);
    if (r.errors.length > 0) throw new Error(JSON.stringify(r.errors));
    if (i > 0) runs.push(performance.now() - t0); // the first run warms caches
  }
  return median(runs);
}

const env: RenderEnvironment = { tools: { paths } };
print(
  "kustomize_overlay_ms",
  await time({ name: "prod", path: "kustomize/overlays/prod", vars: { CLUSTER: "c", REGION: "r" } }, env),
  "ms",
);
print(
  "helm_chart_ms",
  await time(
    { name: "web", path: "", namespace: "web", helm: { chart: "charts/web", values: ["values/prod.yaml"] } },
    env,
  ),
  "ms",
);

// 100 Secrets, encrypted once with the real sops binary, against the same 100 in plaintext.
const key = await newAgeIdentity();
const plain = mkdtempSync(join(tmpdir(), "berth-bench-plain-"));
const sealed = mkdtempSync(join(tmpdir(), "berth-bench-sops-"));
mkdirSync(join(plain, "s"));
mkdirSync(join(sealed, "s"));
for (let i = 0; i < 100; i++) {
  const text = `apiVersion: v1\nkind: Secret\nmetadata: {name: s${i}, namespace: bench}\nstringData:\n  password: value-${i}\n  user: user-${i}\n`;
  writeFileSync(join(plain, "s", `s${i}.yaml`), text);
  const enc = execFileSync(
    paths.sops,
    [
      "--encrypt",
      "--age",
      key.recipient,
      "--encrypted-regex",
      "^(data|stringData)$",
      join(plain, "s", `s${i}.yaml`),
    ],
    {
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "", HOME: plain },
    },
  );
  writeFileSync(join(sealed, "s", `s${i}.yaml`), enc);
}
const sopsEnv: RenderEnvironment = { sops: { ageIdentities: [key.identity] } };
const base = await time({ name: "s", path: "s" }, sopsEnv, new FsSnapshot(plain));
const withSops = await time({ name: "s", path: "s" }, sopsEnv, new FsSnapshot(sealed));
print("plain_100_secrets_ms", base, "ms");
print("sops_100_secrets_ms", withSops, "ms");
print("sops_added_per_secret_ms", (withSops - base) / 100, "ms");
