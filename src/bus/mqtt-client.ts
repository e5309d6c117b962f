import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { MqttConfig } from '../config/instance-schema.ts';

/**
 * The only file that imports mqtt.js. QoS 1 messages unacknowledged at a disconnect
 * stay in mqtt.js's outgoing store and are resent by it, in order, on reconnect; the
 * publisher therefore never republishes them itself, and publishes nothing new while
 * offline (the on-disk spool is the offline store, not mqtt.js's memory).
 */
export interface MqttConnectOptions {
  url: string;
  clientId: string;
  username?: string;
  password?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  keepaliveS?: number;
  reconnectMs?: number;
  will?: { topic: string; payload: string; retain: boolean; qos: 0 | 1 };
  /** false = persistent session (the broker keeps subscriptions and queues QoS 1 while away). */
  clean?: boolean;
  /** MQTT 3.1.1 (default: every broker incl. the embedded aedes speaks it) or 5. */
  protocolVersion?: 4 | 5;
  /** MQTT 5: QoS 1 messages the broker may have unacknowledged towards us. */
  receiveMaximum?: number;
  /** MQTT 5 with `clean: false`: seconds the broker keeps the session after a disconnect (MQTT 5 ends it at once without). */
  sessionExpiryS?: number;
  /**
   * Handles every received message and resolves when it is safe (written or durably
   * buffered); only then is the PUBACK sent. mqtt.js handles received packets one after
   * the other, so this should be quick. A rejection leaves the message unacknowledged
   * and drops the connection, so that a persistent session (`clean: false`) gets it
   * redelivered on reconnect.
   */
  handleMessage?: (topic: string, payload: Buffer) => Promise<void>;
}

export interface MqttEvents {
  connect(): void;
  close(): void;
  error(err: Error): void;
  /** `retained`: the broker replayed a stored retained message (not a live publish). */
  message(topic: string, payload: Buffer, retained: boolean): void;
}

export interface MqttConnection {
  readonly connected: boolean;
  readonly reconnects: number;
  publish(topic: string, payload: string | Buffer, opts: { qos: 0 | 1; retain?: boolean }): Promise<void>;
  subscribe(filter: string | string[], qos?: 0 | 1): Promise<void>;
  on<E extends keyof MqttEvents>(event: E, listener: MqttEvents[E]): void;
  /** Clean disconnect (the Last Will is not sent). */
  end(): Promise<void>;
  /** Drops the connection without DISCONNECT, as a crash would (the Last Will is sent). */
  destroy(): void;
}

/** The sign-in and TLS part of the connection options. */
export type MqttCredentials = Pick<MqttConnectOptions, 'username' | 'password' | 'caFile' | 'certFile' | 'keyFile'>;

/**
 * The one place the connection options are built from an `mqtt` config section: user
 * name and password read from the environment variables it names (none when unnamed),
 * CA / client certificate / key files as configured. Each component passes the section
 * and environment of its own principal (the collector's own username_env / password_env,
 * the embedded broker's generated credentials).
 */
export function mqttCredentials(
  m: Pick<MqttConfig, 'username_env' | 'password_env' | 'ca_file' | 'cert_file' | 'key_file'>,
  env: NodeJS.ProcessEnv,
): MqttCredentials {
  return {
    username: m.username_env ? env[m.username_env] : undefined,
    password: m.password_env ? env[m.password_env] : undefined,
    caFile: m.ca_file,
    certFile: m.cert_file,
    keyFile: m.key_file,
  };
}

export function connectMqtt(o: MqttConnectOptions): MqttConnection {
  const opts: IClientOptions = {
    clientId: o.clientId,
    username: o.username,
    password: o.password,
    keepalive: o.keepaliveS ?? 30,
    reconnectPeriod: o.reconnectMs ?? 1000,
    connectTimeout: 10_000,
    protocolVersion: o.protocolVersion ?? 4,
    clean: o.clean ?? true,
    queueQoSZero: false,
    resubscribe: true,
    ca: o.caFile ? readFileSync(o.caFile) : undefined,
    cert: o.certFile ? readFileSync(o.certFile) : undefined,
    key: o.keyFile ? readFileSync(o.keyFile) : undefined,
    will: o.will
      ? { topic: o.will.topic, payload: Buffer.from(o.will.payload), retain: o.will.retain, qos: o.will.qos }
      : undefined,
  };
  if (o.receiveMaximum !== undefined) opts.properties = { receiveMaximum: o.receiveMaximum };
  if (o.protocolVersion === 5 && o.clean === false && o.sessionExpiryS !== undefined)
    opts.properties = { ...opts.properties, sessionExpiryInterval: o.sessionExpiryS };
  const client: MqttClient = mqtt.connect(o.url, opts);
  if (o.handleMessage) {
    const handle = o.handleMessage;
    // mqtt.js sends the PUBACK of a QoS 1 message when this callback is called.
    client.handleMessage = (packet, callback) => {
      if (packet.cmd !== 'publish') return callback();
      handle(packet.topic, packet.payload as Buffer).then(
        () => callback(),
        (err: Error) => {
          callback(err);
          client.stream?.destroy();
        },
      );
    };
  }
  let reconnects = 0;
  let everConnected = false;
  client.on('connect', () => {
    if (everConnected) reconnects++;
    everConnected = true;
  });
  // Without a listener, an 'error' event would crash the process; callers add their own.
  client.on('error', () => {});
  return {
    get connected() {
      return client.connected;
    },
    get reconnects() {
      return reconnects;
    },
    publish: (topic, payload, p) =>
      new Promise<void>((resolve, reject) => {
        client.publish(topic, payload, { qos: p.qos, retain: p.retain ?? false }, (err) =>
          err ? reject(err) : resolve(),
        );
      }),
    subscribe: (filter, qos = 1) =>
      new Promise<void>((resolve, reject) => {
        client.subscribe(filter, { qos }, (err, granted) => {
          if (err) return reject(err);
          const refused = (granted ?? []).filter((g) => g.qos === 128);
          if (refused.length)
            return reject(new Error(`broker refused subscription to ${refused.map((g) => g.topic).join(', ')}`));
          resolve();
        });
      }),
    on(event, listener) {
      if (event === 'message')
        client.on('message', (topic, payload, packet) =>
          (listener as MqttEvents['message'])(topic, payload, packet.retain === true),
        );
      else client.on(event, listener as () => void);
    },
    end: () => new Promise<void>((resolve) => client.end(false, {}, () => resolve())),
    destroy() {
      client.end(true);
      client.stream?.destroy();
    },
  };
}
