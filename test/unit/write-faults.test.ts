/**
 * The write-fault registry and the audit log on real failing disks (a full tmpfs for
 * ENOSPC, `chattr +i` for EPERM): a failed audit write is refused with path and errno,
 * never leaves half a line, never throws where the caller cannot handle it, and clears
 * by itself once the disk takes writes again. Process-wide handlers keep a process alive
 * through an unhandled rejection and an I/O exception, and stop it in order on a bug.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { withFaults } from '../../src/api/health-faults.ts';
import type { HealthReport } from '../../src/core/health.ts';
import { AuditLog, AuditWriteError } from '../../src/auth/audit.ts';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import type { Logger } from '../../src/core/log.ts';
import { UnexpectedErrors } from '../../src/core/unexpected.ts';
import { describeWriteFault, WriteFaults } from '../../src/core/write-faults.ts';
import { immutable, mountTmpfs, type Mount } from '../support/faulty-fs.ts';

const dirs: string[] = [];
const mounts: Mount[] = [];
afterEach(() => {
  mounts.splice(0).forEach((m) => m.unmount());
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'octopus-write-faults-'));
  dirs.push(d);
  return d;
};
function capture(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const log = {
    lines,
    debug: () => {},
    info: (m: string) => void lines.push(`info ${m}`),
    warn: (m: string) => void lines.push(`warn ${m}`),
    error: (m: string) => void lines.push(`error ${m}`),
    child: () => log,
  };
  return log;
}
const base: HealthReport = {
  status: 'ok',
  gateway: 'g',
  version: '0',
  uptime_s: 1,
  drivers: [],
  broker: { url: 'mqtt://x', embedded: true, connected: true, reconnects: 0 },
  spool: { messages: 0, bytes: 0, samples: 0, dropped_samples: 0 },
  published: { messages: 0, samples: 0 },
  sinks: {},
  problems: [],
};

describe('write-fault registry', () => {
  it('lists a failing target with path and errno in health until it succeeds again, logging both edges once', () => {
    const log = capture();
    const faults = new WriteFaults(60_000, log);
    const err = Object.assign(new Error("EROFS: read-only file system, open '/x/a'"), { code: 'EROFS' });
    faults.fail('netcdf:working', '/x/a', err, { effect: 'runs are kept in memory' });
    faults.fail('netcdf:working', '/x/a', err);
    const f = faults.get('netcdf:working')!;
    expect(f).toMatchObject({
      target: 'netcdf:working',
      path: '/x/a',
      errno: 'EROFS',
      message: 'read-only file system',
      failures: 2,
      effect: 'runs are kept in memory',
    });
    expect(describeWriteFault(f)).toMatch(
      /^netcdf:working: cannot write \/x\/a \(EROFS: read-only file system\) since .*, 2 failed writes; runs are kept in memory$/,
    );
    const h = withFaults(base, faults, new UnexpectedErrors());
    expect(h.status).toBe('degraded');
    expect(h.write_faults).toEqual([f]);
    expect(h.problems).toEqual([describeWriteFault(f)]);
    expect(log.lines.filter((l) => l.startsWith('error'))).toHaveLength(1);
    faults.ok('netcdf:working');
    expect(withFaults(base, faults, new UnexpectedErrors())).toMatchObject({
      status: 'ok',
      write_faults: [],
      problems: [],
    });
    expect(log.lines.at(-1)).toMatch(/^info netcdf:working: \/x\/a is writable again after \d+ s \(2 failed writes\)$/);
  });

  it('shows unexpected errors in health: counted, the last one named, degraded while recent', () => {
    const errors = new UnexpectedErrors();
    expect(withFaults(base, new WriteFaults(60_000, capture()), errors)).toMatchObject({
      status: 'ok',
      unexpected_errors: { count: 0 },
    });
    errors.record(
      'unhandledRejection',
      Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }),
    );
    const h = withFaults(base, new WriteFaults(60_000, capture()), errors);
    expect(h.status).toBe('degraded');
    expect(h.unexpected_errors).toMatchObject({
      count: 1,
      last: { kind: 'unhandledRejection', errno: 'ENOSPC', message: 'Error: ENOSPC: no space left on device, write' },
    });
    expect(h.problems[0]).toMatch(/^1 unexpected error since start, the last at .*: Error: ENOSPC/);
    expect(errors.recent(Date.now() + 11 * 60_000)).toBe(false);
  });

  it('calls retry until it reports the target writable', () => {
    const faults = new WriteFaults(60_000, capture());
    let fixed = false;
    faults.fail('nas', '/nas', Object.assign(new Error('gone'), { code: 'EIO' }), { retry: () => fixed });
    faults.retryNow();
    expect(faults.get('nas')).toBeDefined();
    fixed = true;
    faults.retryNow();
    expect(faults.get('nas')).toBeUndefined();
  });
});

describe('audit log on a failing disk', () => {
  it('full disk (ENOSPC): refused with path and errno, no half line left, recovers by itself', () => {
    const m = mountTmpfs(join(tempDir(), 'state'), 64);
    mounts.push(m);
    const faults = new WriteFaults(60_000, capture());
    const file = join(m.dir, 'audit.jsonl');
    const audit = new AuditLog(file, faults, capture());
    audit.write({ who: 'api:ada', action: 'run_start', what: 'x/r001' });
    writeFileSync(join(m.dir, 'filler'), Buffer.alloc(0));
    // Fill the disk to the last byte with the audit log itself: the entry that does not fit must vanish whole.
    let err: unknown;
    for (let i = 0; i < 10_000 && !err; i++) {
      try {
        audit.write({
          who: 'api:ada',
          action: 'download',
          what: `x/r001/data.nc`,
          detail: { pad: 'p'.repeat(900), i },
        });
      } catch (e) {
        err = e;
      }
    }
    expect(err).toBeInstanceOf(AuditWriteError);
    expect(err).toMatchObject({ statusCode: 503, path: file, errno: 'ENOSPC' });
    expect((err as Error).message).toContain(`audit log ${file} cannot be written (ENOSPC`);
    const text = readFileSync(file, 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    for (const line of text.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
    expect(() => audit.ensureWritable('setpoint c1/co2')).toThrow(/setpoint c1\/co2 refused/);
    expect(
      audit.record({ who: 'api:ada', action: 'download', what: 'y', detail: { pad: 'p'.repeat(900) } }),
    ).toBeUndefined();
    expect(faults.get('audit')).toMatchObject({ errno: 'ENOSPC', path: file });
    // Room again (an operator cleans up): the periodic probe clears the fault.
    unlinkSync(file);
    faults.retryNow();
    expect(faults.get('audit')).toBeUndefined();
    expect(audit.write({ who: 'api:ada', action: 'run_stop', what: 'x/r001' }).action).toBe('run_stop');
  });

  it('an immutable file (chattr +i): EPERM, and writable again once cleared', () => {
    const dir = tempDir();
    const faults = new WriteFaults(60_000, capture());
    const audit = new AuditLog(join(dir, 'state', 'audit.jsonl'), faults, capture());
    audit.write({ who: 'cli:root', action: 'user_add', what: 'ada' });
    immutable(audit.file, true);
    try {
      expect(() => audit.write({ who: 'cli:root', action: 'user_add', what: 'bob' })).toThrow(AuditWriteError);
      expect(faults.get('audit')).toMatchObject({ errno: 'EPERM', path: audit.file });
      expect(() => audit.ensureWritable()).toThrow(/EPERM/);
    } finally {
      immutable(audit.file, false);
    }
    faults.retryNow();
    expect(faults.get('audit')).toBeUndefined();
    audit.write({ who: 'cli:root', action: 'user_add', what: 'bob' });
    expect(audit.read().map((e) => e.what)).toEqual(['ada', 'bob']);
  });
});

describe('process-wide handlers', () => {
  const script = (body: string) => `
import { installProcessHandlers, unexpectedErrors } from './src/core/unexpected.ts';
const log = { debug() {}, info() {}, warn() {}, error: (m) => process.stdout.write('LOG ' + m + '\\n'), child() { return log; } };
installProcessHandlers(log, (why) => { process.stdout.write('FATAL ' + why + '\\n'); setTimeout(() => process.exit(3), 10); });
${body}
setTimeout(() => { process.stdout.write('ALIVE ' + unexpectedErrors.count + '\\n'); process.exit(0); }, 300);
`;
  const run = (body: string) =>
    spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(body)], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });

  it('an unhandled rejection and an uncaught I/O error are logged and counted; the process goes on', () => {
    const r = run(`
Promise.reject(new Error('nobody awaited me'));
setTimeout(() => { throw Object.assign(new Error('EROFS: read-only file system, write'), { code: 'EROFS', syscall: 'write' }); }, 20);`);
    expect(r.stdout).toContain('LOG unhandled promise rejection (1 so far): Error: nobody awaited me; carrying on');
    expect(r.stdout).toMatch(/LOG uncaught EROFS from write .*carrying on/);
    expect(r.stdout).toContain('ALIVE 2');
    expect(r.status).toBe(0);
  });

  it('any other uncaught exception stops the process in order (onFatal), not mid-write', () => {
    const r = run(`setTimeout(() => { null.x; }, 20);`);
    expect(r.stdout).toMatch(/LOG uncaught exception: TypeError: .*stopping in order/);
    expect(r.stdout).toContain('FATAL uncaught exception: TypeError');
    expect(r.stdout).not.toContain('ALIVE');
    expect(r.status).toBe(3);
  });
});
