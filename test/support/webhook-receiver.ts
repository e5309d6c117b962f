import { createServer, type Server } from 'node:http';
import { freePort } from './ports.ts';

export interface Received {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  status: number;
  /** Date.now() when the request body had arrived. */
  at: number;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Never answer (the client times out). */ hang?: boolean;
}

/**
 * A local HTTP receiver for webhook tests on a free loopback port: answers each request
 * with the next scripted reply (or `fallback` when the script is empty; a function gets
 * the request number), records every request with its raw body, and counts the most
 * requests it answered at once (a request left hanging is not counted).
 */
export class WebhookReceiver {
  readonly received: Received[] = [];
  readonly script: Reply[] = [];
  fallback: Reply | ((n: number) => Reply) = { status: 204 };
  maxConcurrent = 0;
  /** Answers after this many ms (a gateway's processing time); 0 answers at once. */
  delayMs = 0;
  private concurrent = 0;
  private readonly hanging = new Set<() => void>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(port?: number): Promise<WebhookReceiver> {
    const p = port ?? (await freePort());
    let self: WebhookReceiver | undefined;
    const server = createServer((req, res) => {
      const r = self!;
      r.concurrent++;
      r.maxConcurrent = Math.max(r.maxConcurrent, r.concurrent);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const reply =
          r.script.shift() ?? (typeof r.fallback === 'function' ? r.fallback(r.received.length + 1) : r.fallback);
        r.received.push({
          path: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          status: reply.hang ? 0 : reply.status,
          at: Date.now(),
        });
        const done = () => r.concurrent--;
        if (reply.hang) {
          // Not counted as concurrent: the client gives up on it (timeout) before the
          // server side sees the socket close.
          done();
          const release = () => {
            r.hanging.delete(release);
            res.destroy();
          };
          r.hanging.add(release);
          res.on('close', release);
          return;
        }
        const answer = () => {
          res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
          res.end(reply.body ?? '', done);
        };
        if (r.delayMs > 0) setTimeout(answer, r.delayMs);
        else answer();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(p, '127.0.0.1', () => resolve());
    });
    self = new WebhookReceiver(server, p);
    return self;
  }

  /** The JSON bodies received, parsed. */
  bodies<T = Record<string, unknown>>(): T[] {
    return this.received.map((r) => JSON.parse(r.body) as T);
  }

  async close(): Promise<void> {
    for (const release of [...this.hanging]) release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
