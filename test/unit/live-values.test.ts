import { describe, expect, it } from 'vitest';
import { LiveValues } from '../../src/web/live.ts';

const msg = (chamber: string, ts: number, value: number) => ({
  v: 1 as const,
  gw: 'gw1',
  seq: 1,
  chamber,
  samples: [{ tag: 'air_temperature', ts, value, q: 'good' as const }],
});

describe('live view values', () => {
  it('lists only the configured chambers', () => {
    const live = new LiveValues(() => 1_000_000, { chambers: ['c1'] });
    live.accept(msg('c1', 999_000, 21));
    live.accept(msg('fake-1', 999_000, 99));
    live.status('fake-2', { state: 'online', ts: 1 });
    expect(live.snapshot().map((c) => c.chamber)).toEqual(['c1']);
  });

  it('ignores values stamped beyond the future bound, so they cannot pin a tag', () => {
    const now = 1_000_000;
    const live = new LiveValues(() => now, { chambers: ['c1'], maxFutureMs: 10_000 });
    live.accept(msg('c1', now + 59_000, -999));
    live.accept(msg('c1', now - 500, 21.5));
    live.accept(msg('c1', now + 5_000, 22)); // within clock skew: shown
    expect(live.snapshot()[0]!.tags.air_temperature).toMatchObject({ value: 22 });
    expect(live.futureDated).toBe(1);
  });
});
