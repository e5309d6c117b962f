/** Who may read alarm state and events and who may acknowledge, in the one ACL model of both brokers. */
import { describe, expect, it } from 'vitest';
import {
  anonymousPrincipal,
  canPublish,
  canRead,
  collectorPrincipal,
  isRequestTopic,
  personPrincipal,
  webPrincipal,
} from '../../src/bus/acl.ts';
import { aclFile } from '../../src/bus/mosquitto-config.ts';

describe('alarm topics in the MQTT ACL', () => {
  it('every signed-in person reads state and events; only operators and admins acknowledge, under their own name', () => {
    for (const role of ['viewer', 'researcher', 'operator', 'admin'] as const) {
      const p = personPrincipal('lab', 'ann', role);
      expect(canRead(p, 'lab/c1/alarm')).toBe(true);
      expect(canRead(p, 'lab/alarms/event')).toBe(true);
      expect(canPublish(p, 'lab/alarms/ack/ann')).toBe(role === 'operator' || role === 'admin');
      expect(canPublish(p, 'lab/alarms/ack/bob')).toBe(false);
      expect(canPublish(p, 'lab/c1/alarm')).toBe(false);
    }
    expect(canRead(anonymousPrincipal('lab'), 'lab/c1/alarm')).toBe(false);
  });

  it('the collector publishes state and events and reads acknowledgements; the web view reads its chambers', () => {
    const c = collectorPrincipal('lab', 'gw');
    expect(canPublish(c, 'lab/c1/alarm')).toBe(true);
    expect(canPublish(c, 'lab/alarms/event')).toBe(true);
    expect(canRead(c, 'lab/alarms/ack/ann')).toBe(true);
    const w = webPrincipal('lab', 'gw', ['c1']);
    expect(canRead(w, 'lab/c1/alarm')).toBe(true);
    expect(canRead(w, 'lab/c2/alarm')).toBe(false);
    expect(canPublish(w, 'lab/alarms/ack/ann')).toBe(false);
  });

  it('acknowledgements are requests (never retained); the chamber id "alarms" is reserved', () => {
    expect(isRequestTopic('lab', 'lab/alarms/ack/ann')).toBe(true);
    expect(isRequestTopic('lab', 'lab/alarms/event')).toBe(false);
    expect(() => webPrincipal('lab', 'gw', ['alarms'])).toThrow(/reserved/);
  });

  it('the generated Mosquitto ACL grants the same', () => {
    const acl = aclFile([
      collectorPrincipal('lab', 'gw'),
      personPrincipal('lab', 'olga', 'operator'),
      personPrincipal('lab', 'vic', 'viewer'),
    ]);
    const section = (user: string) => acl.split(/^user /m).find((s) => s.startsWith(`${user}\n`)) ?? '';
    expect(section('olga')).toContain('topic write lab/alarms/ack/olga');
    expect(section('vic')).toContain('topic read lab/+/alarm');
    expect(section('vic')).not.toContain('alarms/ack');
    expect(section('collector.gw')).toContain('topic write lab/alarms/event');
  });
});
