import { appendFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SpoolConfig } from '../../src/config/instance-schema.ts';
import { Spool } from '../../src/bus/spool.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'octopus-spool-'));
  dirs.push(d);
  return d;
}
const cfg = (o: Partial<SpoolConfig> = {}) =>
  SpoolConfig.parse({ segment_bytes: 4096, max_bytes: 1 << 20, fsync: 'never', ...o });

describe('spool', () => {
  it('hands records out in append order and trims only what was acknowledged', () => {
    const s = Spool.open(tempDir(), cfg());
    for (let i = 0; i < 100; i++) s.append(`t/${i % 3}`, `payload ${i}`, 2);
    expect(s.depth()).toMatchObject({ messages: 100, samples: 200 });
    const first = s.read(30);
    expect(first.map((r) => r.payload.toString())).toEqual(Array.from({ length: 30 }, (_, i) => `payload ${i}`));
    expect(first[4]!.topic).toBe('t/1');
    s.ack(first[29]!.seq);
    expect(s.depth()).toMatchObject({ messages: 70, samples: 140 });
    const rest = s.read(1000);
    expect(rest.map((r) => r.seq)).toEqual(Array.from({ length: 70 }, (_, i) => i + 30));
    s.close();
  });

  it('reads records larger than its read chunk, and records appended between reads, intact', () => {
    const s = Spool.open(tempDir(), cfg({ segment_bytes: 64 << 20, max_bytes: 256 << 20 }));
    const big = (n: number) => `${n}:`.padEnd(1_500_000 + n, String.fromCharCode(97 + (n % 26)));
    s.append('t', 'small 0', 1);
    s.append('t', big(1), 1);
    expect(s.read(1).map((r) => r.payload.toString())).toEqual(['small 0']);
    s.append('t', 'small 2', 1);
    const got = s.read(10).map((r) => r.payload.toString());
    expect(got).toEqual([big(1), 'small 2']);
    for (let i = 3; i < 2000; i++) {
      s.append('t', `record ${i} `.repeat(i % 50), 1);
      if (i % 7 === 0)
        expect(s.read(3).every((r) => r.payload.toString().startsWith('record') || r.payload.length === 0)).toBe(true);
    }
    const all = s.read(10_000);
    expect(all.at(-1)!.seq).toBe(1999);
    expect(all.at(-1)!.payload.toString()).toBe(`record 1999 `.repeat(1999 % 50));
    s.close();
  });

  it('after a rewind, unacknowledged records are read again', () => {
    const s = Spool.open(tempDir(), cfg());
    for (let i = 0; i < 10; i++) s.append('t', `p${i}`, 1);
    const a = s.read(10);
    s.ack(a[3]!.seq);
    s.rewind();
    expect(s.read(10).map((r) => r.payload.toString())).toEqual(['p4', 'p5', 'p6', 'p7', 'p8', 'p9']);
    s.close();
  });

  it('deletes segment files once fully acknowledged', () => {
    const dir = tempDir();
    const s = Spool.open(dir, cfg());
    for (let i = 0; i < 500; i++) s.append('t', 'x'.repeat(100), 1);
    const segs = () => readdirSync(dir).filter((f) => f.startsWith('seg-')).length;
    expect(segs()).toBeGreaterThan(10);
    const all = s.read(1000);
    s.ack(all.at(-1)!.seq);
    expect(segs()).toBe(1);
    expect(s.depth().messages).toBe(0);
    s.close();
  });

  it('drops the oldest data past its bound and counts the dropped samples', () => {
    const s = Spool.open(tempDir(), cfg({ max_bytes: 16_384 }));
    for (let i = 0; i < 1000; i++) s.append('t', `${i}`.padEnd(100, '.'), 5);
    expect(s.diskBytes()).toBeLessThanOrEqual(16_384);
    expect(s.droppedSamples).toBeGreaterThan(0);
    expect(s.droppedSamples + s.depth().samples).toBe(5000);
    const kept = s.read(10_000);
    // What is left is the newest data, still in order, ending with the last append.
    expect(kept.at(-1)!.payload.toString().startsWith('999.')).toBe(true);
    expect(kept.map((r) => r.seq)).toEqual(kept.map((_, i) => kept[0]!.seq + i));
    s.close();
  });

  it('survives a restart: only unacknowledged records are replayed', async () => {
    const dir = tempDir();
    const s = Spool.open(dir, cfg());
    for (let i = 0; i < 50; i++) s.append('t', `p${i}`, 1);
    s.ack(s.read(20).at(-1)!.seq);
    s.close();
    const again = Spool.open(dir, cfg());
    expect(again.depth()).toMatchObject({ messages: 30, samples: 30 });
    const recs = again.read(100);
    expect(recs.map((r) => r.payload.toString())).toEqual(Array.from({ length: 30 }, (_, i) => `p${i + 20}`));
    // New appends continue the sequence.
    expect(again.append('t', 'p50', 1)).toBe(50);
    again.close();
  });

  it('truncates a torn tail left by a crash and keeps every whole record', () => {
    const dir = tempDir();
    const s = Spool.open(dir, cfg({ segment_bytes: 1 << 20 }));
    for (let i = 0; i < 10; i++) s.append('t', `p${i}`, 1);
    s.close();
    const seg = readdirSync(dir).find((f) => f.startsWith('seg-'))!;
    appendFileSync(join(dir, seg), Buffer.from([40, 0, 0, 0, 1, 2, 3])); // half a frame
    const again = Spool.open(dir, cfg({ segment_bytes: 1 << 20 }));
    expect(again.depth().messages).toBe(10);
    again.append('t', 'p10', 1);
    expect(again.read(100).map((r) => r.payload.toString())).toEqual(Array.from({ length: 11 }, (_, i) => `p${i}`));
    again.close();
  });
});
