import type { DataMessage, StatusMessage } from '../bus/payload.ts';
import type { Logger } from '../core/log.ts';
import type { ToleranceOverride } from '../fidelity/tolerance.ts';
import type { AlarmsConfig } from './config.ts';
import { AlarmEvaluator, type Excursion } from './evaluator.ts';
import { activeFrom, AlarmEventLog } from './event-log.ts';
import type { Alarm, AlarmClass, AlarmEvent, AlarmService, ChamberAlarmState } from './model.ts';
import type { ChamberPlan } from './plan.ts';

/** Where the engine's state changes go (MQTT in production, a recorder in tests). */
export interface AlarmPublisher {
  /** Retained `<prefix>/<chamber>/alarm`, QoS 1. */
  state(s: ChamberAlarmState): void;
  /** `<prefix>/alarms/event`, QoS 1. */
  event(e: AlarmEvent): void;
}

export interface AlarmEngineOptions {
  config: AlarmsConfig;
  plans: readonly ChamberPlan[];
  log: Logger;
  /** The event log (`<data_dir>/state/alarms.jsonl`). */
  logFile: string;
  /** Audit entry of an acknowledgement; throws when it cannot be written (the acknowledgement is then refused). */
  audit?: (e: { who: string; action: string; what: string; detail?: Record<string, unknown> }) => void;
  /** Engine clock (ms); tests move it instead of sleeping. */
  now?: () => number;
  /** True while this collector may publish (holds the archive lease); others evaluate silently. */
  active?: () => boolean;
  /** Tolerance overrides of the treatment running on a chamber now (experiment metadata), if any. */
  treatment?: (chamber: string) => Record<string, ToleranceOverride> | undefined;
  publisher?: AlarmPublisher;
}

export interface AlarmHealth {
  state: 'writer' | 'standby';
  active: number;
  unacknowledged: number;
  by_class: Partial<Record<AlarmClass, number>>;
  raised_total: number;
  log: string;
  log_error?: string;
}

type AckResult = Awaited<ReturnType<AlarmService['acknowledge']>>;

/**
 * The live alarm engine: conditions evaluated on the data stream (AlarmEvaluator), alarm
 * records with their lifecycle raised → acknowledged → cleared, the event log written
 * before anything is published, the state rebuilt from it at restart, and — only while
 * `active()` — publication of retained chamber state and events. A standby engine keeps
 * evaluating (warm) and reconciles with the log when it takes over.
 */
export class AlarmEngine implements AlarmService {
  private readonly evaluator: AlarmEvaluator;
  private readonly eventLog: AlarmEventLog;
  private readonly now: () => number;
  /** Alarms not cleared, by key. */
  private readonly alarms = new Map<string, Alarm>();
  /** Newest last, capped at history_limit. */
  private events: AlarmEvent[] = [];
  private readonly listeners = new Set<(e: AlarmEvent) => void>();
  private readonly chambers: string[];
  private leader = false;
  private timer?: NodeJS.Timeout;
  private treatments = new Map<string, string>();
  private logError?: string;
  publisher?: AlarmPublisher;
  /** Counters for /metrics (since process start; events this engine published). */
  readonly raisedTotal = new Map<AlarmClass, number>();
  acknowledgedTotal = 0;

  constructor(private readonly o: AlarmEngineOptions) {
    this.now = o.now ?? Date.now;
    this.eventLog = new AlarmEventLog(o.logFile, {
      maxBytes: o.config.log_max_bytes,
      keep: o.config.history_limit,
      onWarn: (m) => o.log.warn(m),
    });
    this.publisher = o.publisher;
    this.chambers = o.plans.map((p) => p.chamber);
    const c = o.config;
    this.evaluator = new AlarmEvaluator(o.plans, {
      stalePeriods: c.stale_periods,
      offlineDelayMs: c.offline_delay_s * 1000,
      doorOpenMaxMs: c.door_open_max_s * 1000,
      plcAlarmMinMs: c.plc_alarm_min_s * 1000,
      now: this.now,
      raise: (x, t) => this.raise(x, t),
      clear: (key, t, why) => this.clear(key, t, why),
    });
    this.refreshTreatments();
    this.restore();
  }

  private get isActive(): boolean {
    return this.o.active ? this.o.active() : true;
  }

  /** Rebuilds the alarms not cleared (with their acknowledgements) from the event log. */
  private restore(): void {
    let read: ReturnType<AlarmEventLog['read']>;
    try {
      read = this.eventLog.read();
    } catch (err) {
      this.logError = `cannot read ${this.eventLog.file}: ${(err as Error).message}`;
      this.o.log.error(`alarm event log ${this.logError}; starting with no active alarms`);
      return;
    }
    if (read.skipped)
      this.o.log.warn(`alarm event log ${this.eventLog.file}: ${read.skipped} unreadable line(s) skipped`);
    this.events = read.events.slice(-this.o.config.history_limit);
    const gone: Alarm[] = [];
    for (const [key, a] of activeFrom(read.events)) {
      if (this.evaluator.restore(a.chamber, a.class, a.tag, a.since)) this.alarms.set(key, a);
      else gone.push(a);
    }
    if (this.alarms.size) this.o.log.info(`${this.alarms.size} active alarm(s) restored from ${this.eventLog.file}`);
    // Alarms of chambers or tags no longer watched (configuration changed) are cleared once active.
    this.pendingGone = gone;
  }

  private pendingGone: Alarm[] = [];

  /** Starts the periodic checks; publishes every chamber's state when this engine is the writer. */
  start(): void {
    this.timer = setInterval(() => this.tick(), this.o.config.evaluate_interval_ms);
    this.timer.unref();
    this.tick();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  accept(msg: DataMessage): void {
    this.evaluator.accept(msg);
  }

  status(chamber: string, s: StatusMessage): void {
    this.evaluator.status(chamber, s);
  }

  /** Time-based checks, treatment changes and the writer/standby role. */
  tick(): void {
    const active = this.isActive;
    if (active && !this.leader) this.takeOver();
    else if (!active && this.leader) {
      this.leader = false;
      this.o.log.info('alarm engine standing by (another collector holds the archive lease)');
    }
    this.refreshTreatments();
    this.evaluator.tick();
  }

  private refreshTreatments(): void {
    if (!this.o.treatment) return;
    for (const c of this.chambers) {
      let t: Record<string, ToleranceOverride> | undefined;
      try {
        t = this.o.treatment(c);
      } catch (err) {
        this.o.log.warn(`treatment tolerances of chamber ${c}: ${(err as Error).message}`);
      }
      const text = JSON.stringify(t ?? {});
      if (this.treatments.get(c) === text) continue;
      this.treatments.set(c, text);
      this.evaluator.setTreatment(c, t ?? {});
    }
  }

  /** Becoming the writer: the log (maybe written by the previous writer) is the record; our warm conditions say what is true now. */
  private takeOver(): void {
    this.leader = true;
    let logged = new Map<string, Alarm>();
    try {
      const read = this.eventLog.read();
      logged = activeFrom(read.events);
      this.events = read.events.slice(-this.o.config.history_limit);
    } catch (err) {
      this.o.log.error(`alarm event log: ${(err as Error).message}`);
    }
    const now = this.now();
    const mine = new Map(this.alarms);
    this.alarms.clear();
    for (const [key, a] of logged) {
      if (mine.has(key)) {
        this.alarms.set(key, a);
        mine.delete(key);
      } else if (!this.pendingGone.some((g) => g.id === a.id)) {
        // Logged active, not active here (it ended while the writer was away): cleared now.
        this.alarms.set(key, a);
        this.clear(key, now, 'condition no longer present');
      }
    }
    for (const g of this.pendingGone) {
      this.alarms.set(g.key, g);
      this.clear(g.key, now, 'no longer watched (configuration changed)');
    }
    this.pendingGone = [];
    for (const a of mine.values()) {
      this.alarms.set(a.key, a);
      this.emit('raised', 'octopus', a);
    }
    for (const c of this.chambers) this.publishState(c);
    this.o.log.info(`alarm engine is the writer: ${this.alarms.size} active alarm(s)`);
  }

  private raise(x: Excursion, t: number): void {
    if (this.alarms.has(x.key)) return; // restored from the log: no double raise
    const at = Math.max(t, x.since);
    const { key, chamber, class: cls, tag, since, message, value, setpoint, band, units } = x;
    const a: Alarm = {
      id: this.newId(chamber, cls, tag, at),
      key,
      chamber,
      class: cls,
      ...(tag ? { tag } : {}),
      severity: this.o.config.severity[cls],
      state: 'raised',
      message,
      since,
      raised_at: at,
      ...(value !== undefined ? { value } : {}),
      ...(setpoint !== undefined ? { setpoint } : {}),
      ...(band !== undefined ? { band } : {}),
      ...(units ? { units } : {}),
    };
    this.alarms.set(key, a);
    if (this.leader) {
      this.emit('raised', 'octopus', a);
      this.publishState(chamber);
    }
  }

  private clear(key: string, t: number, why: string): void {
    const a = this.alarms.get(key);
    if (!a) return;
    this.alarms.delete(key);
    const cleared: Alarm = {
      ...a,
      state: 'cleared',
      cleared_at: Math.max(t, a.raised_at),
      message: `${a.message}; cleared: ${why}`,
    };
    if (this.leader) {
      this.emit('cleared', 'octopus', cleared);
      this.publishState(a.chamber);
    }
  }

  private newId(chamber: string, cls: AlarmClass, tag: string | undefined, at: number): string {
    const base = `${chamber}.${cls}.${tag ?? 'chamber'}.${at}`;
    let id = base;
    for (
      let i = 2;
      this.events.some((e) => e.alarm.id === id) || [...this.alarms.values()].some((a) => a.id === id);
      i++
    )
      id = `${base}-${i}`;
    return id;
  }

  /** Logs (before anything else), remembers, publishes and tells the listeners. */
  private emit(event: AlarmEvent['event'], by: string, alarm: Alarm): AlarmEvent {
    const e: AlarmEvent = {
      event,
      ts: event === 'raised' ? alarm.raised_at : event === 'cleared' ? alarm.cleared_at! : alarm.acknowledged_at!,
      by,
      alarm,
    };
    try {
      this.eventLog.append(e);
      this.logError = undefined;
    } catch (err) {
      this.logError = `cannot append to ${this.eventLog.file}: ${(err as Error).message}`;
      this.o.log.error(
        `alarm event log ${this.logError}; ${event} ${alarm.id} is published but will not survive a restart`,
      );
    }
    if (event === 'raised') this.raisedTotal.set(alarm.class, (this.raisedTotal.get(alarm.class) ?? 0) + 1);
    this.events.push(e);
    if (this.events.length > this.o.config.history_limit * 1.1)
      this.events = this.events.slice(-this.o.config.history_limit);
    try {
      this.publisher?.event(e);
    } catch (err) {
      this.o.log.warn(`cannot publish alarm event ${event} ${alarm.id}: ${(err as Error).message}`);
    }
    for (const l of this.listeners) {
      try {
        l(e);
      } catch (err) {
        this.o.log.warn(`alarm event listener: ${(err as Error).message}`);
      }
    }
    return e;
  }

  private publishState(chamber: string): void {
    if (!this.publisher) return;
    const alarms = [...this.alarms.values()]
      .filter((a) => a.chamber === chamber)
      .sort((a, b) => b.raised_at - a.raised_at);
    try {
      this.publisher.state({ chamber, ts: this.now(), alarms });
    } catch (err) {
      this.o.log.warn(`cannot publish the alarm state of ${chamber}: ${(err as Error).message}`);
    }
  }

  /** Publishes the retained state of every chamber again (after a reconnection to the broker). */
  republish(): void {
    if (!this.leader) return;
    for (const c of this.chambers) this.publishState(c);
  }

  // ---- AlarmService ------------------------------------------------------------

  active(): Alarm[] {
    return [...this.alarms.values()].sort((a, b) => b.raised_at - a.raised_at);
  }

  history(opts: { limit?: number; since?: number; chamber?: string } = {}): AlarmEvent[] {
    const out: AlarmEvent[] = [];
    const limit = opts.limit ?? 100;
    for (let i = this.events.length - 1; i >= 0 && out.length < limit; i--) {
      const e = this.events[i]!;
      if (opts.since !== undefined && e.ts < opts.since) continue;
      if (opts.chamber && e.alarm.chamber !== opts.chamber) continue;
      out.push(e);
    }
    return out;
  }

  async acknowledge(id: string, by: string, comment: string): Promise<AckResult> {
    if (!this.leader)
      return {
        ok: false,
        status: 503,
        error:
          'this collector is standing by (another one holds the archive lease and publishes alarms): acknowledge there',
      };
    const a = [...this.alarms.values()].find((x) => x.id === id);
    if (!a) {
      const past = [...this.events].reverse().find((e) => e.alarm.id === id);
      if (past)
        return {
          ok: false,
          status: 409,
          error: `alarm ${id} is cleared (at ${new Date(past.alarm.cleared_at ?? past.ts).toISOString()}): nothing to acknowledge`,
        };
      return { ok: false, status: 404, error: `no alarm ${JSON.stringify(id)}` };
    }
    if (a.state === 'acknowledged')
      return {
        ok: false,
        status: 409,
        error: `alarm ${id} was already acknowledged by ${a.acknowledged_by} at ${new Date(a.acknowledged_at!).toISOString()}`,
      };
    // Audited first: an acknowledgement that cannot be audited is refused.
    try {
      this.o.audit?.({
        who: by,
        action: 'alarm_ack',
        what: `${a.chamber}/${a.class}${a.tag ? `/${a.tag}` : ''}`,
        detail: { alarm: id, comment, severity: a.severity },
      });
    } catch (err) {
      return { ok: false, status: 503, error: (err as Error).message };
    }
    const acked: Alarm = {
      ...a,
      state: 'acknowledged',
      acknowledged_at: Math.max(this.now(), a.raised_at),
      acknowledged_by: by,
      comment,
    };
    this.alarms.set(a.key, acked);
    this.acknowledgedTotal++;
    this.emit('acknowledged', by, acked);
    this.publishState(a.chamber);
    return { ok: true, alarm: acked };
  }

  /** Events this engine publishes (only while it is the writer: a standby's listeners hear nothing, so notifiers hooked here never send twice). */
  onEvent(listener: (e: AlarmEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  health(): AlarmHealth {
    const byClass: AlarmHealth['by_class'] = {};
    let unack = 0;
    for (const a of this.alarms.values()) {
      byClass[a.class] = (byClass[a.class] ?? 0) + 1;
      if (a.state === 'raised') unack++;
    }
    return {
      state: this.leader ? 'writer' : 'standby',
      active: this.alarms.size,
      unacknowledged: unack,
      by_class: byClass,
      raised_total: [...this.raisedTotal.values()].reduce((x, y) => x + y, 0),
      log: this.eventLog.file,
      ...(this.logError ? { log_error: this.logError } : {}),
    };
  }

  /** Chambers watched (all get a retained state message). */
  get watchedChambers(): readonly string[] {
    return this.chambers;
  }
}
