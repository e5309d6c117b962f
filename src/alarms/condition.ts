/**
 * One watched condition (a chamber's deviation of one variable, its door, its status…)
 * with a minimum duration and hysteresis. Pure: the caller passes the time.
 *
 * - `ok` → `pending` when the condition goes out (`out`), remembering since when;
 * - `pending` → `ok` when it is back before `minMs` elapsed (a spike: nothing raised);
 * - `pending` → `active` once it has been out for `minMs` (→ `raise`), checked on each
 *   update and on each tick;
 * - `active` → `ok` only when it is back with hysteresis (`back`, e.g. |dev| ≤ band −
 *   hysteresis) (→ `clear`). Between the two thresholds an active alarm stays active.
 */
export type Phase = 'ok' | 'pending' | 'active';
export type Transition = 'raise' | 'clear' | undefined;

export class Condition {
  phase: Phase = 'ok';
  /** When the current excursion began (epoch ms); set while pending or active. */
  since = 0;

  constructor(public minMs: number) {}

  /**
   * A new observation at `t`: `out` = beyond the threshold, `back` = inside it with
   * hysteresis (for boolean conditions, `back` is `!out`).
   */
  update(out: boolean, back: boolean, t: number): Transition {
    switch (this.phase) {
      case 'ok':
        if (!out) return undefined;
        this.phase = 'pending';
        this.since = t;
        return this.tick(t);
      case 'pending':
        if (!out) {
          this.phase = 'ok';
          return undefined;
        }
        return this.tick(t);
      case 'active':
        if (!back) return undefined;
        this.phase = 'ok';
        return 'clear';
    }
  }

  /** Time passes with no new observation: a pending excursion that lasted `minMs` is raised. */
  tick(now: number): Transition {
    if (this.phase !== 'pending' || now - this.since < this.minMs) return undefined;
    this.phase = 'active';
    return 'raise';
  }

  /** Restored from the event log at restart: the alarm is active, it only needs to clear. */
  restore(since: number): void {
    this.phase = 'active';
    this.since = since;
  }
}
