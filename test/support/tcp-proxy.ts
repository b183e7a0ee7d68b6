/**
 * A TCP proxy on loopback that can go silent: `stall()` makes every connection open at that moment stop
 * forwarding in both directions without closing (as a dead NAT entry or a stuck middlebox does); connections
 * made afterwards are forwarded normally. `cut()` makes the server look down (connections reset, new ones
 * refused) until `up()`. TLS passes through untouched.
 */
import { connect, createServer, type Server, type Socket } from "node:net";

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
  static async start(host: string, port: number): Promise<StallingProxy> {
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
        if (!conn.stalled) client.write(d);
      });
      const end = (other: Socket) => () => {
        if (!conn.stalled) other.end();
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
