import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from './ports.ts';

export interface InfluxQlSeries {
  name: string;
  tags?: Record<string, string>;
  columns: string[];
  values: unknown[][];
}

/** A real influxd 1.x (Debian influxdb) on free loopback ports, for InfluxQL queries. */
export class Influxd {
  private constructor(
    private readonly proc: ChildProcess,
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<Influxd> {
    const dir = mkdtempSync(join(tmpdir(), 'octopus-influxd-'));
    const [http, rpc] = [await freePort(), await freePort()];
    writeFileSync(
      join(dir, 'influxd.conf'),
      [
        'reporting-disabled = true',
        `bind-address = "127.0.0.1:${rpc}"`,
        '[meta]',
        `  dir = "${dir}/meta"`,
        '[data]',
        `  dir = "${dir}/data"`,
        `  wal-dir = "${dir}/wal"`,
        '  query-log-enabled = false',
        '[http]',
        `  bind-address = "127.0.0.1:${http}"`,
        '  log-enabled = false',
        '[monitor]',
        '  store-enabled = false',
        '',
      ].join('\n'),
    );
    const proc = spawn('/usr/bin/influxd', ['-config', join(dir, 'influxd.conf')], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const exited = new Promise<never>((_, reject) =>
      proc.once('exit', (code) => reject(new Error(`influxd exited (${code}): ${stderr}`))),
    );
    await Promise.race([waitForPort(http), exited]);
    return new Influxd(proc, http, dir);
  }

  /** Runs InfluxQL statements; returns the series of each statement, throwing on errors. */
  async query(db: string, q: string): Promise<InfluxQlSeries[][]> {
    const res = await fetch(`${this.url}/query?${new URLSearchParams({ db, q, epoch: 'ms' })}`, { method: 'POST' });
    const body = (await res.json()) as {
      error?: string;
      results?: Array<{ error?: string; series?: InfluxQlSeries[] }>;
    };
    if (!res.ok || body.error) throw new Error(`influxd: ${body.error ?? res.status} for ${q}`);
    const failed = body.results?.find((r) => r.error);
    if (failed) throw new Error(`influxd: ${failed.error} for ${q}`);
    return (body.results ?? []).map((r) => r.series ?? []);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      if (this.proc.exitCode !== null) return resolve();
      this.proc.once('exit', () => resolve());
      this.proc.kill('SIGKILL');
    });
    rmSync(this.dir, { recursive: true, force: true });
  }
}
