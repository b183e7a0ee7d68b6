/**
 * A real Helm chart repository for tests: charts made by `helm create` and `helm package`, the index by
 * `helm repo index`, served over HTTPS (a CA made with openssl, as scripts/cluster/cluster.sh does) with basic
 * auth by a small node:https static file server.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import { type AddressInfo, connect, createServer as createNetServer } from "node:net";
import { tmpdir } from "node:os";
import { join, normalize } from "node:path";
import { helmHome, toolPaths } from "./tools.ts";

/** A self-made CA and a certificate for 127.0.0.1/localhost signed by it. */
export function makeTls(dir: string): { caFile: string; key: string; cert: string } {
  const run = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  run(
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "30",
    "-subj",
    "/CN=berth-test-ca",
  );
  run(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=localhost",
  );
  writeFileSync(join(dir, "san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  run(
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "30",
    "-extfile",
    "san.ext",
    "-out",
    "server.crt",
  );
  return { caFile: join(dir, "ca.crt"), key: join(dir, "server.key"), cert: join(dir, "server.crt") };
}

/** The repository: `publish()` packages a chart version and re-indexes; `stop()` takes it offline. */
export class HelmRepoFixture {
  readonly dir: string;
  readonly charts: string;
  readonly caFile: string;
  /** Requests served (path and status), to tell a cached render from a download. */
  readonly requests: Array<{ path: string; status: number }> = [];
  private server: Server | undefined;
  private constructor(
    dir: string,
    caFile: string,
    private readonly helm: string,
    readonly url: string,
    server: Server,
    private readonly serve: () => Server,
  ) {
    this.dir = dir;
    this.charts = join(dir, "charts");
    this.caFile = caFile;
    this.server = server;
  }

  /** Starts an HTTPS repository on a free loopback port, requiring basic auth `username:password`. */
  static async start(auth: { username: string; password: string }): Promise<HelmRepoFixture> {
    const dir = mkdtempSync(join(tmpdir(), "berth-helmrepo-"));
    mkdirSync(join(dir, "charts"));
    const tls = makeTls(dir);
    const { helm } = await toolPaths();
    const expected = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`;
    let fixture: HelmRepoFixture | undefined;
    const serve = () =>
      createServer({ key: readFileSync(tls.key), cert: readFileSync(tls.cert) }, (req, res) => {
        const path = normalize(decodeURIComponent((req.url ?? "/").split("?")[0] ?? "/"));
        const status = (code: number) => fixture?.requests.push({ path, status: code });
        if (req.headers.authorization !== expected) {
          status(401);
          res.writeHead(401, { "www-authenticate": 'Basic realm="charts"' }).end("unauthorized\n");
          return;
        }
        try {
          const body = readFileSync(join(dir, "charts", path));
          status(200);
          res.writeHead(200, { "content-type": path.endsWith(".yaml") ? "text/yaml" : "application/gzip" });
          res.end(body);
        } catch {
          status(404);
          res.writeHead(404).end("not found\n");
        }
      });
    const server = serve();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    fixture = new HelmRepoFixture(dir, tls.caFile, helm, `https://127.0.0.1:${port}`, server, serve);
    return fixture;
  }

  /**
   * Packages chart `name` at `version` (made by `helm create`, its templates replaced by one ConfigMap holding
   * `data`) into the repository and rebuilds index.yaml. Publishing a version again replaces its archive.
   */
  publish(name: string, version: string, data: Record<string, string> = {}): string {
    const { home: work, env } = helmHome("berth-chart-");
    try {
      packageChart(this.helm, env, work, name, version, data, this.charts);
      execFileSync(this.helm, ["repo", "index", this.charts, "--url", this.url], {
        cwd: work,
        env,
        stdio: "pipe",
      });
      return join(this.charts, `${name}-${version}.tgz`);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  /** Takes the repository offline (connections refused from now on). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Brings the repository back on the same port after `stop()`. */
  async restart(): Promise<void> {
    if (this.server) return;
    const server = this.serve();
    await new Promise<void>((resolve) => server.listen(Number(new URL(this.url).port), "127.0.0.1", resolve));
    this.server = server;
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Debian's docker-registry (distribution) on loopback with TLS (a self-made CA) and htpasswd basic auth. Its
 * access log is kept (`requests`), so tests can count what a poll asked for; `stop()` and `restart()` take it
 * offline and back on the same port and storage.
 */
export class OciRegistryFixture {
  /** Requests served, from the registry's access log: method, path (no query) and status. */
  readonly requests: Array<{ method: string; path: string; status: number }> = [];
  private constructor(
    readonly dir: string,
    readonly host: string,
    readonly caFile: string,
    private child: ChildProcess,
    private readonly helm: string,
    readonly auth: { username: string; password: string },
  ) {}

  /** `plainHttp`: no TLS (for `insecure: true`); the CA is still made, so `caFile` exists. */
  static async start(
    auth: { username: string; password: string },
    options: { plainHttp?: boolean } = {},
  ): Promise<OciRegistryFixture> {
    const dir = mkdtempSync(join(tmpdir(), "berth-oci-"));
    const tls = makeTls(dir);
    const htpasswd = execFileSync("htpasswd", ["-Bbn", auth.username, auth.password], { encoding: "utf8" });
    writeFileSync(join(dir, "htpasswd"), htpasswd);
    const port = await freePort();
    writeFileSync(
      join(dir, "config.yml"),
      [
        "version: 0.1",
        "log: {level: warn, accesslog: {disabled: false}}",
        `storage: {filesystem: {rootdirectory: ${join(dir, "data")}}, delete: {enabled: true}}`,
        options.plainHttp
          ? `http: {addr: "127.0.0.1:${port}"}`
          : `http: {addr: "127.0.0.1:${port}", tls: {certificate: ${tls.cert}, key: ${tls.key}}}`,
        `auth: {htpasswd: {realm: berth-test, path: ${join(dir, "htpasswd")}}}`,
        "",
      ].join("\n"),
    );
    const { helm } = await toolPaths();
    const host = `127.0.0.1:${port}`;
    let fixture: OciRegistryFixture | undefined;
    const child = await serveRegistry(dir, port, (r) => fixture?.requests.push(r));
    fixture = new OciRegistryFixture(dir, host, tls.caFile, child, helm, auth);
    return fixture;
  }

  /** Takes the registry offline (connections refused until `restart()`). */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once("exit", r));
      this.child.kill("SIGTERM");
      await exited;
    }
  }

  /** Starts the registry again on the same port and storage. */
  async restart(): Promise<void> {
    await this.stop();
    const port = Number(this.host.split(":")[1]);
    this.child = await serveRegistry(this.dir, port, (r) => this.requests.push(r));
  }

  /** Packages chart `name` at `version` (as HelmRepoFixture.publish) and pushes it with `helm push`. */
  push(name: string, version: string, data: Record<string, string> = {}): string {
    const { home: work, env } = helmHome("berth-ocipush-");
    const helm = (args: string[], input?: string) =>
      execFileSync(this.helm, args, { cwd: work, env, stdio: "pipe", ...(input ? { input } : {}) });
    try {
      const archive = packageChart(this.helm, env, work, name, version, data, work);
      helm(
        [
          "registry",
          "login",
          this.host,
          "--username",
          this.auth.username,
          "--password-stdin",
          "--ca-file",
          this.caFile,
        ],
        this.auth.password,
      );
      helm(["push", archive, `oci://${this.host}/charts`, "--ca-file", this.caFile]);
      const kept = join(this.dir, `${name}-${version}.tgz`);
      writeFileSync(kept, readFileSync(archive));
      return kept;
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Runs docker-registry with the config in `dir` until it listens; access-log lines go to `onRequest`. */
async function serveRegistry(
  dir: string,
  port: number,
  onRequest: (r: { method: string; path: string; status: number }) => void,
): Promise<ChildProcess> {
  const child = spawn("docker-registry", ["serve", join(dir, "config.yml")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  // The access log is in Apache combined format: `… "GET /v2/x/manifests/v1 HTTP/1.1" 200 …`.
  let pending = "";
  child.stdout?.on("data", (d: Buffer) => {
    pending += d.toString();
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      const m = /"([A-Z]+) ([^ ?"]+)[^"]*" (\d{3})/.exec(line);
      if (m) onRequest({ method: m[1] as string, path: m[2] as string, status: Number(m[3]) });
    }
  });
  const host = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited: ${stderr}`);
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, "127.0.0.1", () => {
        s.end();
        resolve(true);
      });
      s.on("error", () => resolve(false));
    });
    if (up) break;
    if (i > 100) throw new Error(`docker-registry did not listen on ${host}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return child;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/**
 * `helm create` a chart `name` at `version` in `work`, its templates replaced by one ConfigMap holding the chart
 * version, `data` and a `greeting` value; `helm package` it into `dest`. Returns the archive's path.
 */
function packageChart(
  helmBin: string,
  env: Record<string, string>,
  work: string,
  name: string,
  version: string,
  data: Record<string, string>,
  dest: string,
): string {
  const helm = (...args: string[]) => execFileSync(helmBin, args, { cwd: work, env, stdio: "pipe" });
  helm("create", name);
  const chartYaml = join(work, name, "Chart.yaml");
  writeFileSync(chartYaml, readFileSync(chartYaml, "utf8").replace(/^version: .*$/m, `version: ${version}`));
  rmSync(join(work, name, "templates"), { recursive: true });
  mkdirSync(join(work, name, "templates"));
  const lines = Object.entries({ chartVersion: "{{ .Chart.Version }}", ...data }).map(
    ([k, v]) => `  ${k}: ${JSON.stringify(v)}`,
  );
  writeFileSync(
    join(work, name, "templates", "configmap.yaml"),
    `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-settings\ndata:\n${lines.join("\n")}\n  greeting: {{ .Values.greeting | default "hello" | quote }}\n`,
  );
  writeFileSync(join(work, name, "values.yaml"), "greeting: hello\n");
  helm("package", join(work, name), "--destination", dest);
  return join(dest, `${name}-${version}.tgz`);
}
