import { describe, expect, it } from 'vitest';
import { safeNext } from '../../src/web/redirect.ts';
import { addressKey, seconds, Throttle } from '../../src/web/throttle.ts';
import { HOSTILE_NEXT } from '../support/web.ts';

describe('safe next (same-origin paths only)', () => {
  it.each(HOSTILE_NEXT)('%j falls back to /', (n) => {
    expect(safeNext(n)).toBe('/');
  });
  it('keeps paths, queries and fragments of this site', () => {
    expect(safeNext('/experiments')).toBe('/experiments');
    expect(safeNext('/experiments?text=wheat%20drought&from=2025-03-01')).toBe(
      '/experiments?text=wheat%20drought&from=2025-03-01',
    );
    expect(safeNext('/experiments/drought-2025#runs-h')).toBe('/experiments/drought-2025#runs-h');
    expect(safeNext('/a/../admin')).toBe('/admin');
    expect(safeNext(undefined)).toBe('/');
    expect(safeNext(['/x'])).toBe('/');
    expect(safeNext(`/${'a'.repeat(3000)}`)).toBe('/');
  });
});

describe('throttle: lockout with exponential backoff, bounded memory', () => {
  it('locks after max failures, for lockout, doubling each time up to the cap; a success forgets', () => {
    let t = 1_000_000;
    const th = new Throttle({ maxFailures: 3, windowMs: 60_000, lockoutMs: 10_000, maxLockoutMs: 25_000 }, () => t);
    expect(th.fail(['a'])).toBe(0);
    expect(th.fail(['a'])).toBe(0);
    expect(th.fail(['a'])).toBe(10_000);
    expect(th.retryAfterMs('a')).toBe(10_000);
    t += 10_000;
    expect(th.retryAfterMs('a')).toBe(0);
    th.fail(['a']);
    th.fail(['a']);
    expect(th.fail(['a'])).toBe(20_000);
    t += 20_000;
    th.fail(['a']);
    th.fail(['a']);
    expect(th.fail(['a'])).toBe(25_000); // capped
    th.succeed('a');
    expect(th.retryAfterMs('a')).toBe(0);
    expect(th.retryAfterMs('b')).toBe(0);
    expect(th.wait(['a', 'b'])).toBe(0);
  });

  it('failures spread wider than the window do not lock', () => {
    let t = 0;
    const th = new Throttle({ maxFailures: 3, windowMs: 1000, lockoutMs: 10_000, maxLockoutMs: 10_000 }, () => t);
    for (let i = 0; i < 10; i++) {
      expect(th.fail(['k'])).toBe(0);
      if (i % 2) t += 1001;
    }
  });

  it('a flood of distinct keys stays within maxEntries', () => {
    let t = 0;
    const th = new Throttle({ maxFailures: 3, windowMs: 1000, lockoutMs: 10_000, maxLockoutMs: 10_000 }, () => t, 1000);
    for (let i = 0; i < 50_000; i++) {
      th.fail([`user:flood-${i}`]);
      if (i % 100 === 0) t += 1;
    }
    expect(th.size).toBeLessThanOrEqual(1000);
  });

  it('keys IPv6 clients by /64 and IPv4-mapped addresses as IPv4', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).toBe(addressKey('2001:db8:1:2:bbbb::99'));
    expect(addressKey('2001:db8:1:2::1')).not.toBe(addressKey('2001:db8:1:3::1'));
    expect(addressKey('::ffff:10.0.0.7')).toBe('ip:10.0.0.7');
    expect(addressKey('10.0.0.7')).toBe('ip:10.0.0.7');
    expect(seconds(1)).toBe(1);
    expect(seconds(60_000)).toBe(60);
  });
});
