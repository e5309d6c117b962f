import { EventEmitter } from 'node:events';
import type { DataMessage, StatusMessage } from '../bus/payload.ts';

/** Latest value of one tag of a chamber. */
export interface LiveTag { value: number | boolean | string | null; ts: number; q: string; reason?: string }
export interface LiveChamber { chamber: string; tags: Record<string, LiveTag>; status?: StatusMessage; updated: number }

/**
 * Latest values per chamber, fed by the collector (`accept`) or an MQTT subscription
 * (`connect`), read by the live page over server-sent events (`GET /api/live`).
 * Emits `update` with the chamber that changed.
 */
export class LiveValues extends EventEmitter<{ update: [LiveChamber] }> {
  private readonly chambers = new Map<string, LiveChamber>();
  private client?: { end(force?: boolean, cb?: () => void): unknown };

  constructor(private readonly now: () => number = Date.now) {
    super();
    this.setMaxListeners(1000);
  }

  private entry(chamber: string): LiveChamber {
    let c = this.chambers.get(chamber);
    if (!c) {
      c = { chamber, tags: {}, updated: 0 };
      this.chambers.set(chamber, c);
    }
    return c;
  }

  accept(msg: DataMessage): void {
    const c = this.entry(msg.chamber);
    for (const s of msg.samples) {
      const old = c.tags[s.tag];
      if (old && old.ts > s.ts) continue; // replayed spool data is older than what we show
      c.tags[s.tag] = { value: s.value as LiveTag['value'], ts: s.ts, q: s.q, ...(s.reason ? { reason: s.reason } : {}) };
    }
    c.updated = this.now();
    this.emit('update', c);
  }

  status(chamber: string, st: StatusMessage): void {
    const c = this.entry(chamber);
    c.status = st;
    c.updated = this.now();
    this.emit('update', c);
  }

  snapshot(): LiveChamber[] {
    return [...this.chambers.values()].sort((a, b) => a.chamber.localeCompare(b.chamber));
  }

  /**
   * Subscribes to `<prefix>/+/data` and `<prefix>/+/status` (plain subscription, QoS 0:
   * a live view needs the latest value, not every one).
   */
  async connect(url: string, prefix: string, opts: { username?: string; password?: string } = {}): Promise<void> {
    const { default: mqtt } = await import('mqtt');
    const client = mqtt.connect(url, { clientId: `octopus-web-${process.pid}-${Math.random().toString(16).slice(2, 8)}`, reconnectPeriod: 2000, ...opts });
    this.client = client;
    client.on('connect', () => client.subscribe([`${prefix}/+/data`, `${prefix}/+/status`], { qos: 0 }));
    client.on('error', () => {});
    client.on('message', (topic, payload) => {
      const parts = topic.split('/');
      const kind = parts.at(-1);
      const chamber = parts.at(-2);
      if (!chamber || parts.length !== prefix.split('/').length + 2) return;
      try {
        const m = JSON.parse(payload.toString('utf8'));
        if (kind === 'data' && m && Array.isArray(m.samples)) this.accept({ ...m, chamber: m.chamber ?? chamber });
        else if (kind === 'status' && m && typeof m.state === 'string') this.status(chamber, m);
      } catch {
        // not JSON: ignore
      }
    });
  }

  async close(): Promise<void> {
    const c = this.client;
    this.client = undefined;
    if (c) await new Promise<void>((r) => c.end(true, () => r()));
  }
}
