/** Serves a fetch handler on host:port with whatever runtime runs berth: Bun.serve, Deno.serve or node:http. */
import { createServer } from "node:http";

/** A running server. */
export interface Served {
  /** The port actually bound (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

type Handler = (req: Request) => Response | Promise<Response>;

/** Splits "host:port" / "[::1]:port". */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (!m) throw new Error(`api.listen "${listen}": expected host:port`);
  return { host: m[1] ?? m[2] ?? "127.0.0.1", port: Number(m[3]) };
}

/** Starts listening; resolves once the port is bound. */
export async function serve(handler: Handler, listen: string): Promise<Served> {
  const { host, port } = parseListen(listen);
  const g = globalThis as {
    Bun?: { serve(o: object): { port: number; stop(force?: boolean): Promise<void> | void } };
    Deno?: {
      serve(o: object, h: Handler): { addr: { port: number }; shutdown(): Promise<void> };
    };
  };
  if (g.Bun) {
    // idleTimeout above the event stream's 10 s keep-alive, so open streams are not cut.
    const s = g.Bun.serve({ hostname: host, port, fetch: handler, idleTimeout: 30 });
    return { port: s.port, close: async () => void (await s.stop(true)) };
  }
  if (g.Deno) {
    const s = g.Deno.serve({ hostname: host, port, onListen() {} }, handler);
    return { port: s.addr.port, close: () => s.shutdown() };
  }
  return serveNode(handler, host, port);
}

async function serveNode(handler: Handler, host: string, port: number): Promise<Served> {
  const server = createServer(async (req, res) => {
    try {
      const controller = new AbortController();
      res.on("close", () => controller.abort());
      const hasBody = req.method !== "GET" && req.method !== "HEAD";
      const init: RequestInit & { duplex?: "half" } = {
        method: req.method ?? "GET",
        headers: req.headers as Record<string, string>,
        signal: controller.signal,
      };
      if (hasBody) {
        init.body = req as unknown as ReadableStream;
        init.duplex = "half";
      }
      const response = await handler(
        new Request(`http://${req.headers.host ?? host}${req.url ?? "/"}`, init),
      );
      res.writeHead(response.status, Object.fromEntries(response.headers));
      if (!response.body) return void res.end();
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        res.write(value);
      }
      res.end();
    } catch {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, resolve);
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
