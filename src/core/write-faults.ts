import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { createLogger, type Logger } from './log.ts';

/**
 * Write targets that are failing (an unwritable or full audit log, spool, working
 * folder, NAS…), reported by the component that owns them and read by the health
 * report: while one is listed, health is `degraded` and names the path and errno.
 *
 * A component calls `fail(target, path, err, {effect, retry})` when a write fails and
 * `ok(target)` when one succeeds again. `retry` (optional) is called every `retryMs`
 * while the fault lasts; returning true (writable again) clears it, so a target recovers
 * by itself even when nothing else writes to it.
 */
export interface WriteFault {
  /** Stable name of the write target, e.g. `audit`, `spool`, `netcdf:working`. */
  target: string;
  /** File or folder whose write failed. */
  path: string;
  /** `EROFS`, `ENOSPC`, `EACCES`, `EPERM`, `EIO`… (`EUNKNOWN` when the error had no code). */
  errno: string;
  message: string;
  /** What the failure means for users: "setpoints and downloads are refused", "samples held in memory"… */
  effect: string;
  since: string;
  last: string;
  failures: number;
}

interface Entry extends WriteFault {
  retry?: () => boolean;
}

export function errnoOf(err: unknown): string {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code ? code : 'EUNKNOWN';
}

/** The first line of an error's message, without the path Node repeats in it. */
function reason(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg
    .split('\n')[0]!
    .replace(/, \w+ '.*'$/, '')
    .replace(/^E[A-Z]+: /, '');
}

/**
 * `mkdir -p` that reports the real cause: Node's recursive mkdir says ENOENT on a
 * read-only file system; the first missing component is then made on its own to get
 * EROFS / EACCES / ENOSPC with its path.
 */
export function makeDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
    let missing = dir;
    while (!existsSync(dirname(missing)) && dirname(missing) !== missing) missing = dirname(missing);
    mkdirSync(missing);
    throw err;
  }
}

/** One problem line for the health report. */
export function describeWriteFault(f: WriteFault): string {
  return `${f.target}: cannot write ${f.path} (${f.errno}: ${f.message}) since ${f.since}, ${f.failures} failed write${f.failures === 1 ? '' : 's'}${f.effect ? `; ${f.effect}` : ''}`;
}

/** A write that failed and was refused as a whole: HTTP 503 with the reason. */
export class WriteFailedError extends Error {
  readonly statusCode = 503;
  constructor(
    readonly target: string,
    readonly path: string,
    readonly errno: string,
    message: string,
  ) {
    super(message);
    this.name = 'WriteFailedError';
  }
}

export class WriteFaults {
  private readonly faults = new Map<string, Entry>();
  private timer?: NodeJS.Timeout;
  private log: Logger;

  constructor(
    private readonly retryMs = 1000,
    log?: Logger,
  ) {
    this.log = log ?? createLogger('write-faults');
  }

  setLogger(log: Logger): void {
    this.log = log;
  }

  /** A write to `path` failed: reports (or refreshes) the fault of `target`; logs the first failure. */
  fail(target: string, path: string, err: unknown, o: { effect?: string; retry?: () => boolean } = {}): WriteFault {
    const now = new Date().toISOString();
    const prev = this.faults.get(target);
    const f: Entry = {
      target,
      path,
      errno: errnoOf(err),
      message: reason(err),
      effect: o.effect ?? prev?.effect ?? '',
      since: prev?.since ?? now,
      last: now,
      failures: (prev?.failures ?? 0) + 1,
      retry: o.retry ?? prev?.retry,
    };
    this.faults.set(target, f);
    if (!prev || prev.errno !== f.errno || prev.path !== f.path) this.log.error(describeWriteFault(f));
    if (f.retry) this.schedule();
    return this.view(f);
  }

  /** A write to `target` succeeded: clears its fault (logged with how long it lasted). */
  ok(target: string): void {
    const f = this.faults.get(target);
    if (!f) return;
    this.faults.delete(target);
    this.log.info(
      `${target}: ${f.path} is writable again after ${Math.round((Date.now() - Date.parse(f.since)) / 1000)} s (${f.failures} failed write${f.failures === 1 ? '' : 's'})`,
    );
  }

  get(target: string): WriteFault | undefined {
    const f = this.faults.get(target);
    return f ? this.view(f) : undefined;
  }

  list(): WriteFault[] {
    return [...this.faults.values()].map((f) => this.view(f));
  }

  /** Calls every fault's retry now (the timer does it every retryMs). */
  retryNow(): void {
    for (const f of [...this.faults.values()]) {
      if (!f.retry) continue;
      let fixed = false;
      try {
        fixed = f.retry();
      } catch {
        // Still failing: the fault stays as it was reported.
      }
      if (fixed && this.faults.get(f.target) === f) this.ok(f.target);
    }
  }

  private schedule(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.retryNow();
      if (![...this.faults.values()].some((f) => f.retry)) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    }, this.retryMs);
    this.timer.unref();
  }

  private view(f: Entry): WriteFault {
    const { retry: _retry, ...rest } = f;
    return rest;
  }
}

/** The process-wide registry the components report into and the health report reads. */
export const writeFaults = new WriteFaults(Number(process.env.OCTOPUS_WRITE_RETRY_MS) || 1000);
