import { createServer, type Server, type Socket } from 'node:net';
import { Aedes, type Client } from 'aedes';
import type { BrokerConfig } from '../config/instance-schema.ts';
import { canPublish, canRead, canSubscribe, isRequestTopic } from './acl.ts';
import { PacketGuard } from './packet-guard.ts';
import type { Identity, PrincipalDirectory } from './principals.ts';

export interface EmbeddedBroker {
  url: string;
  port: number;
  host: string;
  /** Retained messages currently kept. */
  retainedCount(): number;
  close(): Promise<void>;
}

/** Something the broker refused, for the audit log and the logs. */
export interface BrokerDenial {
  who: string;
  action: 'connect' | 'publish' | 'subscribe';
  topic?: string;
  reason: string;
}

export interface EmbeddedBrokerOptions {
  port: number;
  prefix: string;
  limits: BrokerConfig;
  directory: PrincipalDirectory;
  /** Called for every refused publish or subscription and every refused connection. */
  onDenied?: (d: BrokerDenial) => void;
}

/** An Error with the CONNACK return code aedes sends (4 bad credentials, 5 not authorised, 2 identifier rejected). */
const connackError = (code: 2 | 4 | 5, message: string) => Object.assign(new Error(message), { returnCode: code });

/**
 * The embedded MQTT broker (aedes) of the default setup, so `npm start` needs no other
 * service. Production uses an external broker via OCTOPUS_MQTT_URL. Every client
 * authenticates (PrincipalDirectory) and every publish, subscription and delivery is
 * checked against the principal's ACL (acl.ts), the same rules `octopus mqtt-config`
 * writes for Mosquitto. Limits: packet size, connections, retained count and size,
 * inbound in-flight window (BrokerConfig).
 */
export async function startEmbeddedBroker(o: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const ids = new WeakMap<Client, Identity>();
  const retained = new Map<string, number>();
  const denied = (d: BrokerDenial) => o.onDenied?.(d);
  const who = (c: Client | null) => (c ? (ids.get(c)?.principal.name ?? 'unauthenticated') : 'broker');

  const broker = await Aedes.createBroker({
    maxInflightInbound: o.limits.max_inflight,
    authenticate(client, username, password, done) {
      o.directory.authenticate(username, password).then(
        (id) => {
          if (typeof id === 'number') {
            denied({
              who: username ?? 'anonymous',
              action: 'connect',
              reason: id === 5 ? 'not authorised (anonymous access is off)' : 'bad user name or password',
            });
            return done(connackError(id, id === 5 ? 'not authorised' : 'bad user name or password'), false);
          }
          // A client id in use by another principal cannot be taken over (a viewer must not kick the gateway off).
          // aedes keeps connected clients by id in `clients` (not in its typings).
          const holder = client.id
            ? (broker as unknown as { clients: Record<string, Client> }).clients[client.id]
            : undefined;
          const holderId = holder && holder !== client ? ids.get(holder) : undefined;
          if (holderId && holderId.principal.name !== id.principal.name) {
            denied({
              who: id.principal.name,
              action: 'connect',
              reason: `client id "${client.id}" belongs to another principal`,
            });
            return done(connackError(2, 'identifier in use by another principal'), false);
          }
          ids.set(client, id);
          done(null, true);
        },
        (err: Error) => done(connackError(5, err.message), false),
      );
    },
    authorizePublish(client, packet, done) {
      // client is null for wills re-published by the broker itself: they were checked at CONNECT.
      if (!client) return done(null);
      const id = ids.get(client);
      const p = id && o.directory.current(id);
      const topic = packet.topic;
      const refuse = (reason: string) => {
        denied({ who: who(client), action: 'publish', topic, reason });
        done(new Error(`publish to ${topic} refused: ${reason}`));
      };
      if (!p) return refuse('no longer authorised');
      if (!canPublish(p, topic)) return refuse(`${p.kind} "${p.name}" may not write this topic`);
      if (packet.retain) {
        const size = packet.payload.length;
        if (isRequestTopic(o.prefix, topic) && size > 0) return refuse('requests may not be retained');
        if (size === 0) retained.delete(topic);
        else {
          if (size > o.limits.retained_max_bytes)
            return refuse(`retained payload of ${size} bytes (limit ${o.limits.retained_max_bytes})`);
          if (!retained.has(topic) && retained.size >= o.limits.retained_max_count)
            return refuse(`retained message limit (${o.limits.retained_max_count}) reached`);
          retained.set(topic, size);
        }
      }
      done(null);
    },
    authorizeSubscribe(client, sub, done) {
      const id = ids.get(client);
      const p = id && o.directory.current(id);
      if (p && canSubscribe(p, sub.topic)) return done(null, sub);
      denied({
        who: who(client),
        action: 'subscribe',
        topic: sub.topic,
        reason: p ? `${p.kind} "${p.name}" may read nothing under this filter` : 'no longer authorised',
      });
      done(null, null); // SUBACK 0x80 for this filter
    },
    authorizeForward(client, packet) {
      const id = ids.get(client);
      const p = id && o.directory.current(id);
      return p && canRead(p, packet.topic) ? packet : undefined;
    },
  });

  const server: Server = createServer(
    (socket: Socket) =>
      guard(socket, o.limits.max_packet_bytes, (size) =>
        denied({
          who: socket.remoteAddress ?? '?',
          action: 'publish',
          reason: `packet of ${size} bytes (limit ${o.limits.max_packet_bytes}); connection dropped`,
        }),
      ) && broker.handle(socket),
  );
  server.maxConnections = o.limits.max_connections;
  const host = o.limits.host;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `embedded MQTT broker: cannot listen on ${host}:${o.port}: ${err.code ?? err.message}${err.code === 'EADDRINUSE' ? ' (another broker running? set OCTOPUS_MQTT_PORT or OCTOPUS_MQTT_URL)' : ''}`,
        ),
      ),
    );
    server.listen(o.port, host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  const local = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return {
    url: `mqtt://${local.includes(':') ? `[${local}]` : local}:${port}`,
    port,
    host,
    retainedCount: () => retained.size,
    close: () =>
      new Promise<void>((resolve) => {
        broker.close(() => server.close(() => resolve()));
        // Connected clients keep the server open; aedes.close() ends them first.
      }),
  };
}

/**
 * Watches the bytes aedes reads from `socket` and destroys it when a packet announces
 * more than `max` bytes, before its body is buffered (aedes has no such limit itself).
 * aedes reads the socket with `read()` on 'readable', so the check wraps `read`.
 */
function guard(socket: Socket, max: number, onTooLarge: (size: number) => void): true {
  const g = new PacketGuard(max);
  const read = socket.read.bind(socket);
  socket.read = ((n?: number) => {
    const chunk: unknown = read(n);
    if (Buffer.isBuffer(chunk)) {
      const over = g.feed(chunk);
      if (over !== undefined) {
        onTooLarge(over);
        socket.destroy();
        return null;
      }
    }
    return chunk;
  }) as Socket['read'];
  socket.on('error', () => {});
  return true;
}
