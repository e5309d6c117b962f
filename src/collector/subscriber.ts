import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { CollectorConfig, MqttConfig } from '../config/instance-schema.ts';
import type { Logger } from '../core/log.ts';
import { connectMqtt, type MqttConnection } from '../bus/mqtt-client.ts';
import { DataMessage, StatusMessage } from '../bus/payload.ts';
import { topics } from '../bus/topics.ts';

export interface SubscriberStats {
  connected: boolean;
  reconnects: number;
  messages: number;
  samples: number;
  invalid: number;
  duplicates: number;
  subscription: string;
}

/** A gateway that restarted with an empty spool counts from 0 again; a drop this large is a restart, not a duplicate. */
const RESTART_GAP = 100_000;

/**
 * Subscribes to `<prefix>/+/data` (through `$share/<group>/…` when a group is set, so
 * collectors split the load) and `<prefix>/+/status`. Each data message is validated,
 * deduplicated by (gw, seq) and handed to `deliver`, which returns once the samples are
 * written or durably buffered; only then is the PUBACK sent. A bad payload is counted
 * and logged with the topic and the reason and acknowledged (sending it again would
 * not make it valid); a `deliver` that throws leaves the message unacknowledged.
 */
export class DataSubscriber {
  private readonly conn: MqttConnection;
  private readonly lastSeq = new Map<string, number>();
  readonly statuses = new Map<string, { chamber: string } & StatusMessage>();
  private readonly filter: string;
  private readonly t: ReturnType<typeof topics>;
  private messages = 0;
  /** Resolves once the broker granted the subscriptions. */
  readonly subscribed: Promise<void>;
  private markSubscribed!: () => void;
  private samples = 0;
  private invalid = 0;
  private duplicates = 0;

  constructor(private readonly o: {
    url: string; mqtt: MqttConfig; collector: CollectorConfig; log: Logger; env?: NodeJS.ProcessEnv;
    /** Returns (or resolves) once the samples are written or durably buffered. */
    deliver: (msg: DataMessage) => void | Promise<void>;
    /** Chamber status messages (retained), e.g. for the archive's offline slots. */
    onStatus?: (chamber: string, status: StatusMessage) => void;
  }) {
    const t = (this.t = topics(o.mqtt.prefix));
    const c = o.collector;
    this.filter = c.group ? `$share/${c.group}/${t.allData}` : t.allData;
    const env = o.env ?? process.env;
    this.conn = connectMqtt({
      url: o.url,
      clientId: c.client_id ?? `octopus-collector-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
      // A fixed client id means a persistent session: the broker keeps QoS 1 data while we are away.
      clean: c.client_id === undefined,
      protocolVersion: c.group ? 5 : 4,
      receiveMaximum: c.group ? c.receive_maximum : undefined,
      username: o.mqtt.username_env ? env[o.mqtt.username_env] : undefined,
      password: o.mqtt.password_env ? env[o.mqtt.password_env] : undefined,
      caFile: o.mqtt.ca_file,
      certFile: o.mqtt.cert_file,
      keyFile: o.mqtt.key_file,
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
    return { connected: this.conn.connected, reconnects: this.conn.reconnects, messages: this.messages, samples: this.samples, invalid: this.invalid, duplicates: this.duplicates, subscription: this.filter };
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
    if (chamber !== msg.chamber) return this.reject(topic, `chamber "${msg.chamber}" in the payload does not match the topic`);
    const last = this.lastSeq.get(msg.gw);
    if (last !== undefined && msg.seq <= last && last - msg.seq < RESTART_GAP) {
      this.duplicates++;
      return;
    }
    await this.o.deliver(msg);
    this.lastSeq.set(msg.gw, msg.seq);
    this.messages++;
    this.samples += msg.samples.length;
  }

  private reject(topic: string, reason: string): void {
    this.invalid++;
    this.o.log.warn(`ignored message on ${topic}: ${reason}`);
  }
}
