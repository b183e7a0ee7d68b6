/**
 * `npm run demo`: a real local control plane, a local Git server holding the
 * demo repository (test/fixtures/demo-repo), and `berth run` syncing it.
 * Ctrl-C stops berth gracefully, then the Git server and the control plane.
 *
 * Env: BERTH_CLUSTER_DIR (control plane state dir), BERTH_DEMO_DIR (work dir, default .berth/demo),
 * BERTH_DEMO_KEEP_CLUSTER=1 (leave the control plane running).
 */
import { execFileSync, spawn } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, relative } from "node:path";
import { startGitServer } from "./git/server.ts";

const ROOT = join(import.meta.dir, "..");
const WORK = process.env.BERTH_DEMO_DIR ?? join(ROOT, ".berth", "demo");
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string) => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
const say = (s = "") => process.stdout.write(`${s}\n`);

say(bold("berth demo"));
say(dim("1/3  starting a real Kubernetes control plane (first time: builds it from Go modules, ~7 min)…"));
const up = execFileSync("bash", [join(ROOT, "scripts/cluster/cluster.sh"), "up"], {
  encoding: "utf8",
  stdio: ["ignore", "pipe", "inherit"],
});
const kubeconfig = /^KUBECONFIG=(.+)$/m.exec(up)?.[1] ?? "";
const clusterBin = /^BERTH_CLUSTER_BIN=(.+)$/m.exec(
  execFileSync("bash", [join(ROOT, "scripts/cluster/cluster.sh"), "env"], { encoding: "utf8" }),
)?.[1];

say(dim("2/3  serving the demo repository over Git smart HTTP…"));
rmSync(WORK, { recursive: true, force: true });
const repos = join(WORK, "repos");
const checkout = join(WORK, "demo-infra");
mkdirSync(repos, { recursive: true });
const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "Demo",
      GIT_AUTHOR_EMAIL: "demo@berth.invalid",
      GIT_COMMITTER_NAME: "Demo",
      GIT_COMMITTER_EMAIL: "demo@berth.invalid",
    },
  }).trim();
git(repos, "init", "--quiet", "--bare", "--initial-branch=main", "demo-infra.git");
cpSync(join(ROOT, "test/fixtures/demo-repo"), checkout, { recursive: true });
git(checkout, "init", "--quiet", "--initial-branch=main");
git(checkout, "add", "--all");
git(checkout, "commit", "--quiet", "-m", "Add the demo apps: base, web and cache");
// Push through the file system: this process serves the HTTP side and must not block on itself.
git(checkout, "push", "--quiet", join(repos, "demo-infra.git"), "main");
const server = await startGitServer({ root: repos });
const url = `${server.url}/demo-infra.git`;
git(checkout, "remote", "add", "origin", url);

// The API and status page on a free loopback port, readable without a token (loopback only).
const apiPort = await new Promise<number>((resolve) => {
  const probe = createServer().listen(0, "127.0.0.1", () => {
    const port = (probe.address() as { port: number }).port;
    probe.close(() => resolve(port));
  });
});
const config = join(WORK, "berth.yaml");
writeFileSync(
  config,
  `# yaml-language-server: $schema=../../schemas/config.schema.json
apiVersion: berth.dev/v1alpha1
kind: Agent
source: { url: "${url}", ref: main, interval: 5s }
apps:
  - { name: base, path: apps/base, prune: true }
  - { name: web, path: apps/web, namespace: demo, dependsOn: [base], timeout: 2m }
  - { name: cache, path: apps/cache, namespace: demo, dependsOn: [base], timeout: 2m }
ledger: { path: ledger.db }
api: { listen: "127.0.0.1:${apiPort}", anonymousRead: true }
`,
);

say(dim(`3/3  running berth (${files(join(ROOT, "test/fixtures/demo-repo")).length} files, 3 apps)…`));
say();
const berth = spawn(
  process.execPath,
  [join(ROOT, "agent/main.ts"), "run", "--config", config, "--kubeconfig", kubeconfig],
  { stdio: ["ignore", "inherit", "inherit"] },
);

const kubectl = clusterBin ? join(clusterBin, "kubectl") : "kubectl";
const rel = (p: string) => relative(process.cwd(), p) || ".";
let announced = false;
const watcher = setInterval(() => {
  if (announced) return;
  try {
    const status = JSON.parse(
      execFileSync(process.execPath, [join(ROOT, "agent/main.ts"), "status", "--json", "--config", config], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      }),
    ) as Array<{ app: string; last?: { outcome?: string } }>;
    if (status.every((s) => s.last?.outcome === "Succeeded")) {
      announced = true;
      say();
      say(bold("✓ the demo is synced: every app is applied and healthy."));
      say(`  status:     http://127.0.0.1:${apiPort}/   (API: http://127.0.0.1:${apiPort}/api/v1/apps)`);
      say(`  Git:        ${url}   (working copy: ${rel(checkout)})`);
      say(`  cluster:    export KUBECONFIG=${kubeconfig}`);
      say(`  ledger:     ${rel(join(WORK, "ledger.db"))}`);
      say();
      say("  try:");
      say(`    ${kubectl} --kubeconfig ${kubeconfig} get all -n demo`);
      say(
        `    ${kubectl} --kubeconfig ${kubeconfig} scale deployment web -n demo --replicas=5   ${dim("# drift: put back within an interval")}`,
      );
      say(
        `    cd ${rel(checkout)} && $EDITOR apps/web/config.yaml && git commit -am change && git push   ${dim("# a new commit")}`,
      );
      say(`    bun agent/main.ts ledger list --config ${rel(config)}`);
      say();
      say(dim("  Ctrl-C stops berth, the Git server and the control plane."));
    }
  } catch {
    // The ledger may not exist yet; try again next second.
  }
}, 1000);

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  clearInterval(watcher);
  say(dim("\nstopping berth…"));
  berth.kill("SIGTERM");
  await new Promise((r) => berth.once("exit", r));
  await server.close();
  if (process.env.BERTH_DEMO_KEEP_CLUSTER !== "1") {
    say(dim("stopping the control plane…"));
    execFileSync("bash", [join(ROOT, "scripts/cluster/cluster.sh"), "down"], { stdio: "inherit" });
  }
  say("bye.");
  process.exit(0);
}
process.on("SIGINT", () => void shutdown());
process.on("SIGTERM", () => void shutdown());
berth.on("exit", (code) => {
  if (!stopping) {
    say(`berth exited unexpectedly (code ${code})`);
    void shutdown();
  }
});

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => e.name);
}
