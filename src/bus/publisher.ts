import { hostname } from 'node:os';
import type { MqttConfig } from '../config/instance-schema.ts';
import type { Logger } from '../core/log.ts';
import type { Sample } from '../core/sample.ts';
import type { ChamberState } from '../drivers/types.ts';
import { connectMqtt, mqttCredentials, type MqttConnection } from './mqtt-client.ts';
import { encodeData, Epoch, newEpoch, type RequestResult, type StatusMessage } from './payload.ts';
import type { Spool } from './spool.ts';
import { topics, type Topics } from './topics.ts';

/** Where a set request arrived: `<prefix>/<chamber>/set/<tag>/<principal>`. */
export interface SetTopic {
  chamber: string;
  tag: string;
  principal: string;
}

export interface PublisherOptions {
  url: string;
  mqtt: MqttConfig;
  gatewayId: string;
  spool: Spool;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** The chambers whose set requests this gateway reads (one subscription each, as its ACL allows). */
  chambers?: readonly string[];
  /** A message on a set topic of one of `chambers` (unparsed: the gateway validates, audits and answers). */
  onSetRequest?: (where: SetTopic, payload: Buffer, retained: boolean) => void;
  /** Restart epoch written in every data message (`ep`); default a new one (newEpoch). */
  epoch?: string;
  /** Samples per data message; larger batches are split. */
  maxSamplesPerMessage?: number;
}

export interface PublisherStats {
  connected: boolean;
  reconnects: number;
  publishedMessages: number;
  publishedSamples: number;
  inflight: number;
}

/**
 * Samples go to the on-disk spool first; a pump publishes the spool in order with
 * QoS 1, up to `mqtt.inflight` messages in flight, and trims it only after PUBACK (the
 * contiguous acknowledged prefix). Offline, the spool grows on disk and memory stays
 * flat; on reconnect mqtt.js resends what was in flight and the pump continues.
 */
export class Publisher {
  readonly topics: Topics;
  private readonly conn: MqttConnection;
  private readonly statuses = new Map<string, StatusMessage>();
  private readonly pending: Array<{ seq: number; samples: number; done: boolean }> = [];
  private pumping = false;
  private closed = false;
  private drainWaiters: Array<() => void> = [];
  private publishedMessages = 0;
  private publishedSamples = 0;
  private readonly maxPerMessage: number;
  /** This start's restart epoch (`ep` of the data messages). */
  readonly epoch: string;

  constructor(private readonly o: PublisherOptions) {
    this.topics = topics(o.mqtt.prefix);
    this.maxPerMessage = o.maxSamplesPerMessage ?? 5000;
    this.epoch = Epoch.parse(o.epoch ?? newEpoch());
    const env = o.env ?? process.env;
    const gw = this.topics.gatewayStatus(o.gatewayId);
    this.conn = connectMqtt({
      url: o.url,
      clientId: o.mqtt.client_id ?? `octopus-${o.gatewayId}-${hostname()}-${process.pid}`,
      ...mqttCredentials(o.mqtt, env),
      keepaliveS: o.mqtt.keepalive_s,
      will: {
        topic: gw,
        payload: JSON.stringify({ state: 'offline', ts: Date.now(), reason: 'connection lost' }),
        retain: true,
        qos: 1,
      },
    });
    this.conn.on('connect', () => this.onConnect());
    this.conn.on('close', () => o.log.debug(`MQTT connection to ${o.url} closed; spooling to disk`));
    // One line per distinct error, not one per reconnect attempt.
    let lastError = '';
    this.conn.on('error', (err) => {
      if (err.message !== lastError)
        o.log.warn(`MQTT ${o.url}: ${err.message} (retrying every second; samples are spooled on disk)`);
      lastError = err.message;
    });
    this.conn.on('connect', () => (lastError = ''));
    this.conn.on('message', (topic, payload, retained) => this.onMessage(topic, payload, retained));
    o.spool.onAppend(() => this.pump());
  }

  /** Spools the samples (one message per chamber, split past maxSamplesPerMessage). */
  publishSamples(chamber: string, samples: readonly Sample[]): void {
    if (samples.length === 0) return;
    const topic = this.topics.data(chamber);
    for (let i = 0; i < samples.length; i += this.maxPerMessage) {
      const part = samples.slice(i, i + this.maxPerMessage);
      this.o.spool.append(
        topic,
        encodeData(this.o.gatewayId, this.o.spool.nextSequence, chamber, part, this.epoch),
        part.length,
      );
    }
  }

  /** Retained chamber status; the latest is re-published after every reconnect. */
  setChamberStatus(chamber: string, state: ChamberState, reason?: string): void {
    const msg: StatusMessage = { state, ts: Date.now(), ...(reason ? { reason } : {}) };
    this.statuses.set(chamber, msg);
    if (this.conn.connected) this.sendStatus(chamber, msg);
  }

  stats(): PublisherStats {
    return {
      connected: this.conn.connected,
      reconnects: this.conn.reconnects,
      publishedMessages: this.publishedMessages,
      publishedSamples: this.publishedSamples,
      inflight: this.pending.length,
    };
  }

  /** Pending messages and samples in the spool, samples dropped (bound, damage, memory), what is held in memory and strangers in the folder. */
  spoolDepth(): {
    messages: number;
    bytes: number;
    samples: number;
    droppedSamples: number;
    inMemory: number;
    corruptRecords: number;
    foreign: string[];
  } {
    const s = this.o.spool;
    return {
      ...s.depth(),
      droppedSamples: s.droppedSamples,
      inMemory: s.inMemory,
      corruptRecords: s.corruptRecords,
      foreign: s.foreign,
    };
  }

  /** Resolves when the spool is empty and nothing is in flight, or after timeoutMs. */
  drain(timeoutMs: number): Promise<boolean> {
    if (this.o.spool.depth().messages === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.drainWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** Publishes what it can within timeoutMs, announces `offline`, disconnects cleanly. */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.conn.connected) await this.drain(timeoutMs);
    this.closed = true;
    if (this.conn.connected) {
      const gw = this.topics.gatewayStatus(this.o.gatewayId);
      await Promise.race([
        this.conn.publish(gw, JSON.stringify({ state: 'offline', ts: Date.now(), reason: 'shutdown' }), {
          qos: 1,
          retain: true,
        }),
        new Promise((r) => setTimeout(r, 1000)),
      ]).catch(() => {});
    }
    await this.conn.end();
    this.o.spool.close();
  }

  /** Test hook: drop the connection the way a crash would (Last Will fires). */
  crash(): void {
    this.closed = true;
    this.conn.destroy();
  }

  // ---- internals -----------------------------------------------------------

  private onConnect(): void {
    const gw = this.topics.gatewayStatus(this.o.gatewayId);
    this.o.log.info(`MQTT connected to ${this.o.url}`);
    this.conn
      .publish(gw, JSON.stringify({ state: 'online', ts: Date.now() }), { qos: 1, retain: true })
      .catch(() => {});
    for (const [chamber, msg] of this.statuses) this.sendStatus(chamber, msg);
    const setFilters = (this.o.chambers ?? []).map((c) => this.topics.setFilter(c));
    if (this.o.onSetRequest && setFilters.length)
      this.conn
        .subscribe(setFilters, 1)
        .catch((err) => this.o.log.error(`cannot subscribe to ${setFilters.join(', ')}: ${String(err)}`));
    this.pump();
  }

  private sendStatus(chamber: string, msg: StatusMessage): void {
    this.conn.publish(this.topics.status(chamber), JSON.stringify(msg), { qos: 1, retain: true }).catch(() => {});
  }

  private pump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      while (this.conn.connected && this.pending.length < this.o.mqtt.inflight) {
        const records = this.o.spool.read(this.o.mqtt.inflight - this.pending.length);
        if (records.length === 0) break;
        for (const r of records) {
          const entry = { seq: r.seq, samples: r.samples, done: false };
          this.pending.push(entry);
          this.conn.publish(r.topic, r.payload, { qos: 1 }).then(
            () => this.onAck(entry),
            (err: Error) => this.onPublishError(err),
          );
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private onAck(entry: { seq: number; samples: number; done: boolean }): void {
    entry.done = true;
    let last = -1;
    while (this.pending.length && this.pending[0]!.done) {
      const e = this.pending.shift()!;
      last = e.seq;
      this.publishedMessages++;
      this.publishedSamples += e.samples;
    }
    if (last >= 0) this.o.spool.ack(last);
    if (this.pending.length === 0 && this.o.spool.depth().messages === 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const w of waiters) w();
    }
    this.pump();
  }

  /** mqtt.js gave up on a message (client ended): read it again from the spool later. */
  private onPublishError(err: Error): void {
    if (this.closed || this.pending.length === 0) return;
    this.o.log.warn(`MQTT publish failed (${err.message}); will resend from the spool`);
    this.pending.length = 0;
    this.o.spool.rewind();
  }

  private onMessage(topic: string, payload: Buffer, retained: boolean): void {
    const where = this.topics.parseSet(topic);
    if (!where || !this.o.onSetRequest || !(this.o.chambers ?? []).includes(where.chamber)) return;
    this.o.onSetRequest(where, payload, retained);
  }

  /** Deletes a retained message (empty retained publish): a retained request must not be replayed. */
  clearRetained(topic: string): void {
    this.conn
      .publish(topic, Buffer.alloc(0), { qos: 1, retain: true })
      .catch((err: Error) => this.o.log.warn(`cannot clear the retained request on ${topic}: ${err.message}`));
  }

  /** Answers a request on `<prefix>/results/<principal>` (QoS 1, not retained). */
  publishResult(principal: string, result: RequestResult): void {
    if (!this.conn.connected)
      return void this.o.log.warn(
        `result for ${principal} not sent (MQTT offline): ${result.status}${result.reason ? `: ${result.reason}` : ''}`,
      );
    this.conn
      .publish(this.topics.result(principal), JSON.stringify(result), { qos: 1 })
      .catch((err: Error) => this.o.log.warn(`cannot publish result for ${principal}: ${err.message}`));
  }
}
