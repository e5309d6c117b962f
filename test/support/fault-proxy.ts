import { createServer, request, type IncomingMessage, type Server } from 'node:http';

export interface InjectedReply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/**
 * An HTTP proxy in front of a real server that injects faults: delayed responses, or
 * scripted replies (400, 429 with Retry-After…) for the next requests instead of
 * forwarding them. Records every request it saw.
 */
export class FaultProxy {
  delayMs = 0;
  readonly script: InjectedReply[] = [];
  readonly seen: Array<{ at: number; path: string; bytes: number; forwarded: boolean; status: number }> = [];
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(target: string): Promise<FaultProxy> {
    const t = new URL(target);
    let self: FaultProxy | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        const p = self!;
        const injected = p.script.shift();
        const answer = () => {
          if (injected) {
            p.seen.push({
              at: Date.now(),
              path: req.url ?? '',
              bytes: body.length,
              forwarded: false,
              status: injected.status,
            });
            res.writeHead(injected.status, { 'content-type': 'application/json', ...injected.headers });
            res.end(injected.body ?? '');
            return;
          }
          const fwd = request(
            { host: t.hostname, port: t.port, path: req.url, method: req.method, headers: req.headers },
            (up: IncomingMessage) => {
              p.seen.push({
                at: Date.now(),
                path: req.url ?? '',
                bytes: body.length,
                forwarded: true,
                status: up.statusCode ?? 0,
              });
              res.writeHead(up.statusCode ?? 502, up.headers);
              up.pipe(res);
            },
          );
          fwd.on('error', () => {
            res.writeHead(502);
            res.end();
          });
          fwd.end(body);
        };
        if (p.delayMs) setTimeout(answer, p.delayMs);
        else answer();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    self = new FaultProxy(server, typeof addr === 'object' && addr ? addr.port : 0);
    return self;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}
