import {
  closeSync,
  existsSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readFileSync,
  statfsSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { createLogger, type Logger } from '../core/log.ts';
import { errnoOf, makeDir, WriteFailedError, writeFaults, type WriteFaults } from '../core/write-faults.ts';

/** One line of `<data_dir>/state/audit.jsonl`. */
export interface AuditEntry {
  ts: string;
  /** Who: `api:<user>`, `cli:<os user>`, `mqtt`, `plc:<chamber>/<tag>`… */
  who: string;
  /** download | run_start | run_stop | setpoint | user_add | token_create | token_revoke … */
  action: string;
  /** What: experiment/run/file, or chamber/tag for a setpoint. */
  what: string;
  /** Byte range, variables and time subset of a download; value of a setpoint… */
  detail?: Record<string, unknown>;
  bytes?: number;
}

export const auditFile = (dataDir: string): string => join(dataDir, 'state', 'audit.jsonl');

/** Free bytes below which the audit log counts as full (an entry is a few hundred bytes). */
const MIN_FREE_BYTES = 4096;

/**
 * Appends one entry to an audit log (synchronously: an entry is on disk before the
 * caller goes on; lines are short, so concurrent appends from several processes stay
 * whole with O_APPEND). A write cut short (disk full) is truncated away, so the log
 * never keeps half a line; the error is thrown.
 */
export function appendAudit(file: string, entry: Omit<AuditEntry, 'ts'> & { ts?: string }): AuditEntry {
  const full: AuditEntry = { ts: entry.ts ?? new Date().toISOString(), ...entry };
  makeDir(dirname(file));
  const buf = Buffer.from(`${JSON.stringify(full)}\n`);
  const fd = openSync(file, 'a', 0o600);
  try {
    const before = fstatSync(fd).size;
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(fd, buf, off);
    } catch (err) {
      if (off > 0) {
        try {
          ftruncateSync(fd, before);
        } catch {
          // The partial line stays; readers skip lines that are not JSON.
        }
      }
      throw err;
    }
  } finally {
    closeSync(fd);
  }
  return full;
}

/** The audit log could not be written: the request that needed it is refused (HTTP 503). */
export class AuditWriteError extends WriteFailedError {}

/**
 * The audit log of a data directory: downloads, run start/stop, setpoints, account
 * changes. Control actions and downloads must be audited, so a log that cannot be
 * written refuses them: `ensureWritable()` before acting, `write()` (throws
 * {@link AuditWriteError}, 503) for an entry the request depends on, `record()` (never
 * throws) for an entry written after the fact (a download's close). A failure is
 * reported in health (target `audit`, path and errno) until a write or the periodic
 * probe succeeds again.
 */
export class AuditLog {
  private readonly log: Logger;

  constructor(
    readonly file: string,
    private readonly faults: WriteFaults = writeFaults,
    log?: Logger,
  ) {
    this.log = log ?? createLogger('audit');
  }

  static forDataDir(dataDir: string, faults?: WriteFaults): AuditLog {
    return new AuditLog(auditFile(dataDir), faults);
  }

  /** Writes an entry; throws AuditWriteError (503, naming the path and errno) when it cannot. */
  write(entry: Omit<AuditEntry, 'ts'> & { ts?: string }): AuditEntry {
    try {
      const e = appendAudit(this.file, entry);
      this.faults.ok('audit');
      return e;
    } catch (err) {
      throw this.failed(err, `${entry.action} ${entry.what}`);
    }
  }

  /** Writes an entry after the fact; a failure is logged (with the entry) and reported in health, never thrown. */
  record(entry: Omit<AuditEntry, 'ts'> & { ts?: string }): AuditEntry | undefined {
    try {
      return this.write(entry);
    } catch (err) {
      this.log.error(`${(err as Error).message}; entry not recorded: ${JSON.stringify(entry)}`);
      return undefined;
    }
  }

  /**
   * Throws AuditWriteError unless the log can take an entry now (the folder exists or
   * can be made, the file opens for append, the disk has room): call it before a control
   * action or a download, so nothing happens unaudited.
   */
  ensureWritable(what = 'request'): void {
    try {
      this.probe();
    } catch (err) {
      throw this.failed(err, what);
    }
  }

  /** The newest `limit` entries, oldest first, optionally only one action or one who. */
  read(o: { limit?: number; action?: string; who?: string } = {}): AuditEntry[] {
    if (!existsSync(this.file)) return [];
    const all = readFileSync(this.file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as AuditEntry];
        } catch {
          return [];
        }
      });
    const hits = all.filter((e) => (!o.action || e.action === o.action) && (!o.who || e.who === o.who));
    return hits.slice(-(o.limit ?? 1000));
  }

  private probe(): void {
    const dir = dirname(this.file);
    makeDir(dir);
    closeSync(openSync(this.file, 'a', 0o600));
    const fs = statfsSync(dir);
    const free = (process.getuid?.() === 0 ? fs.bfree : fs.bavail) * fs.bsize;
    if (free < MIN_FREE_BYTES)
      throw Object.assign(new Error(`no space left on device (${free} bytes free)`), { code: 'ENOSPC' });
  }

  private failed(err: unknown, what: string): AuditWriteError {
    if (err instanceof AuditWriteError) return err;
    const f = this.faults.fail('audit', this.file, err, {
      effect: 'setpoints, run start/stop, downloads and account changes are refused until it can be written',
      retry: () => {
        this.probe();
        return true;
      },
    });
    return new AuditWriteError(
      'audit',
      this.file,
      errnoOf(err),
      `audit log ${this.file} cannot be written (${f.errno}: ${f.message}): ${what} refused, it could not be audited`,
    );
  }
}
