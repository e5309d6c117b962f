/**
 * The spool never loses data silently and never crashes on a failed write:
 * - damaged bytes at random offsets (10 seeded trials): only the damaged records are
 *   lost, each logged and counted in dropped messages/samples, the rest replayed in order;
 * - strangers in the folder (a folder named like a segment, foreign files) are named and
 *   do not stop it;
 * - a read-only, full or immutable folder (real tmpfs / chattr, not chmod): appends keep
 *   working from memory (gateway) or are refused (collector), the fault is reported with
 *   path and errno, and everything held is written once the folder is writable again.
 */
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { SpoolConfig } from '../../src/config/instance-schema.ts';
import { Spool, SpoolWriteError } from '../../src/bus/spool.ts';
import { decodeFrame } from '../../src/bus/spool-frame.ts';
import type { Logger } from '../../src/core/log.ts';
import { WriteFaults } from '../../src/core/write-faults.ts';
// mulberry32: a small seeded PRNG, so every trial is reproducible.
import { prng } from '../../src/sim/dynamics.ts';
import { immutable, mountTmpfs, type Mount } from '../support/faulty-fs.ts';

const dirs: string[] = [];
const mounts: Mount[] = [];
afterEach(() => {
  mounts.splice(0).forEach((m) => m.unmount());
  dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});
afterAll(() => mounts.forEach((m) => m.unmount()));
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'octopus-spool-faults-'));
  dirs.push(d);
  return d;
}
const cfg = (o: Partial<SpoolConfig> = {}) =>
  SpoolConfig.parse({ segment_bytes: 8192, max_bytes: 1 << 24, fsync: 'never', ...o });

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

/** Record layout of every segment file: which seq occupies which bytes. */
function layout(dir: string): Array<{ file: string; seq: number; start: number; end: number; samples: number }> {
  const out: Array<{ file: string; seq: number; start: number; end: number; samples: number }> = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.startsWith('seg-'))
    .sort()) {
    const buf = readFileSync(join(dir, file));
    for (let off = 0; off < buf.length;) {
      const f = decodeFrame(buf, off);
      if (f.kind !== 'ok') throw new Error(`${file}: not a clean segment at ${off}`);
      out.push({ file, seq: f.seq!, start: off, end: off + f.size, samples: f.samples });
      off += f.size;
    }
  }
  return out;
}

describe('spool damage', () => {
  it('damage at random offsets (10 seeded trials): only the damaged records are lost, each logged and counted', () => {
    for (let trial = 1; trial <= 10; trial++) {
      const rand = prng(trial * 7919);
      const dir = tempDir();
      const s = Spool.open(dir, cfg(), { log: capture() });
      const payloads: string[] = [];
      for (let i = 0; i < 300; i++) {
        const p = `{"i":${i},"x":"${'v'.repeat(40 + Math.floor(rand() * 200))}"}`;
        payloads.push(p);
        s.append(`lab/c${i % 3}/data`, p, 1 + (i % 5));
      }
      s.close();
      const records = layout(dir);
      expect(new Set(records.map((r) => r.file)).size).toBeGreaterThan(3);
      // 8 garbage bytes anywhere but in the newest record (whose damage cannot be told
      // from a write cut short by a crash; see the next test).
      const last = records.at(-1)!;
      let target: (typeof records)[number];
      let at: number;
      do {
        target = records[Math.floor(rand() * (records.length - 1))]!;
        at = target.start + Math.floor(rand() * (target.end - target.start));
      } while (target === last);
      const fileRecords = records.filter((r) => r.file === target.file);
      const fileEnd = fileRecords.at(-1)!.end;
      const len = Math.min(8, fileEnd - at);
      const garbage = Buffer.from(Array.from({ length: len }, () => Math.floor(rand() * 256)));
      const fd = openSync(join(dir, target.file), 'r+');
      writeSync(fd, garbage, 0, len, at);
      closeSync(fd);
      const damaged = records.filter((r) => r.file === target.file && r.start < at + len && r.end > at);

      const log = capture();
      const again = Spool.open(dir, cfg(), { log });
      const got = again.read(10_000);
      const lost = new Set(damaged.map((r) => r.seq));
      expect(
        got.map((r) => r.seq),
        `trial ${trial}: damage at ${target.file}:${at}`,
      ).toEqual(records.filter((r) => !lost.has(r.seq)).map((r) => r.seq));
      for (const r of got) expect(r.payload.toString()).toBe(payloads[r.seq]);
      expect(again.droppedMessages, `trial ${trial}`).toBe(damaged.length);
      expect(again.droppedSamples, `trial ${trial}`).toBe(damaged.reduce((n, r) => n + r.samples, 0));
      expect(again.corruptRecords).toBe(damaged.length);
      const lines = log.lines.filter((l) => l.includes('damaged bytes'));
      expect(lines, `trial ${trial}`).toHaveLength(1);
      expect(lines[0]).toContain(target.file);
      expect(lines[0]).toContain(`${damaged.length} record(s) (${damaged.reduce((n, r) => n + r.samples, 0)} samples)`);
      again.close();
      // Counted once: the damaged file was rewritten without the damage, a restart finds nothing new.
      const third = Spool.open(dir, cfg(), { log: capture() });
      expect(third.droppedMessages).toBe(damaged.length);
      expect(third.read(10_000).map((r) => r.seq)).toEqual(got.map((r) => r.seq));
      third.close();
    }
  });

  it('a write cut short at the end (a crash mid-append) is cut off and logged; nothing before it is lost', () => {
    const dir = tempDir();
    const s = Spool.open(dir, cfg({ segment_bytes: 1 << 20 }), { log: capture() });
    for (let i = 0; i < 50; i++) s.append('t', `p${i}`, 2);
    s.close();
    const file = readdirSync(dir).find((f) => f.startsWith('seg-'))!;
    const whole = readFileSync(join(dir, file));
    writeFileSync(join(dir, file), Buffer.concat([whole, whole.subarray(0, 20)]));
    const log = capture();
    const again = Spool.open(dir, cfg(), { log });
    expect(again.read(100).map((r) => r.payload.toString())).toEqual(Array.from({ length: 50 }, (_, i) => `p${i}`));
    expect(again.droppedMessages).toBe(0);
    expect(log.lines.some((l) => l.includes('20 bytes after the last whole record') && l.includes(file))).toBe(true);
    again.close();
  });

  it('names a folder called like a segment and foreign files, and starts anyway', () => {
    const dir = tempDir();
    const s = Spool.open(dir, cfg(), { log: capture() });
    for (let i = 0; i < 10; i++) s.append('t', `p${i}`, 1);
    s.close();
    mkdirSync(join(dir, 'seg-0000000000009999.log'));
    writeFileSync(join(dir, 'notes.txt'), 'hello');
    const log = capture();
    const again = Spool.open(dir, cfg(), { log });
    expect(again.foreign).toEqual(['notes.txt', 'seg-0000000000009999.log (a folder)']);
    expect(log.lines.find((l) => l.startsWith('warn') && l.includes('notes.txt'))).toContain(
      'seg-0000000000009999.log (a folder)',
    );
    expect(again.read(100).map((r) => r.payload.toString())).toEqual(Array.from({ length: 10 }, (_, i) => `p${i}`));
    again.append('t', 'p10', 1);
    again.close();
    expect(readFileSync(join(dir, 'notes.txt'), 'utf8')).toBe('hello');
  });
});

describe('spool on a folder that cannot be written (real tmpfs and chattr)', () => {
  it('read-only at start: the gateway spool keeps records in memory, reports path and EROFS, and writes them when it is writable again', () => {
    const base = tempDir();
    const m = mountTmpfs(join(base, 'mnt'), 1024);
    mounts.push(m);
    const dir = join(m.dir, 'spool');
    m.readOnly();
    const faults = new WriteFaults(60_000, capture());
    const s = Spool.open(dir, cfg(), { log: capture(), faults, onWriteFailure: 'memory' });
    expect(s.degraded).toBe(true);
    for (let i = 0; i < 20; i++) s.append('t', `p${i}`, 3);
    expect(faults.get('spool')).toMatchObject({ errno: 'EROFS' });
    expect(faults.get('spool')!.path.startsWith(m.dir)).toBe(true);
    expect(s.inMemory).toBe(20);
    // Handed out and acknowledged from memory: the broker has them, they need no disk.
    const first = s.read(5);
    expect(first.map((r) => r.payload.toString())).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
    s.ack(first.at(-1)!.seq);
    expect(s.depth()).toMatchObject({ messages: 15, samples: 45 });
    faults.retryNow();
    expect(faults.get('spool')).toBeDefined();
    m.writable();
    faults.retryNow();
    expect(faults.get('spool')).toBeUndefined();
    expect(s.degraded).toBe(false);
    expect(s.inMemory).toBe(0);
    s.append('t', 'p20', 3);
    expect(s.read(100).map((r) => r.payload.toString())).toEqual(Array.from({ length: 16 }, (_, i) => `p${i + 5}`));
    s.close();
    const again = Spool.open(dir, cfg(), { log: capture(), faults });
    expect(again.read(100).map((r) => r.payload.toString())).toEqual(Array.from({ length: 16 }, (_, i) => `p${i + 5}`));
    again.close();
  });

  it('a backlog on a folder turned read-only: sent from disk, new records from memory, deletions and the cursor wait for the folder', () => {
    const base = tempDir();
    const m = mountTmpfs(join(base, 'mnt'), 1024);
    mounts.push(m);
    const dir = join(m.dir, 'spool');
    const faults = new WriteFaults(60_000, capture());
    const s = Spool.open(dir, cfg({ segment_bytes: 1024 }), { log: capture(), faults, onWriteFailure: 'memory' });
    for (let i = 0; i < 30; i++) s.append('t', `old ${i}`.padEnd(100, '.'), 1);
    s.close();
    m.readOnly();
    const again = Spool.open(dir, cfg({ segment_bytes: 1024 }), { log: capture(), faults, onWriteFailure: 'memory' });
    for (let i = 0; i < 5; i++) again.append('t', `new ${i}`, 1);
    expect(faults.get('spool')).toMatchObject({ errno: 'EROFS' });
    const all = again.read(100);
    expect(all.map((r) => r.payload.toString().replace(/\.+$/, ''))).toEqual([
      ...Array.from({ length: 30 }, (_, i) => `old ${i}`),
      ...Array.from({ length: 5 }, (_, i) => `new ${i}`),
    ]);
    again.ack(all.at(-1)!.seq);
    expect(again.depth().messages).toBe(0);
    const files = readdirSync(dir).filter((f) => f.startsWith('seg-'));
    expect(files.length).toBeGreaterThan(1); // not deleted yet: the folder is read-only
    m.writable();
    faults.retryNow();
    expect(faults.get('spool')).toBeUndefined();
    again.close();
    const third = Spool.open(dir, cfg(), { log: capture(), faults });
    expect(third.read(100)).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.startsWith('seg-')).length).toBeLessThanOrEqual(1);
    third.close();
  });

  it('full disk (ENOSPC): memory mode keeps going, counts what it must drop, and writes the rest once there is room; refuse mode throws', () => {
    const base = tempDir();
    const m = mountTmpfs(join(base, 'mnt'), 256);
    mounts.push(m);
    writeFileSync(join(m.dir, 'filler'), Buffer.alloc(128 * 1024));
    const faults = new WriteFaults(60_000, capture());
    const dir = join(m.dir, 'gw');
    const gw = Spool.open(dir, cfg({ segment_bytes: 16 * 1024 }), {
      log: capture(),
      faults,
      onWriteFailure: 'memory',
      memoryBytes: 40_000,
    });
    const payload = (i: number) => `${i}:`.padEnd(1000, 'x');
    for (let i = 0; i < 400; i++) gw.append('t', payload(i), 1);
    expect(faults.get('spool')).toMatchObject({ errno: 'ENOSPC' });
    // Nothing vanished without a trace: every append is on disk, in memory, or counted as dropped.
    expect(gw.depth().messages + gw.droppedMessages).toBe(400);
    expect(gw.droppedSamples).toBe(gw.droppedMessages);
    expect(gw.droppedMessages).toBeGreaterThan(0);
    expect(gw.inMemory).toBeGreaterThan(0);
    const kept = gw.depth().messages;

    // Refuse mode (the collector's buffer) on the same full disk.
    const faults2 = new WriteFaults(60_000, capture());
    const col = Spool.open(join(m.dir, 'col'), cfg(), { log: capture(), faults: faults2, target: 'influx-buffer' });
    expect(() => col.append('t', payload(0), 1)).toThrow(SpoolWriteError);
    expect(faults2.get('influx-buffer')).toMatchObject({ errno: 'ENOSPC' });
    col.close();

    // Room again: what memory held is written, in order, and survives a restart.
    rmSync(join(m.dir, 'filler'));
    faults.retryNow();
    expect(faults.get('spool')).toBeUndefined();
    expect(gw.inMemory).toBe(0);
    gw.close();
    const again = Spool.open(dir, cfg(), { log: capture(), faults });
    const got = again.read(1000);
    expect(got).toHaveLength(kept);
    for (const r of got) expect(r.payload.toString()).toBe(payload(r.seq));
    expect(got.map((r) => r.seq)).toEqual([...got.map((r) => r.seq)].sort((a, b) => a - b));
    expect(again.droppedMessages).toBe(400 - kept);
    again.close();
  });

  it('an immutable folder (chattr +i): EPERM reported, nothing thrown, recovered when the attribute is cleared', () => {
    const dir = join(tempDir(), 'spool');
    const faults = new WriteFaults(60_000, capture());
    const s = Spool.open(dir, cfg(), { log: capture(), faults, onWriteFailure: 'memory' });
    s.append('t', 'before', 1);
    s.close();
    immutable(dir, true);
    try {
      const again = Spool.open(dir, cfg(), { log: capture(), faults, onWriteFailure: 'memory' });
      again.append('t', 'during', 1);
      expect(faults.get('spool')).toMatchObject({ errno: 'EPERM' });
      expect(again.read(10).map((r) => r.payload.toString())).toEqual(['before', 'during']);
      immutable(dir, false);
      faults.retryNow();
      expect(faults.get('spool')).toBeUndefined();
      again.close();
      const third = Spool.open(dir, cfg(), { log: capture(), faults });
      expect(third.read(10).map((r) => r.payload.toString())).toEqual(['before', 'during']);
      third.close();
    } finally {
      immutable(dir, false);
    }
  });
});
