import { readFileSync } from 'node:fs';
import mqtt from 'mqtt';
import { eventually } from './ports.ts';

export interface Received {
  topic: string;
  payload: string;
  retained: boolean;
}

/** An MQTT client as an attacker or a user would run it: records what it receives and how the connection ends. */
export interface Probe {
  client: mqtt.MqttClient;
  got: Received[];
  /** Set once the broker closed the connection (or refused it). */
  closed: () => boolean;
  /** The CONNACK refusal or socket error, if any. */
  error: () => Error | undefined;
  end(): Promise<void>;
}

/**
 * Connects once (no reconnect) and resolves when the broker answered: connected, or
 * refused (the probe then holds the error). `subscribe` filters are subscribed first.
 */
export async function probe(
  url: string,
  creds: { username?: string; password?: string } = {},
  o: { subscribe?: string[]; caFile?: string; clientId?: string } = {},
): Promise<Probe> {
  const client = mqtt.connect(url, {
    ...creds,
    clientId: o.clientId ?? `probe-${Math.random().toString(16).slice(2, 10)}`,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
    ca: o.caFile ? readFileSync(o.caFile) : undefined,
    rejectUnauthorized: true,
  });
  const got: Received[] = [];
  let closed = false;
  let error: Error | undefined;
  client.on('message', (topic, payload, packet) =>
    got.push({ topic, payload: payload.toString(), retained: packet.retain }),
  );
  client.on('close', () => (closed = true));
  client.on('error', (e) => (error = e));
  await eventually(() => client.connected || closed || error, `MQTT answer from ${url}`, 20_000, 20);
  if (client.connected && o.subscribe?.length) await client.subscribeAsync(o.subscribe, { qos: 1 });
  return {
    client,
    got,
    closed: () => closed,
    error: () => error,
    end: () =>
      client.endAsync(true).then(
        () => undefined,
        () => undefined,
      ),
  };
}

/** Publishes and waits for the PUBACK or the connection to drop; true when acknowledged. */
export async function publishOrDrop(
  p: Probe,
  topic: string,
  payload: string | Buffer,
  o: { qos?: 0 | 1; retain?: boolean } = {},
): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const onClose = () => resolve(false);
    p.client.once('close', onClose);
    p.client.publish(topic, payload, { qos: o.qos ?? 1, retain: o.retain ?? false }, (err) => {
      p.client.off('close', onClose);
      resolve(!err);
    });
  });
}
