import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from './ports.ts';

export interface ExportedSeries {
  metric: Record<string, string>;
  values: number[];
  timestamps: number[];
}

/**
 * A real VictoriaMetrics (Debian victoria-metrics) on a free loopback port. It accepts
 * InfluxDB line protocol on /api/v2/write and stores field `value` of measurement `m`
 * as the series `m_value` with the tags as labels. Stoppable (SIGTERM, SIGKILL),
 * freezable (SIGSTOP/SIGCONT) and restartable on the same port and data.
 */
export class Victoria {
  private proc?: ChildProcess;
  private constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<Victoria> {
    const v = new Victoria(await freePort(), mkdtempSync(join(tmpdir(), 'octopus-vm-')));
    await v.launch();
    return v;
  }

  private async launch(): Promise<void> {
    this.proc = spawn(
      '/usr/bin/victoria-metrics',
      [
        `-httpListenAddr=127.0.0.1:${this.port}`,
        `-storageDataPath=${this.dir}`,
        '-retentionPeriod=100y',
        // Make fresh samples queryable at once (default: hide the last 30 s).
        '-search.latencyOffset=0s',
        '-search.disableCache',
        '-loggerLevel=ERROR',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    this.proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<never>((_, reject) =>
      this.proc!.once('exit', (code) => reject(new Error(`victoria-metrics exited (${code}): ${stderr}`))),
    );
    await Promise.race([waitForPort(this.port), exited]);
  }

  signal(sig: NodeJS.Signals): void {
    this.proc?.kill(sig);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      // A frozen process is killed as it is (SIGKILL works on a stopped process): it must
      // not get the chance to answer requests queued while frozen and then lose them.
      if (signal !== 'SIGKILL') p.kill('SIGCONT');
      p.kill(signal);
    });
    this.proc = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /** Every raw sample of the series matching `selector` (after flushing what was just written). */
  async export(selector: string): Promise<ExportedSeries[]> {
    await fetch(`${this.url}/internal/force_flush`).catch(() => undefined);
    const res = await fetch(`${this.url}/api/v1/export?${new URLSearchParams({ 'match[]': selector })}`);
    if (!res.ok) throw new Error(`export ${selector}: HTTP ${res.status} ${await res.text()}`);
    const text = await res.text();
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as ExportedSeries);
  }

  /** Number of raw samples matching `selector`. */
  async count(selector: string): Promise<number> {
    return (await this.export(selector)).reduce((n, s) => n + s.values.length, 0);
  }

  async close(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
