import { z } from 'zod';
import type { MqttConfig } from '../config/instance-schema.ts';
import type { Logger } from '../core/log.ts';
import { connectMqtt, mqttCredentials, type MqttConnection } from '../bus/mqtt-client.ts';
import { RequestId, type RequestResult } from '../bus/payload.ts';
import { parseRequest } from '../bus/requests.ts';
import { topics, type Topics } from '../bus/topics.ts';
import type { AlarmPublisher } from './engine.ts';
import type { AlarmEvent, AlarmService, ChamberAlarmState } from './model.ts';

/** `<prefix>/alarms/ack/<principal>`: an operator acknowledges an alarm over MQTT. */
export const AlarmAckRequest = z
  .object({
    /** The alarm's id (from the retained state or an event). */
    alarm: z.string().min(1).max(200),
    comment: z.string().trim().min(1, 'an acknowledgement needs a comment').max(2000),
    /** Correlation id, echoed in the result on `<prefix>/results/<principal>`. */
    id: RequestId.optional(),
  })
  .strict();
export type AlarmAckRequest = z.infer<typeof AlarmAckRequest>;

/**
 * The alarm engine on MQTT: publishes the retained chamber state and the events (QoS 1)
 * and takes acknowledgements from `<prefix>/alarms/ack/<principal>` (the broker ACL lets
 * only operators and admins write there, under their own name), answered on
 * `<prefix>/results/<principal>`. Uses the collector's identity.
 */
export class AlarmBus implements AlarmPublisher {
  private readonly conn: MqttConnection;
  private readonly t: Topics;
  private service?: AlarmService;
  /** Called at every (re)connection, e.g. to publish the retained state again. */
  onConnect?: () => void;

  constructor(
    private readonly o: { url: string; mqtt: MqttConfig; log: Logger; env?: NodeJS.ProcessEnv; clientId?: string },
  ) {
    this.t = topics(o.mqtt.prefix);
    this.conn = connectMqtt({
      url: o.url,
      clientId: o.clientId ?? `octopus-alarms-${process.pid}-${Math.random().toString(16).slice(2, 8)}`,
      ...mqttCredentials(o.mqtt, o.env ?? process.env),
    });
    this.conn.on('message', (topic, payload, retained) => void this.ack(topic, payload, retained));
    let first = true;
    this.conn.on('connect', () => {
      // (Re)connected: the retained state of every chamber is published again.
      this.onConnect?.();
      if (!first) return;
      first = false;
      const filter = this.t.alarmAck('+');
      this.conn
        .subscribe(filter, 1)
        .catch((err: Error) => o.log.error(`cannot subscribe to ${filter}: ${err.message}`));
    });
    this.conn.on('error', (err) => o.log.debug(`MQTT: ${err.message}`));
  }

  /** The service that acknowledgements go to (the engine). */
  serve(service: AlarmService): void {
    this.service = service;
  }

  get connected(): boolean {
    return this.conn.connected;
  }

  state(s: ChamberAlarmState): void {
    this.conn
      .publish(this.t.alarm(s.chamber), JSON.stringify(s), { qos: 1, retain: true })
      .catch((err: Error) => this.o.log.warn(`cannot publish the alarm state of ${s.chamber}: ${err.message}`));
  }

  event(e: AlarmEvent): void {
    this.conn
      .publish(this.t.alarmEvent, JSON.stringify(e), { qos: 1 })
      .catch((err: Error) => this.o.log.warn(`cannot publish alarm event ${e.event} ${e.alarm.id}: ${err.message}`));
  }

  close(): Promise<void> {
    return this.conn.end();
  }

  private async ack(topic: string, payload: Buffer, retained: boolean): Promise<void> {
    const prefix = this.t.alarmAck('');
    if (!topic.startsWith(prefix)) return;
    const principal = topic.slice(prefix.length);
    if (!principal || principal.includes('/') || payload.length === 0) return;
    if (retained) {
      // Never replayed: delete the retained copy (the embedded broker refuses them anyway).
      this.conn.publish(topic, Buffer.alloc(0), { qos: 1, retain: true }).catch(() => undefined);
    }
    const parsed = parseRequest(AlarmAckRequest, payload, retained);
    let outcome: { status: 'accepted' } | { status: 'refused'; reason: string };
    if (!parsed.ok) outcome = { status: 'refused', reason: parsed.reason };
    else if (!this.service) outcome = { status: 'refused', reason: 'the alarm engine is not running' };
    else {
      const r = await this.service.acknowledge(parsed.data.alarm, `mqtt:${principal}`, parsed.data.comment);
      outcome = r.ok ? { status: 'accepted' } : { status: 'refused', reason: r.error };
    }
    if (outcome.status === 'refused') this.o.log.warn(`alarm acknowledgement on ${topic} refused: ${outcome.reason}`);
    const result: RequestResult = {
      v: 1,
      id: parsed.ok ? (parsed.data.id ?? null) : parsed.id,
      request: 'alarm_ack',
      topic,
      status: outcome.status,
      ...(outcome.status === 'refused' ? { reason: outcome.reason } : {}),
      ...(parsed.ok ? { alarm: parsed.data.alarm } : {}),
      by: principal,
      ts: Date.now(),
    };
    this.conn
      .publish(this.t.result(principal), JSON.stringify(result), { qos: 1 })
      .catch((err: Error) => this.o.log.warn(`cannot publish the result for ${principal}: ${err.message}`));
  }
}
