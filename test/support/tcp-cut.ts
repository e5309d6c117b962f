import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP relay on a free loopback port in front of a real server, whose link can be cut
 * (every connection dropped, new ones refused) and restored: a network outage between
 * one client (e.g. a gateway) and the broker, the others unaffected.
 */
export class TcpCut {
  private cut = false;
  private readonly sockets = new Set<Socket>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, host = '127.0.0.1'): Promise<TcpCut> {
    let self: TcpCut | undefined;
    const server = createServer((client) => {
      const t = self!;
      if (t.cut) return void client.destroy();
      const upstream = createConnection({ port: targetPort, host });
      for (const s of [client, upstream]) {
        t.sockets.add(s);
        s.on('close', () => t.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    self = new TcpCut(server, typeof addr === 'object' && addr ? addr.port : 0);
    return self;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Drops every connection and refuses new ones until `restore`. */
  down(): void {
    this.cut = true;
    for (const s of this.sockets) s.destroy();
  }

  restore(): void {
    this.cut = false;
  }

  close(): Promise<void> {
    this.down();
    return new Promise((r) => this.server.close(() => r()));
  }
}
