import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from './ports.ts';

/** A real Mosquitto (Debian package) on a free loopback port, stoppable and restartable. */
export class Mosquitto {
  private proc?: ChildProcess;
  private conf: string;
  private constructor(
    readonly port: number,
    private readonly dir: string,
    conf?: string,
  ) {
    this.conf = conf ?? join(dir, 'mosquitto.conf');
  }

  /**
   * Mosquitto with a configuration written by `octopus mqtt-config --out dir` (its
   * password file, ACL file and mosquitto.conf, listener on `port`). Run as root,
   * mosquitto drops to the "mosquitto" user, which must be able to read them.
   */
  static async startGenerated(dir: string, port: number): Promise<Mosquitto> {
    const uid = Number(execFileSync('id', ['-u', 'mosquitto'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, -1);
    for (const f of readdirSync(dir)) if (f !== 'secrets') chownSync(join(dir, f), uid, -1);
    const m = new Mosquitto(port, dir, join(dir, 'mosquitto.conf'));
    await m.launch();
    return m;
  }

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** `persistence`: keep sessions and queued messages across restarts (as in production). */
  static async start(opts: { persistence?: boolean } = {}): Promise<Mosquitto> {
    const dir = mkdtempSync(join(tmpdir(), 'octopus-mosquitto-'));
    // Run as root, mosquitto drops to the "mosquitto" user: it must be able to write here.
    chmodSync(dir, 0o777);
    const m = new Mosquitto(await freePort(), dir);
    writeFileSync(
      join(dir, 'mosquitto.conf'),
      [
        `listener ${m.port} 127.0.0.1`,
        'allow_anonymous true',
        opts.persistence ? `persistence true\npersistence_location ${dir}/\nautosave_interval 1` : 'persistence false',
        'max_queued_messages 1000000',
        'max_inflight_messages 0',
        'log_dest stderr',
        'log_type error',
        '',
      ].join('\n'),
    );
    await m.launch();
    return m;
  }

  private async launch(): Promise<void> {
    this.proc = spawn('/usr/sbin/mosquitto', ['-c', this.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    this.proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<never>((_, reject) =>
      this.proc!.once('exit', (code) => reject(new Error(`mosquitto exited (${code}): ${stderr}`))),
    );
    await Promise.race([waitForPort(this.port), exited]);
  }

  /** SIGTERM (graceful) or SIGKILL; resolves once the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(signal);
    });
    this.proc = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  async close(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
