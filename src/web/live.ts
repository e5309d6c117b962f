import { EventEmitter } from 'node:events';
import { ChamberAlarmState, type Alarm } from '../alarms/model.ts';
import { connectMqtt, type MqttConnection, type MqttCredentials } from '../bus/mqtt-client.ts';
import { DataMessage, StatusMessage } from '../bus/payload.ts';
import { topics } from '../bus/topics.ts';

/** Latest value of one tag of a chamber. */
export interface LiveTag {
  value: number | boolean | string | null;
  ts: number;
  q: string;
  reason?: string;
}
/** `alarms`: the chamber's alarms that are not cleared (retained `<prefix>/<chamber>/alarm`, docs/alarms.md). */
export interface LiveChamber {
  chamber: string;
  tags: Record<string, LiveTag>;
  status?: StatusMessage;
  alarms: Alarm[];
  updated: number;
}

/**
 * Latest values per chamber, fed by the collector (`accept`) or an MQTT subscription
 * (`connect`), read by the live page over server-sent events (`GET /api/live`).
 * Emits `update` with the chamber that changed.
 */
export interface LiveOptions {
  /** Only these chambers are listed (the configured ones); others are ignored. Default: any. */
  chambers?: readonly string[];
  /** Samples stamped further than this in the future are ignored (they would pin a tag). */
  maxFutureMs?: number;
}

/** Default bound on future-dated samples: clock skew between PLC, gateway and server, no more. */
export const LIVE_MAX_FUTURE_MS = 10_000;

export class LiveValues extends EventEmitter<{ update: [LiveChamber] }> {
  private readonly chambers = new Map<string, LiveChamber>();
  private readonly alarmTs = new Map<string, number>();
  private conn?: MqttConnection;
  private readonly known?: ReadonlySet<string>;
  private readonly maxFutureMs: number;
  /** Samples ignored because they were stamped too far in the future. */
  futureDated = 0;

  constructor(
    private readonly now: () => number = Date.now,
    o: LiveOptions = {},
  ) {
    super();
    this.setMaxListeners(1000);
    if (o.chambers) this.known = new Set(o.chambers);
    this.maxFutureMs = o.maxFutureMs ?? LIVE_MAX_FUTURE_MS;
  }

  /** The chambers this view lists, when limited to the configured ones. */
  get configured(): readonly string[] | undefined {
    return this.known ? [...this.known] : undefined;
  }

  private entry(chamber: string): LiveChamber {
    let c = this.chambers.get(chamber);
    if (!c) {
      c = { chamber, tags: {}, alarms: [], updated: 0 };
      this.chambers.set(chamber, c);
    }
    return c;
  }

  accept(msg: DataMessage): void {
    if (this.known && !this.known.has(msg.chamber)) return;
    const c = this.entry(msg.chamber);
    const limit = this.now() + this.maxFutureMs;
    for (const s of msg.samples) {
      if (s.ts > limit) {
        this.futureDated++;
        continue;
      }
      const old = c.tags[s.tag];
      if (old && old.ts > s.ts) continue; // replayed spool data is older than what we show
      c.tags[s.tag] = {
        value: s.value as LiveTag['value'],
        ts: s.ts,
        q: s.q,
        ...(s.reason ? { reason: s.reason } : {}),
      };
    }
    c.updated = this.now();
    this.emit('update', c);
  }

  status(chamber: string, st: StatusMessage): void {
    if (this.known && !this.known.has(chamber)) return;
    const c = this.entry(chamber);
    c.status = st;
    c.updated = this.now();
    this.emit('update', c);
  }

  /**
   * The chamber's alarm state (retained `<prefix>/<chamber>/alarm`); `undefined` (an empty
   * retained message) means no alarm. An older state than the one shown is ignored.
   */
  alarmState(chamber: string, st: ChamberAlarmState | undefined): void {
    if (this.known && !this.known.has(chamber)) return;
    const c = this.entry(chamber);
    if (st && st.chamber !== chamber) return;
    const shown = this.alarmTs.get(chamber);
    if (st && shown !== undefined && st.ts < shown) return;
    if (st) this.alarmTs.set(chamber, st.ts);
    c.alarms = st ? [...st.alarms].filter((a) => a.state !== 'cleared').sort((a, b) => b.raised_at - a.raised_at) : [];
    c.updated = this.now();
    this.emit('update', c);
  }

  /** Every chamber's alarms that are not cleared, newest first. */
  alarms(): Alarm[] {
    return [...this.chambers.values()].flatMap((c) => c.alarms).sort((a, b) => b.raised_at - a.raised_at);
  }

  snapshot(): LiveChamber[] {
    return [...this.chambers.values()].sort((a, b) => a.chamber.localeCompare(b.chamber));
  }

  /**
   * Subscribes to `<prefix>/+/data`, `<prefix>/+/status` and the retained alarm state
   * `<prefix>/+/alarm` (QoS 0 for data: a live view needs the latest value, not every one;
   * QoS 1 for alarms). Payloads are validated with the contract schemas.
   */
  async connect(url: string, prefix: string, opts: MqttCredentials = {}): Promise<void> {
    const t = topics(prefix);
    const conn = connectMqtt({
      url,
      clientId: `octopus-web-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      reconnectMs: 2000,
      ...opts,
    });
    this.conn = conn;
    // Only the configured chambers' topics: that is what the web principal may read.
    const filters = this.known ? [...this.known].flatMap((c) => [t.data(c), t.status(c)]) : [t.allData, t.allStatus];
    const alarmFilters = this.known ? [...this.known].map((c) => t.alarm(c)) : [t.allAlarms];
    conn.on('connect', () => {
      if (filters.length) void conn.subscribe(filters, 0).catch(() => undefined);
      if (alarmFilters.length) void conn.subscribe(alarmFilters, 1).catch(() => undefined);
    });
    const alarmOf = (topic: string): string | undefined => {
      if (!topic.startsWith(`${prefix}/`)) return undefined;
      const l = topic.slice(prefix.length + 1).split('/');
      return l.length === 2 && l[1] === 'alarm' && l[0] ? l[0] : undefined;
    };
    conn.on('message', (topic, payload) => {
      const alarmChamber = alarmOf(topic);
      if (alarmChamber !== undefined) {
        if (!payload.length) return this.alarmState(alarmChamber, undefined);
        let st: unknown;
        try {
          st = JSON.parse(payload.toString('utf8'));
        } catch {
          return;
        }
        const m = ChamberAlarmState.safeParse(st);
        if (m.success) this.alarmState(alarmChamber, m.data);
        return;
      }
      let body: unknown;
      try {
        body = JSON.parse(payload.toString('utf8'));
      } catch {
        return;
      }
      const chamber = t.parseData(topic);
      if (chamber !== undefined) {
        const m = DataMessage.safeParse(body);
        if (m.success && m.data.chamber === chamber) this.accept(m.data);
        return;
      }
      const of = t.parseStatus(topic);
      if (of === undefined) return;
      const st = StatusMessage.safeParse(body);
      if (st.success) this.status(of, st.data);
    });
  }

  async close(): Promise<void> {
    const c = this.conn;
    this.conn = undefined;
    await c?.end();
  }
}
