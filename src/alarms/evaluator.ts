import type { DataMessage, StatusMessage } from '../bus/payload.ts';
import { effectiveTolerance, type EffectiveTolerance, type ToleranceOverride } from '../fidelity/tolerance.ts';
import type { AlarmClass } from './model.ts';
import { Condition, type Transition } from './condition.ts';
import type { ChamberPlan } from './plan.ts';

/** An excursion that lasted its minimum duration: what the engine turns into an alarm. */
export interface Excursion {
  key: string;
  chamber: string;
  class: AlarmClass;
  tag?: string;
  since: number;
  message: string;
  value?: number;
  setpoint?: number;
  band?: number;
  units?: string;
}

export interface EvaluatorOptions {
  stalePeriods: number;
  offlineDelayMs: number;
  doorOpenMaxMs: number;
  plcAlarmMinMs: number;
  now: () => number;
  raise(x: Excursion, t: number): void;
  clear(key: string, t: number, why: string): void;
}

export const alarmKey = (chamber: string, cls: AlarmClass, tag?: string): string =>
  tag ? `${chamber}/${cls}/${tag}` : `${chamber}/${cls}`;

type Value = number | boolean | string | null;
const fmt = (v: number): string => String(Math.round(v * 1000) / 1000);
const truthy = (v: Value): boolean => v === true || (typeof v === 'number' && v !== 0);

interface Deviation {
  measured: string;
  setpoint: string;
  cond: Condition;
  tol?: EffectiveTolerance;
  value?: number;
  sp?: number;
  /** Engine clock of the last good sample of the measured tag (stale). */
  lastGood: number;
  /** On-change sources: the measured tag's last sample was good (its value holds), else since when it is not. */
  held: boolean;
  notGoodSince: number;
  stale: Condition;
}

interface Flag {
  tag: string;
  cls: 'plc_alarm' | 'door_open';
  cond: Condition;
  value: Value;
}

/**
 * Evaluates one chamber's conditions: deviation (and stale) per controlled variable,
 * PLC alarm tags, door tags, and the chamber status. Hot path: one map lookup per sample.
 */
class ChamberEvaluator {
  private readonly byTag = new Map<string, Array<Deviation | Flag>>();
  readonly deviations: Deviation[] = [];
  readonly flags: Flag[] = [];
  readonly offline: Condition;
  private online = true;
  private statusReason = '';
  private treatment: Record<string, ToleranceOverride> = {};

  constructor(
    readonly plan: ChamberPlan,
    private readonly o: EvaluatorOptions,
  ) {
    const now = o.now();
    for (const v of plan.controlled) {
      const d: Deviation = {
        measured: v.measured,
        setpoint: v.setpoint,
        cond: new Condition(0),
        lastGood: now,
        held: false,
        notGoodSince: now,
        stale: new Condition(0),
      };
      this.deviations.push(d);
      this.add(v.measured, d);
      this.add(v.setpoint, d);
    }
    this.tolerances();
    for (const tag of plan.alarmTags) this.addFlag(tag, 'plc_alarm', o.plcAlarmMinMs);
    for (const tag of plan.doorTags) this.addFlag(tag, 'door_open', o.doorOpenMaxMs);
    this.offline = new Condition(o.offlineDelayMs);
  }

  private add(tag: string, w: Deviation | Flag): void {
    const list = this.byTag.get(tag) ?? [];
    list.push(w);
    this.byTag.set(tag, list);
  }

  private addFlag(tag: string, cls: Flag['cls'], minMs: number): void {
    const f: Flag = { tag, cls, cond: new Condition(minMs), value: null };
    this.flags.push(f);
    this.add(tag, f);
  }

  /** The treatment's tolerances of the running experiment (none outside runs). */
  setTreatment(t: Record<string, ToleranceOverride>): void {
    this.treatment = t;
    this.tolerances();
  }

  private tolerances(): void {
    const p = this.plan;
    for (const d of this.deviations) {
      d.tol = effectiveTolerance(
        p.profileTolerances[d.measured],
        p.chamberTolerances[d.measured],
        this.treatment[d.measured],
      );
      d.cond.minMs = (d.tol?.min_duration_s ?? 0) * 1000;
      d.stale.minMs = 0;
      // No longer judged: an active deviation clears.
      if (!d.tol && d.cond.phase !== 'ok') {
        const was = d.cond.phase;
        d.cond.phase = 'ok';
        if (was === 'active')
          this.o.clear(alarmKey(p.chamber, 'deviation', d.measured), this.o.now(), 'no tolerance in force any more');
      }
    }
  }

  /** The conditions by alarm key (for restore). */
  condition(cls: AlarmClass, tag?: string): Condition | undefined {
    if (cls === 'offline') return this.offline;
    if (cls === 'deviation') return this.deviations.find((d) => d.measured === tag && d.tol)?.cond;
    if (cls === 'stale') return this.deviations.find((d) => d.measured === tag && d.tol)?.stale;
    return this.flags.find((f) => f.cls === cls && f.tag === tag)?.cond;
  }

  accept(msg: DataMessage, now: number): void {
    for (const s of msg.samples) {
      const ws = this.byTag.get(s.tag);
      if (!ws) continue;
      for (const w of ws) {
        if ('cls' in w) this.flag(w, s.value, s.q === 'good', s.ts);
        else this.deviation(w, s.tag, s.value, s.q === 'good', s.ts, now);
      }
    }
  }

  private flag(f: Flag, value: Value, good: boolean, ts: number): void {
    if (!good) return;
    f.value = value;
    const out = truthy(value);
    this.apply(f.cond.update(out, !out, ts), f.cls, f.tag, ts);
  }

  private deviation(d: Deviation, tag: string, value: Value, good: boolean, ts: number, now: number): void {
    if (tag === d.measured && !good && d.held) {
      d.held = false;
      d.notGoodSince = now;
    }
    if (!good || typeof value !== 'number' || !Number.isFinite(value)) return;
    if (tag === d.measured) {
      d.value = value;
      d.lastGood = now;
      d.held = true;
      if (d.stale.phase !== 'ok') this.apply(d.stale.update(false, true, now), 'stale', d.measured, now);
    } else d.sp = value;
    if (!d.tol || d.value === undefined || d.sp === undefined) return;
    const dev = Math.abs(d.value - d.sp);
    this.apply(d.cond.update(dev > d.tol.band, dev <= d.tol.band - d.tol.hysteresis, ts), 'deviation', d.measured, ts);
  }

  status(s: StatusMessage, now: number): void {
    // `error` (some requests fail) is not offline: the stale alarms name the tags concerned.
    const out = s.state === 'offline';
    if (!out && !this.online) {
      // Back online: every controlled variable gets a fresh stale period.
      for (const d of this.deviations) {
        d.lastGood = now;
        if (!d.held) d.notGoodSince = now;
      }
    }
    this.online = !out;
    this.statusReason = s.reason ?? s.state;
    this.apply(this.offline.update(out, !out, Math.min(s.ts, now)), 'offline', undefined, now);
    this.apply(this.offline.tick(now), 'offline', undefined, now);
  }

  tick(now: number): void {
    this.apply(this.offline.tick(now), 'offline', undefined, now);
    for (const f of this.flags) this.apply(f.cond.tick(now), f.cls, f.tag, now);
    const staleMs = this.o.stalePeriods * this.plan.intervalMs;
    for (const d of this.deviations) {
      this.apply(d.cond.tick(now), 'deviation', d.measured, now);
      // Stale: only judged variables, and not while the chamber is offline (that alarm says it).
      if (!d.tol || !this.online) continue;
      const out = this.plan.onChange ? !d.held && now - d.notGoodSince > staleMs : now - d.lastGood > staleMs;
      if (out || d.stale.phase !== 'ok') this.apply(d.stale.update(out, !out, now), 'stale', d.measured, now);
    }
  }

  private apply(t: Transition, cls: AlarmClass, tag: string | undefined, at: number): void {
    if (!t) return;
    const key = alarmKey(this.plan.chamber, cls, tag);
    if (t === 'clear') return this.o.clear(key, at, this.clearWhy(cls, tag));
    this.o.raise(this.excursion(cls, tag, key), at);
  }

  private clearWhy(cls: AlarmClass, tag?: string): string {
    switch (cls) {
      case 'deviation': {
        const d = this.deviations.find((x) => x.measured === tag)!;
        return `${tag} back within the band (${fmt(d.value ?? NaN)} vs setpoint ${fmt(d.sp ?? NaN)})`;
      }
      case 'stale':
        return `${tag}: good samples again`;
      case 'offline':
        return 'chamber online again';
      case 'plc_alarm':
        return `${tag} no longer active`;
      case 'door_open':
        return `${tag} closed`;
    }
  }

  private excursion(cls: AlarmClass, tag: string | undefined, key: string): Excursion {
    const chamber = this.plan.chamber;
    const units = tag ? this.plan.units[tag] : undefined;
    const base = { key, chamber, class: cls, ...(tag ? { tag } : {}), ...(units ? { units } : {}) };
    switch (cls) {
      case 'deviation': {
        const d = this.deviations.find((x) => x.measured === tag)!;
        const dev = Math.abs(d.value! - d.sp!);
        return {
          ...base,
          since: d.cond.since,
          value: d.value,
          setpoint: d.sp,
          band: d.tol!.band,
          message: `${tag} ${fmt(d.value!)}${units ? ` ${units}` : ''} is ${fmt(dev)} from setpoint ${fmt(d.sp!)} (band ±${fmt(d.tol!.band)}) for at least ${fmt(d.tol!.min_duration_s)} s`,
        };
      }
      case 'stale': {
        const d = this.deviations.find((x) => x.measured === tag)!;
        return {
          ...base,
          since: this.plan.onChange ? d.notGoodSince : d.lastGood,
          message: `${tag}: no good sample for more than ${this.o.stalePeriods} periods of ${this.plan.intervalMs} ms`,
        };
      }
      case 'offline':
        return {
          ...base,
          since: this.offline.since,
          message: `chamber ${chamber} offline for more than ${fmt(this.o.offlineDelayMs / 1000)} s: ${this.statusReason}`,
        };
      case 'plc_alarm': {
        const f = this.flags.find((x) => x.cls === cls && x.tag === tag)!;
        return {
          ...base,
          since: f.cond.since,
          ...(typeof f.value === 'number' ? { value: f.value } : {}),
          message: `PLC alarm ${tag} = ${String(f.value)}`,
        };
      }
      case 'door_open': {
        const f = this.flags.find((x) => x.cls === cls && x.tag === tag)!;
        return {
          ...base,
          since: f.cond.since,
          message: `door ${tag} open for more than ${fmt(this.o.doorOpenMaxMs / 1000)} s`,
        };
      }
    }
  }
}

/**
 * The conditions of every chamber of the plan, fed with the data stream (`accept`), the
 * chamber status messages (`status`) and a periodic `tick` for the time-based checks.
 * Transitions are reported through `raise` / `clear`; the evaluator keeps no alarm
 * records (the engine does).
 */
export class AlarmEvaluator {
  private readonly chambers = new Map<string, ChamberEvaluator>();

  constructor(
    plans: readonly ChamberPlan[],
    private readonly o: EvaluatorOptions,
  ) {
    for (const p of plans) this.chambers.set(p.chamber, new ChamberEvaluator(p, o));
  }

  accept(msg: DataMessage): void {
    this.chambers.get(msg.chamber)?.accept(msg, this.o.now());
  }

  status(chamber: string, s: StatusMessage): void {
    this.chambers.get(chamber)?.status(s, this.o.now());
  }

  tick(): void {
    const now = this.o.now();
    for (const c of this.chambers.values()) c.tick(now);
  }

  setTreatment(chamber: string, t: Record<string, ToleranceOverride>): void {
    this.chambers.get(chamber)?.setTreatment(t);
  }

  /** Marks the condition of an alarm restored from the event log active; false when nothing watches that key any more. */
  restore(chamber: string, cls: AlarmClass, tag: string | undefined, since: number): boolean {
    const c = this.chambers.get(chamber)?.condition(cls, tag);
    if (!c) return false;
    c.restore(since);
    return true;
  }

  /** Keys whose condition is active now (for a standby collector taking over). */
  activeKeys(): Set<string> {
    const out = new Set<string>();
    for (const c of this.chambers.values()) {
      const id = c.plan.chamber;
      if (c.offline.phase === 'active') out.add(alarmKey(id, 'offline'));
      for (const d of c.deviations) {
        if (d.cond.phase === 'active') out.add(alarmKey(id, 'deviation', d.measured));
        if (d.stale.phase === 'active') out.add(alarmKey(id, 'stale', d.measured));
      }
      for (const f of c.flags) if (f.cond.phase === 'active') out.add(alarmKey(id, f.cls, f.tag));
    }
    return out;
  }
}
