/**
 * A local Git smart-HTTP server: `git http-backend` (CGI) behind node:http,
 * serving the bare repositories under one root. Used by tests and the demo.
 * Optional auth (basic or bearer token) lets tests exercise auth failures.
 * Every request is logged in memory so tests can count what a client sent.
 */
import { spawn } from "node:child_process";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** Credentials the server accepts; none means anonymous read and write. */
export interface GitServerAuth {
  username?: string;
  password?: string;
  token?: string;
}

export interface GitServerOptions {
  root: string;
  port?: number;
  auth?: GitServerAuth;
}

/** One request the server answered. */
export interface GitRequestRecord {
  method: string;
  path: string;
  service: string | null;
  status: number;
}

export interface GitServer {
  url: string;
  port: number;
  root: string;
  requests: GitRequestRecord[];
  /** Replace (or remove) the credentials required from now on. */
  setAuth(auth: GitServerAuth | undefined): void;
  close(): Promise<void>;
}

/** Starts the server on 127.0.0.1 and resolves once it listens. */
export async function startGitServer(options: GitServerOptions): Promise<GitServer> {
  let auth = options.auth;
  const requests: GitRequestRecord[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const record: GitRequestRecord = {
      method: req.method ?? "GET",
      path: url.pathname,
      service: url.searchParams.get("service"),
      status: 0,
    };
    requests.push(record);
    res.on("finish", () => {
      record.status = res.statusCode;
    });
    if (!authorized(req, auth)) {
      res.writeHead(401, {
        "WWW-Authenticate": 'Basic realm="berth-test-git"',
        "Content-Type": "text/plain",
      });
      res.end("authentication required\n");
      return;
    }
    serveCgi(req, res, url, options.root);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    root: options.root,
    requests,
    setAuth(next) {
      auth = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function authorized(req: IncomingMessage, auth: GitServerAuth | undefined): boolean {
  if (!auth || (auth.token === undefined && auth.username === undefined)) return true;
  const header = req.headers.authorization ?? "";
  if (header.startsWith("Bearer ")) return auth.token !== undefined && header.slice(7) === auth.token;
  if (header.startsWith("Basic ")) {
    const decoded = Buffer.from(header.slice(6), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    const user = decoded.slice(0, colon);
    const pass = decoded.slice(colon + 1);
    // A token may also be sent as a basic-auth password, as Git hosts accept.
    if (auth.token !== undefined && pass === auth.token) return true;
    return auth.username !== undefined && user === auth.username && pass === auth.password;
  }
  return false;
}

function serveCgi(req: IncomingMessage, res: ServerResponse, url: URL, root: string): void {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: "1",
    // Pushes are allowed without REMOTE_USER: tests push over HTTP too.
    GIT_CONFIG_COUNT: "1",
    GIT_CONFIG_KEY_0: "http.receivepack",
    GIT_CONFIG_VALUE_0: "true",
    PATH_INFO: decodeURIComponent(url.pathname),
    REQUEST_METHOD: req.method ?? "GET",
    QUERY_STRING: url.search.slice(1),
    CONTENT_TYPE: req.headers["content-type"] ?? "",
    REMOTE_ADDR: req.socket.remoteAddress ?? "127.0.0.1",
    REMOTE_USER: "tester",
  };
  const encoding = req.headers["content-encoding"];
  if (encoding) env.HTTP_CONTENT_ENCODING = encoding;
  const protocol = req.headers["git-protocol"];
  if (typeof protocol === "string") env.GIT_PROTOCOL = protocol;
  const length = req.headers["content-length"];
  if (length) env.CONTENT_LENGTH = length;

  const child = spawn("git", ["http-backend"], { env, stdio: ["pipe", "pipe", "pipe"] });
  req.pipe(child.stdin);
  child.stdin.on("error", () => {});
  let head = Buffer.alloc(0);
  let headersDone = false;
  child.stdout.on("data", (chunk: Buffer) => {
    if (headersDone) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf("\r\n\r\n");
    const endLf = end === -1 ? head.indexOf("\n\n") : -1;
    if (end === -1 && endLf === -1) return;
    const split = end !== -1 ? end : endLf;
    const sepLen = end !== -1 ? 4 : 2;
    const headerText = head.subarray(0, split).toString("latin1");
    let status = 200;
    const headers: Record<string, string> = {};
    for (const line of headerText.split(/\r?\n/)) {
      const i = line.indexOf(":");
      if (i === -1) continue;
      const name = line.slice(0, i).trim();
      const value = line.slice(i + 1).trim();
      if (name.toLowerCase() === "status") status = Number.parseInt(value, 10);
      else headers[name] = value;
    }
    res.writeHead(status, headers);
    headersDone = true;
    const rest = head.subarray(split + sepLen);
    if (rest.length > 0) res.write(rest);
  });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  child.on("close", (code) => {
    if (!headersDone) {
      res.writeHead(500, { "Content-Type": "text/plain" });
      res.end(`git http-backend failed (exit ${code}): ${stderr}\n`);
      return;
    }
    res.end();
  });
}

if (import.meta.main) {
  // Manual use: bun scripts/git/server.ts ROOT [PORT]
  const root = process.argv[2];
  if (!root) {
    console.error("usage: server.ts ROOT [PORT]");
    process.exit(2);
  }
  const s = await startGitServer({ root, port: Number(process.argv[3] ?? 0) });
  console.log(`serving ${root} at ${s.url}`);
}
