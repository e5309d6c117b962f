import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { CollectorConfig, MqttConfig } from '../config/instance-schema.ts';
import type { Logger } from '../core/log.ts';
import { connectMqtt, mqttCredentials, type MqttConnection } from '../bus/mqtt-client.ts';
import { DataMessage, StatusMessage } from '../bus/payload.ts';
import { topics } from '../bus/topics.ts';
import { Dedupe } from './dedupe.ts';

export interface SubscriberStats {
  connected: boolean;
  reconnects: number;
  messages: number;
  samples: number;
  invalid: number;
  /** Messages dropped as already delivered (same gw, ep, seq). */
  duplicates: number;
  /** Messages dropped because their seq is older than the dedupe window of their stream. */
  stale_dropped: number;
  /** Messages far ahead of their stream's numbering (delivered; the window moves only once confirmed). */
  seq_jumps: number;
  subscription: string;
  client_id: string;
  clean_session: boolean;
}

/**
 * The collector's default MQTT client id: stable across restarts for one gateway id,
 * host and data folder, so the broker keeps its persistent session (and the QoS 1 data
 * published while it was away) for it. `-archive` is appended for the archive's own
 * subscription.
 */
export function defaultCollectorClientId(gatewayId: string, dataDir: string, host = hostname()): string {
  const h = createHash('sha256').update(resolve(dataDir)).digest('hex').slice(0, 8);
  return `octopus-collector-${gatewayId}-${host.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 40)}-${h}`;
}

/**
 * Subscribes to `<prefix>/+/data` (through `$share/<group>/…` when a group is set, so
 * collectors split the load) and `<prefix>/+/status`, with a persistent session unless
 * `collector.clean_session`. Each data message is validated, deduplicated by
 * (gw, ep, seq) (dedupe.ts; a drop is counted and logged) and handed to `deliver`, which returns once the samples are
 * written or durably buffered; only then is the PUBACK sent. A bad payload is counted
 * and logged with the topic and the reason and acknowledged (sending it again would
 * not make it valid); a `deliver` that throws leaves the message unacknowledged.
 */
export class DataSubscriber {
  private readonly conn: MqttConnection;
  readonly dedupe: Dedupe;
  private readonly clientId: string;
  private lastDropLog = 0;
  private lastDupLog = 0;
  private dupLogged = 0;
  readonly statuses = new Map<string, { chamber: string } & StatusMessage>();
  private readonly filter: string;
  private readonly t: ReturnType<typeof topics>;
  private messages = 0;
  /** Resolves once the broker granted the subscriptions. */
  readonly subscribed: Promise<void>;
  private markSubscribed!: () => void;
  private samples = 0;
  private invalid = 0;

  constructor(
    private readonly o: {
      url: string;
      mqtt: MqttConfig;
      collector: CollectorConfig;
      clientId: string;
      log: Logger;
      env?: NodeJS.ProcessEnv;
      dedupe?: Dedupe;
      /** Returns (or resolves) once the samples are written or durably buffered. */
      deliver: (msg: DataMessage) => void | Promise<void>;
      /** Chamber status messages (retained), e.g. for the archive's offline slots. */
      onStatus?: (chamber: string, status: StatusMessage) => void;
    },
  ) {
    const t = (this.t = topics(o.mqtt.prefix));
    const c = o.collector;
    this.filter = c.group ? `$share/${c.group}/${t.allData}` : t.allData;
    this.dedupe = o.dedupe ?? new Dedupe();
    this.clientId = o.clientId;
    const env = o.env ?? process.env;
    this.conn = connectMqtt({
      url: o.url,
      clientId: o.clientId,
      // A stable client id and a persistent session: the broker keeps QoS 1 data while we are away.
      clean: c.clean_session,
      protocolVersion: c.group ? 5 : 4,
      receiveMaximum: c.group ? c.receive_maximum : undefined,
      sessionExpiryS: c.session_expiry_s,
      ...mqttCredentials(o.mqtt, env),
      handleMessage: async (topic, payload) => this.handle(topic, payload),
    });
    this.subscribed = new Promise((r) => (this.markSubscribed = r));
    let first = true;
    this.conn.on('connect', () => {
      if (!first) return;
      first = false;
      this.conn
        .subscribe([this.filter, t.allStatus], 1)
        .then(() => {
          o.log.info(`subscribed to ${this.filter} and ${t.allStatus}`);
          this.markSubscribed();
        })
        .catch((err: Error) => o.log.error(`cannot subscribe to ${this.filter}: ${err.message}`));
    });
    this.conn.on('error', (err) => o.log.debug(`MQTT: ${err.message}`));
  }

  get connected(): boolean {
    return this.conn.connected;
  }

  stats(): SubscriberStats {
    const d = this.dedupe;
    return {
      connected: this.conn.connected,
      reconnects: this.conn.reconnects,
      messages: this.messages,
      samples: this.samples,
      invalid: this.invalid,
      duplicates: d.duplicates,
      stale_dropped: d.stale,
      seq_jumps: d.jumps,
      subscription: this.filter,
      client_id: this.clientId,
      clean_session: this.o.collector.clean_session,
    };
  }

  close(): Promise<void> {
    return this.conn.end();
  }

  private async handle(topic: string, payload: Buffer): Promise<void> {
    let body: unknown;
    try {
      body = JSON.parse(payload.toString('utf8'));
    } catch {
      return this.reject(topic, `payload is not JSON (got ${JSON.stringify(payload.toString('utf8').slice(0, 60))})`);
    }
    if (topic.endsWith('/status')) {
      const s = StatusMessage.safeParse(body);
      const chamber = topic.split('/').at(-2)!;
      if (s.success) {
        this.statuses.set(topic, { chamber, ...s.data });
        this.o.onStatus?.(chamber, s.data);
      }
      return;
    }
    const parsed = DataMessage.safeParse(body);
    if (!parsed.success) {
      const i = parsed.error.issues[0]!;
      return this.reject(topic, `${i.path.join('.') || 'payload'}: ${i.message}`);
    }
    const msg = parsed.data;
    const chamber = this.t.parseData(topic);
    if (chamber !== msg.chamber)
      return this.reject(topic, `chamber "${msg.chamber}" in the payload does not match the topic`);
    const verdict = this.dedupe.check(msg.gw, msg.ep, msg.seq);
    if (verdict === 'duplicate') {
      // A redelivery is normal after a reconnect; one line per 10 s says how many were dropped.
      const now = Date.now();
      if (now - this.lastDupLog >= 10_000) {
        this.o.log.info(
          `dropped ${this.dedupe.duplicates - this.dupLogged} duplicate message(s) (same gw, ep, seq already delivered), e.g. gateway "${msg.gw}" seq ${msg.seq} on ${topic}`,
        );
        this.lastDupLog = now;
        this.dupLogged = this.dedupe.duplicates;
      }
      return;
    }
    const where = `gateway "${msg.gw}" epoch "${msg.ep ?? '(none)'}" seq ${msg.seq} on ${topic}`;
    if (verdict === 'stale') {
      // One line per second at most: a flood of stale messages must not flood the log.
      const now = Date.now();
      if (now - this.lastDropLog >= 1000) {
        this.lastDropLog = now;
        this.o.log.warn(
          `dropped ${where} (${msg.samples.length} samples): older than the dedupe window of its stream, taken as already delivered (${this.dedupe.stale} dropped so far)`,
        );
      }
      return;
    }
    if (verdict === 'unconfirmed-jump')
      this.o.log.warn(
        `${where} is far ahead of its stream; delivered, but the dedupe window moves only when the next message confirms it`,
      );
    try {
      await this.o.deliver(msg);
    } catch (err) {
      // Not acknowledged: the broker sends it again, and then it must not look like a duplicate.
      this.dedupe.forget(msg.gw, msg.ep, msg.seq);
      throw err;
    }
    this.messages++;
    this.samples += msg.samples.length;
  }

  private reject(topic: string, reason: string): void {
    this.invalid++;
    this.o.log.warn(`ignored message on ${topic}: ${reason}`);
  }
}
