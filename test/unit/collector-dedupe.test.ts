/**
 * Duplicate detection of data messages by (gw, ep, seq): redeliveries are dropped, a
 * gateway restarted with an empty data folder (new epoch, seq from 0) is not, and a
 * forged far-ahead seq cannot make the real messages of a stream look old.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataMessage, encodeData, newEpoch } from '../../src/bus/payload.ts';
import { Dedupe, JUMP, messageKey, parseMessageKey, WINDOW } from '../../src/collector/dedupe.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-dedupe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('dedupe by (gw, ep, seq)', () => {
  it('drops a redelivered message and counts it, also when it comes back out of order', () => {
    const d = new Dedupe();
    for (let s = 0; s < 10; s++) expect(d.check('gw', 'e1', s)).toBe('new');
    expect(d.check('gw', 'e1', 3)).toBe('duplicate');
    expect(d.check('gw', 'e1', 12)).toBe('new');
    expect(d.check('gw', 'e1', 11)).toBe('new'); // reordered, not seen before
    expect(d.check('gw', 'e1', 11)).toBe('duplicate');
    expect(d.duplicates).toBe(2);
  });

  it('takes a gateway that restarted at seq 0 with a new epoch as new messages', () => {
    const d = new Dedupe();
    for (let s = 0; s < 50_000; s++) d.check('gw', 'before', s);
    for (let s = 0; s < 100; s++) expect(d.check('gw', 'after', s)).toBe('new');
    expect(d.duplicates + d.stale).toBe(0);
  });

  it('drops a message older than the window of its stream, and says so in a counter', () => {
    const d = new Dedupe();
    d.check('gw', 'e', 0);
    d.check('gw', 'e', WINDOW + 10);
    expect(d.check('gw', 'e', 5)).toBe('stale');
    expect(d.stale).toBe(1);
  });

  it('does not let one forged far-ahead seq make the real messages look old', () => {
    const d = new Dedupe();
    for (let s = 0; s < 100; s++) d.check('gw', 'e', s);
    expect(d.check('gw', 'e', 100 + JUMP + 5)).toBe('unconfirmed-jump');
    for (let s = 100; s < 200; s++) expect(d.check('gw', 'e', s)).toBe('new');
    expect(d.jumps).toBe(1);
    // Another stream is never affected.
    expect(d.check('gw', 'other', 3)).toBe('new');
  });

  it('follows a real jump once the next message confirms it', () => {
    const d = new Dedupe();
    d.check('gw', 'e', 1);
    const far = 1 + JUMP + 1000;
    expect(d.check('gw', 'e', far)).toBe('unconfirmed-jump');
    expect(d.check('gw', 'e', far + 1)).toBe('new');
    expect(d.check('gw', 'e', far)).toBe('duplicate');
  });

  it('still accepts legacy payloads without an epoch, restarting the numbering after a large drop', () => {
    const d = new Dedupe();
    for (let s = 200_000; s < 200_010; s++) d.check('gw', undefined, s);
    expect(d.check('gw', undefined, 200_005)).toBe('duplicate');
    expect(d.check('gw', undefined, 0)).toBe('new');
    expect(d.check('gw', undefined, 1)).toBe('new');
  });

  it('survives a restart through its saved state', () => {
    const d = new Dedupe();
    for (let s = 0; s < 1000; s += 2) d.check('gw', 'e', s);
    const file = join(dir, 'state.json');
    d.save(file);
    const e = new Dedupe();
    expect(e.load(file)).toBeUndefined();
    expect(e.check('gw', 'e', 500)).toBe('duplicate');
    expect(e.check('gw', 'e', 501)).toBe('new');
    expect(e.load(join(dir, 'missing.json'))).toBeUndefined();
  });

  it('forgets a message whose delivery failed, so that its redelivery is new', () => {
    const d = new Dedupe();
    d.check('gw', 'e', 7);
    d.forget('gw', 'e', 7);
    expect(d.check('gw', 'e', 7)).toBe('new');
  });

  it('stores the identity with the buffered message and reads it back', () => {
    expect(parseMessageKey(messageKey({ gw: 'g w"1', ep: 'x', seq: 42 }))).toEqual({ gw: 'g w"1', ep: 'x', seq: 42 });
    expect(parseMessageKey('chamber-a')).toBeUndefined();
  });
});

describe('data payload epoch', () => {
  it('the fast encoder writes what the schema accepts, with and without ep', () => {
    const ep = newEpoch();
    const samples = [{ chamber: 'a', tag: 't', ts: 1, value: 2.5, q: 'good' as const }];
    const withEp = DataMessage.parse(JSON.parse(encodeData('gw', 3, 'a', samples, ep)));
    expect(withEp).toMatchObject({ gw: 'gw', ep, seq: 3, chamber: 'a' });
    expect(DataMessage.parse(JSON.parse(encodeData('gw', 3, 'a', samples))).ep).toBeUndefined();
    expect(DataMessage.safeParse({ v: 1, gw: 'g', ep: 'Bad Epoch"', seq: 1, chamber: 'a', samples: [] }).success).toBe(
      false,
    );
  });
});
