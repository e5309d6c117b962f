import { atLeast, type Role } from '../auth/roles.ts';

/**
 * The MQTT principals and their topic ACLs: ONE model, enforced by the embedded broker
 * (src/bus/broker.ts) and written out as a Mosquitto ACL file (src/bus/mosquitto-config.ts),
 * so both brokers grant exactly the same. docs/mqtt.md has the table.
 *
 * Requests carry their sender in the topic (`…/set/<tag>/<principal>`,
 * `…/experiments/<id>/command/<principal>`), and a principal may only write request topics
 * ending in its own name: the gateway and the collector read the authenticated sender
 * from the topic, never from the payload. Mosquitto cannot pass the publisher's identity
 * to a subscriber; a topic ACL can pin it.
 */
export type Access = 'read' | 'write';
export interface AclRule {
  access: Access;
  filter: string;
}
export type PrincipalKind = 'gateway' | 'collector' | 'web' | 'person' | 'anonymous';
export interface MqttPrincipal {
  name: string;
  kind: PrincipalKind;
  role?: Role;
  rules: AclRule[];
}

/** Topic levels a chamber id may not take: they have a meaning of their own under the prefix. */
export const RESERVED_LEVELS = ['gateway', 'experiments', 'results', 'alarms'] as const;

/** MQTT user names of the services; a person of the same name is refused (reservedName). */
export const serviceName = {
  gateway: (id: string) => `gateway.${id}`,
  collector: (id: string) => `collector.${id}`,
  web: (gatewayId: string) => `web.${gatewayId}`,
};
/** True when a name belongs to the service namespace (a person may not use it over MQTT). */
export const reservedName = (name: string): boolean => /^(gateway|collector|web)\./.test(name) || name === 'anonymous';

const r = (filter: string): AclRule => ({ access: 'read', filter });
const w = (filter: string): AclRule => ({ access: 'write', filter });

/**
 * A gateway: writes data and status of its chambers and its own status, reads their set
 * requests (and may write them only to clear a retained one: an empty retained publish),
 * answers on any result topic.
 */
export function gatewayPrincipal(prefix: string, id: string, chambers: readonly string[]): MqttPrincipal {
  checkChambers(chambers);
  return {
    name: serviceName.gateway(id),
    kind: 'gateway',
    rules: [
      // Reads its own chambers' data and status too: the live view of a gateway process signs in as the gateway.
      ...chambers.flatMap((c) => [
        w(`${prefix}/${c}/data`),
        w(`${prefix}/${c}/status`),
        r(`${prefix}/${c}/data`),
        r(`${prefix}/${c}/status`),
        r(`${prefix}/${c}/set/+/+`),
        w(`${prefix}/${c}/set/+/+`),
      ]),
      w(`${prefix}/gateway/${id}/status`),
      w(`${prefix}/results/+`),
    ],
  };
}

/** A collector: reads data and status, reads experiment commands and alarm acknowledgements (writes them only to clear a retained one), announces run events, publishes alarm state and events, answers requests. */
export function collectorPrincipal(prefix: string, id: string): MqttPrincipal {
  return {
    name: serviceName.collector(id),
    kind: 'collector',
    rules: [
      r(`${prefix}/+/data`),
      r(`${prefix}/+/status`),
      r(`${prefix}/gateway/+/status`),
      r(`${prefix}/experiments/+/command/+`),
      w(`${prefix}/experiments/+/command/+`),
      w(`${prefix}/experiments/+/event`),
      w(`${prefix}/results/+`),
      // The alarm engine: retained chamber state, events, acknowledgements (cleared when retained).
      w(`${prefix}/+/alarm`),
      w(`${prefix}/alarms/event`),
      r(`${prefix}/alarms/ack/+`),
      w(`${prefix}/alarms/ack/+`),
    ],
  };
}

/** The live view of `octopus start`: reads data, status and alarm state of the configured chambers, and alarm events. */
export function webPrincipal(prefix: string, gatewayId: string, chambers: readonly string[]): MqttPrincipal {
  checkChambers(chambers);
  return {
    name: serviceName.web(gatewayId),
    kind: 'web',
    rules: [
      ...chambers.flatMap((c) => [r(`${prefix}/${c}/data`), r(`${prefix}/${c}/status`), r(`${prefix}/${c}/alarm`)]),
      r(`${prefix}/alarms/event`),
    ],
  };
}

const readOnly = (prefix: string): AclRule[] => [
  r(`${prefix}/+/data`),
  r(`${prefix}/+/status`),
  r(`${prefix}/gateway/+/status`),
];

/**
 * A person (users of src/auth/users.ts). Everyone reads data, status, alarm state and
 * alarm events and the answers to their own requests; operators and admins also write
 * setpoints, experiment commands and alarm acknowledgements (under their own name) and
 * read run events.
 */
export function personPrincipal(prefix: string, name: string, role: Role): MqttPrincipal {
  if (reservedName(name))
    throw new Error(
      `user "${name}": names starting with gateway., collector. or web. (and "anonymous") are reserved for services on MQTT`,
    );
  if (/[+#/\s]/.test(name)) throw new Error(`user "${name}": an MQTT user name may not contain +, #, / or spaces`);
  const rules = [
    ...readOnly(prefix),
    r(`${prefix}/results/${name}`),
    r(`${prefix}/+/alarm`),
    r(`${prefix}/alarms/event`),
  ];
  if (atLeast(role, 'operator'))
    rules.push(
      w(`${prefix}/+/set/+/${name}`),
      w(`${prefix}/experiments/+/command/${name}`),
      r(`${prefix}/experiments/+/event`),
      w(`${prefix}/alarms/ack/${name}`),
    );
  return { name, kind: 'person', role, rules };
}

/** Unauthenticated clients, when `mqtt.broker.allow_anonymous` is true: data and status only. */
export function anonymousPrincipal(prefix: string): MqttPrincipal {
  return { name: 'anonymous', kind: 'anonymous', role: 'viewer', rules: readOnly(prefix) };
}

function checkChambers(chambers: readonly string[]): void {
  for (const c of chambers) {
    if ((RESERVED_LEVELS as readonly string[]).includes(c))
      throw new Error(`chamber id "${c}" is reserved on MQTT (reserved: ${RESERVED_LEVELS.join(', ')})`);
  }
}

// ---- matching (MQTT 3.1.1 §4.7) --------------------------------------------------

/** True when `topic` (no wildcards) matches the subscription `filter`. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  // Wildcards never match topics starting with $ (§4.7.2).
  if (topic.startsWith('$') && (f[0] === '+' || f[0] === '#')) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true;
    if (i >= t.length) return false;
    if (f[i] !== '+' && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

/** True when some topic matches both filters (a subscription that could deliver something readable). */
export function filtersOverlap(a: string, b: string): boolean {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; ; i++) {
    if (x[i] === '#' || y[i] === '#') return true;
    if (i >= x.length || i >= y.length) return x.length === y.length;
    if (x[i] !== '+' && y[i] !== '+' && x[i] !== y[i]) return false;
  }
}

/** `$share/<group>/<filter>` → `<filter>`. */
export const unshared = (filter: string): string =>
  filter.startsWith('$share/') ? filter.split('/').slice(2).join('/') : filter;

export function canPublish(p: MqttPrincipal, topic: string): boolean {
  return p.rules.some((x) => x.access === 'write' && topicMatches(x.filter, topic));
}

/** Delivery check: may `p` receive a message on `topic`? */
export function canRead(p: MqttPrincipal, topic: string): boolean {
  return p.rules.some((x) => x.access === 'read' && topicMatches(x.filter, topic));
}

/**
 * Subscription check: granted when the filter can match some readable topic; every
 * message is then checked again on delivery (canRead), as Mosquitto does.
 */
export function canSubscribe(p: MqttPrincipal, filter: string): boolean {
  const f = unshared(filter);
  return p.rules.some((x) => x.access === 'read' && filtersOverlap(x.filter, f));
}

/** True for topics that carry a request (setpoint, experiment command, alarm acknowledgement). */
export function isRequestTopic(prefix: string, topic: string): boolean {
  const parts = topic.split('/');
  const depth = prefix.split('/').length;
  if (parts.slice(0, depth).join('/') !== prefix) return false;
  return (
    (parts.length === depth + 4 && parts[depth + 1] === 'set') ||
    (parts.length === depth + 4 && parts[depth] === 'experiments' && parts[depth + 2] === 'command') ||
    (parts.length === depth + 3 && parts[depth] === 'alarms' && parts[depth + 1] === 'ack')
  );
}
