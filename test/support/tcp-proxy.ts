/**
 * A TCP proxy on loopback that can go silent: `stall()` makes every connection open at that moment stop
 * forwarding in both directions without closing (as a dead NAT entry or a stuck middlebox does); connections
 * made afterwards are forwarded normally. `cut()` makes the server look down (connections reset, new ones
 * refused) until `up()`. With `latencyMs`, every chunk from the server reaches the client that much later (a
 * slow link), so a test can act while a burst of requests is still in flight. TLS passes through untouched.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import type { TestCluster } from "./cluster.ts";

interface Connection {
  client: Socket;
  upstream: Socket;
  stalled: boolean;
  /** The client side closed (berth gave up on the connection). */
  clientClosed: boolean;
}

export class StallingProxy {
  /** While set, every connection is closed at once and new ones are refused (the server looks down). */
  private down = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly open: Set<Connection>,
  ) {}

  /** Starts a proxy on 127.0.0.1 (a free port) to host:port. */
  static async start(
    host: string,
    port: number,
    options: { latencyMs?: number } = {},
  ): Promise<StallingProxy> {
    const latency = options.latencyMs ?? 0;
    const conns = new Set<Connection>();
    let proxy: StallingProxy | undefined;
    const server = createServer((client) => {
      if (proxy?.down) {
        client.destroy();
        return;
      }
      const upstream = connect(port, host);
      const conn: Connection = { client, upstream, stalled: false, clientClosed: false };
      conns.add(conn);
      // Stalled: bytes are swallowed and ends are not passed on; the sockets stay open.
      client.on("data", (d) => {
        if (!conn.stalled) upstream.write(d);
      });
      upstream.on("data", (d) => {
        // Timers of equal delay fire in the order they were set, so delayed chunks keep their order.
        if (latency > 0) setTimeout(() => conn.stalled || client.destroyed || client.write(d), latency);
        else if (!conn.stalled) client.write(d);
      });
      const end = (other: Socket) => () => {
        if (!conn.stalled) setTimeout(() => other.end(), other === client ? latency : 0);
      };
      client.on("end", end(upstream));
      upstream.on("end", end(client));
      const gone = () => {
        conns.delete(conn);
        client.destroy();
        upstream.destroy();
      };
      client.on("close", () => {
        conn.clientClosed = true;
        if (!conn.stalled) gone();
      });
      upstream.on("close", () => {
        if (!conn.stalled) gone();
      });
      client.on("error", () => {});
      upstream.on("error", () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    if (!address || typeof address === "string") throw new Error("proxy: no port");
    proxy = new StallingProxy(server, address.port, conns);
    return proxy;
  }

  /** Every connection open now stops forwarding, without closing; returns how many. */
  stall(): number {
    let n = 0;
    for (const c of this.open) {
      if (!c.stalled) n++;
      c.stalled = true;
    }
    return n;
  }

  /** The server goes away for the client: every connection is reset and new ones are refused until `up()`. */
  cut(): void {
    this.down = true;
    for (const c of this.open) {
      c.client.destroy();
      c.upstream.destroy();
    }
    this.open.clear();
  }

  /** Accepts connections again after `cut()`. */
  up(): void {
    this.down = false;
  }

  /** Stalled connections the client has not closed yet (a client that gives up closes them). */
  get stalledOpen(): number {
    return [...this.open].filter((c) => c.stalled && !c.clientClosed).length;
  }

  /** Connections open and forwarding. */
  get live(): number {
    return [...this.open].filter((c) => !c.stalled).length;
  }

  /** Closes the proxy and every connection, stalled ones included. */
  async close(): Promise<void> {
    for (const c of this.open) {
      c.client.destroy();
      c.upstream.destroy();
    }
    this.open.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A proxy in front of the cluster's API server and a kubeconfig in `dir` that reaches the server only through
 * it (the same credentials; the server's certificate is valid for 127.0.0.1).
 */
export async function proxyCluster(
  cluster: TestCluster,
  dir: string,
  options: { latencyMs?: number } = {},
): Promise<{ proxy: StallingProxy; kubeconfig: string }> {
  const server = new URL(cluster.kubeConfig.getCurrentCluster()?.server ?? "");
  const proxy = await StallingProxy.start(server.hostname, Number(server.port || 443), options);
  const original = readFileSync(cluster.kubeconfigPath, "utf8");
  if (!original.includes(server.origin)) throw new Error(`kubeconfig does not name ${server.origin}`);
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(kubeconfig, original.replaceAll(server.origin, `https://127.0.0.1:${proxy.port}`));
  return { proxy, kubeconfig };
}
