import { isIPv6 } from 'node:net';

/** Limits of one throttle: `maxFailures` within `windowMs` → locked, first for `lockoutMs`, doubling up to `maxLockoutMs`. */
export interface ThrottleLimits {
  maxFailures: number;
  windowMs: number;
  lockoutMs: number;
  maxLockoutMs: number;
}

interface Entry {
  /** Failures in the current window, and when the window began. */
  failures: number;
  since: number;
  /** Locked until this instant (ms); 0 = not locked. */
  until: number;
  /** Lockouts so far: the next one lasts lockoutMs × 2^strikes (capped). Forgotten after a quiet maxLockoutMs. */
  strikes: number;
  last: number;
}

/**
 * Failure counters with lockout and exponential backoff, per key (an account, a client
 * address…), in memory. Bounded: at most `maxEntries` keys; when full, expired entries
 * go first, then the least recently touched ones, so a flood of distinct names or
 * addresses cannot grow memory (the flood's own address key locks it out first).
 */
export class Throttle {
  private readonly entries = new Map<string, Entry>();
  private swept = -Infinity;

  constructor(
    readonly limits: ThrottleLimits,
    private readonly now: () => number = Date.now,
    readonly maxEntries = 10_000,
  ) {}

  /** Milliseconds until `key` may try again (0 = now). */
  retryAfterMs(key: string): number {
    const e = this.entries.get(key);
    if (!e) return 0;
    return Math.max(0, e.until - this.now());
  }

  /** The longest wait of several keys (an account and an address). */
  wait(keys: string[]): number {
    return Math.max(0, ...keys.map((k) => this.retryAfterMs(k)));
  }

  /** Counts a failure for each key; returns the wait now imposed (0 when none of them is locked). */
  fail(keys: string[]): number {
    const t = this.now();
    for (const key of keys) {
      let e = this.entries.get(key);
      if (e) this.entries.delete(key); // re-inserted below: Map order = least recently touched first
      if (!e || t - e.last > this.limits.maxLockoutMs + this.limits.windowMs)
        e = { failures: 0, since: t, until: 0, strikes: 0, last: t };
      if (t - e.since > this.limits.windowMs) {
        e.failures = 0;
        e.since = t;
      }
      e.failures++;
      e.last = t;
      if (e.failures >= this.limits.maxFailures) {
        e.until = t + Math.min(this.limits.maxLockoutMs, this.limits.lockoutMs * 2 ** e.strikes);
        e.strikes++;
        e.failures = 0;
        e.since = t;
      }
      this.entries.set(key, e);
    }
    this.bound();
    return this.wait(keys);
  }

  /** A success forgets the key's failures (use for the account, not for the address). */
  succeed(key: string): void {
    this.entries.delete(key);
  }

  get size(): number {
    return this.entries.size;
  }

  private bound(): void {
    if (this.entries.size <= this.maxEntries) return;
    const t = this.now();
    // The full sweep of stale entries at most once a second; otherwise the oldest go (O(1) each).
    if (t - this.swept >= 1000) {
      this.swept = t;
      for (const [k, e] of this.entries) {
        if (e.until <= t && t - e.last > this.limits.windowMs) this.entries.delete(k);
      }
    }
    for (const k of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      this.entries.delete(k);
    }
  }
}

/** The throttle key of a client address: IPv4 as is, IPv6 by its /64 (one host usually owns a whole /64). */
export function addressKey(ip: string): string {
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return `ip:${v4[1]}`;
  if (!isIPv6(ip)) return `ip:${ip}`;
  const [head = '', tail = ''] = ip.toLowerCase().split('::');
  const h = head ? head.split(':') : [];
  const tl = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - tl.length).fill('0'), ...tl] : h;
  return `ip6:${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

/** "try again in N s" (rounded up, at least 1). */
export const seconds = (ms: number): number => Math.max(1, Math.ceil(ms / 1000));
