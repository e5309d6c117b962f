/**
 * The archive role: exactly one collector writes the run files of a working folder. The
 * holder owns `<working_dir>/.archiver.lease` (created with O_EXCL, content = owner id)
 * and refreshes its mtime every heartbeat; a lease not refreshed for `ttlMs` is stale and
 * taken over (renamed away atomically — one contender wins — then created again). A
 * lease whose owner process on this host is gone (killed) is taken over at once.
 */
import {
  closeSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export class ArchiveLease {
  readonly owner = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  readonly path: string;
  private held = false;
  private previous?: string;

  constructor(
    dir: string,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.path = join(dir, '.archiver.lease');
  }

  get holder(): boolean {
    return this.held;
  }

  /** Who holds the lease now (owner id), if anyone. */
  current(): string | undefined {
    try {
      return readFileSync(this.path, 'utf8').trim() || undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Heartbeat: refreshes the lease when held (false if another process took it), else
   * takes it when free or stale. Returns whether this process holds it now.
   */
  beat(): boolean {
    if (this.held) {
      if (this.current() !== this.owner) {
        this.held = false;
        return false;
      }
      const t = new Date(this.now());
      utimesSync(this.path, t, t);
      return true;
    }
    try {
      this.previous = this.current();
      const age = this.now() - statSync(this.path).mtimeMs;
      if (age < this.ttlMs && !this.ownerGone()) return false;
      // Stale: move it away; only one contender's rename succeeds.
      const aside = `${this.path}.stale-${this.owner}`;
      renameSync(this.path, aside);
      if (this.now() - statSync(aside).mtimeMs < this.ttlMs && readFileSync(aside, 'utf8').trim() !== this.previous) {
        // Another contender took it over just before: put its fresh lease back.
        try {
          linkSync(aside, this.path);
        } finally {
          unlinkSync(aside);
        }
        return false;
      }
      unlinkSync(aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    try {
      const fd = openSync(this.path, 'wx');
      try {
        writeSync(fd, `${this.owner}\n`);
      } finally {
        closeSync(fd);
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    this.held = this.current() === this.owner;
    return this.held;
  }

  /** The holder ran on this host and its process is gone (killed): no need to wait for the lease to age. */
  private ownerGone(): boolean {
    const m = /^(.*)-(\d+)-[0-9a-f]{6}$/.exec(this.current() ?? '');
    if (!m || m[1] !== hostname()) return false;
    try {
      process.kill(Number(m[2]), 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ESRCH';
    }
  }

  /** Gives the lease up (clean stop), so another collector takes over at once. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    try {
      if (this.current() === this.owner) unlinkSync(this.path);
    } catch {
      // already gone
    }
  }
}
