/** The archive lease: one holder at a time, takeover when stale or when its process is gone. */
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArchiveLease } from '../../src/collector/sinks/netcdf/lease.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-lease-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ArchiveLease', () => {
  it('one holder at a time; the others take over once it is stale, or at once after a release', () => {
    const d = mkdtempSync(join(dir, 'a-'));
    let now = Date.now();
    const a = new ArchiveLease(d, 5000, () => now);
    const b = new ArchiveLease(d, 5000, () => now);
    expect(a.beat()).toBe(true);
    expect(b.beat()).toBe(false);
    expect(a.beat()).toBe(true);
    expect(b.current()).toBe(a.owner);
    // a stops refreshing (hung or killed on another host): stale after the ttl
    now += 6000;
    const old = new Date(now - 6000);
    utimesSync(a.path, old, old);
    expect(b.beat()).toBe(true);
    expect(a.beat()).toBe(false); // a notices it lost the lease
    expect(a.holder).toBe(false);
    b.release();
    expect(a.beat()).toBe(true);
  });

  it('a lease of a process of this host that is gone is taken over without waiting', () => {
    const d = mkdtempSync(join(dir, 'b-'));
    writeFileSync(join(d, '.archiver.lease'), `${hostname()}-999999999-abcdef\n`);
    const c = new ArchiveLease(d, 60_000);
    expect(c.beat()).toBe(true);
    expect(c.current()).toBe(c.owner);
  });

  it('a lease of a live process is respected', () => {
    const d = mkdtempSync(join(dir, 'c-'));
    writeFileSync(join(d, '.archiver.lease'), `${hostname()}-${process.pid}-abcdef\n`);
    expect(new ArchiveLease(d, 60_000).beat()).toBe(false);
  });
});
