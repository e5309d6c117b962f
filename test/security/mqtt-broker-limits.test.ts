/**
 * The embedded broker (aedes) with the principal model, in-process: two gateways that
 * must not speak for each other, the retained-message and connection limits, and the
 * ACL model itself (the same rules `octopus mqtt-config` writes for Mosquitto).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UserStore } from '../../src/auth/users.ts';
import {
  canPublish,
  canRead,
  canSubscribe,
  collectorPrincipal,
  filtersOverlap,
  gatewayPrincipal,
  personPrincipal,
  topicMatches,
  webPrincipal,
} from '../../src/bus/acl.ts';
import { startEmbeddedBroker, type BrokerDenial, type EmbeddedBroker } from '../../src/bus/broker.ts';
import { PacketGuard } from '../../src/bus/packet-guard.ts';
import { MAX_FAILURES, PrincipalDirectory } from '../../src/bus/principals.ts';
import { BrokerConfig } from '../../src/config/instance-schema.ts';
import { probe, publishOrDrop, type Probe } from '../support/mqtt-probe.ts';
import { eventually, freePort } from '../support/ports.ts';

let broker: EmbeddedBroker | undefined;
const probes: Probe[] = [];
afterEach(async () => {
  for (const p of probes.splice(0)) await p.end();
  await broker?.close();
  broker = undefined;
});

async function start(limits: Partial<BrokerConfig> = {}) {
  const directory = new PrincipalDirectory('octopus', undefined, limits.allow_anonymous ?? false);
  const gwA = directory.addService(gatewayPrincipal('octopus', 'a', ['c1', 'c2']));
  const gwB = directory.addService(gatewayPrincipal('octopus', 'b', ['c9']));
  const web = directory.addService(webPrincipal('octopus', 'b', ['c1', 'c2', 'c9']));
  const denials: BrokerDenial[] = [];
  broker = await startEmbeddedBroker({
    port: await freePort(),
    prefix: 'octopus',
    limits: BrokerConfig.parse(limits),
    directory,
    onDenied: (d) => denials.push(d),
  });
  const connect = async (creds: { username: string; password: string }, subscribe?: string[]) => {
    const p = await probe(broker!.url, creds, { subscribe });
    probes.push(p);
    return p;
  };
  return { gwA, gwB, web, denials, connect };
}

describe('embedded broker with two gateways', () => {
  it("gateway A cannot publish data or status as gateway B; B's own data goes through", async () => {
    const { gwA, gwB, web, denials, connect } = await start();
    const watcher = await connect(web, ['octopus/+/data', 'octopus/+/status']);
    const a = await connect(gwA);
    expect(await publishOrDrop(a, 'octopus/c9/data', '{"fake":true}')).toBe(false);
    const a2 = await connect(gwA);
    expect(await publishOrDrop(a2, 'octopus/gateway/b/status', '{"state":"offline","ts":1}', { retain: true })).toBe(
      false,
    );
    const b = await connect(gwB);
    expect(await publishOrDrop(b, 'octopus/c9/data', '{"real":true}')).toBe(true);
    await eventually(() => watcher.got.find((m) => m.topic === 'octopus/c9/data'), "B's data");
    expect(watcher.got.map((m) => m.payload)).toEqual(['{"real":true}']);
    expect(denials.map((d) => [d.who, d.topic])).toEqual([
      ['gateway.a', 'octopus/c9/data'],
      ['gateway.a', 'octopus/gateway/b/status'],
    ]);
  });

  it('a client id in use by one principal cannot be taken over by another', async () => {
    const { gwA, gwB } = await start();
    const a = await probe(broker!.url, gwA, { clientId: 'octopus-gw' });
    probes.push(a);
    const b = await probe(broker!.url, gwB, { clientId: 'octopus-gw' });
    probes.push(b);
    expect(b.client.connected).toBe(false);
    expect(a.client.connected).toBe(true);
  });
});

describe('embedded broker limits', () => {
  it('keeps at most retained_max_count retained messages and refuses retained payloads over retained_max_bytes', async () => {
    const { gwA, connect } = await start({ retained_max_count: 2, retained_max_bytes: 100 });
    const a = await connect(gwA);
    expect(await publishOrDrop(a, 'octopus/c1/status', '{"state":"online","ts":1}', { retain: true })).toBe(true);
    expect(await publishOrDrop(a, 'octopus/c2/status', '{"state":"online","ts":1}', { retain: true })).toBe(true);
    expect(await publishOrDrop(a, 'octopus/gateway/a/status', '{"state":"online","ts":1}', { retain: true })).toBe(
      false,
    );
    expect(broker!.retainedCount()).toBe(2);
    const again = await connect(gwA);
    expect(await publishOrDrop(again, 'octopus/c1/status', 'x'.repeat(101), { retain: true })).toBe(false);
    const clear = await connect(gwA);
    expect(await publishOrDrop(clear, 'octopus/c1/status', '', { retain: true })).toBe(true);
    expect(broker!.retainedCount()).toBe(1);
  });

  it('drops a packet larger than max_packet_bytes and accepts one just under it', async () => {
    const { gwA, connect } = await start({ max_packet_bytes: 64 * 1024 });
    const a = await connect(gwA);
    expect(await publishOrDrop(a, 'octopus/c1/data', Buffer.alloc(60 * 1024))).toBe(true);
    expect(await publishOrDrop(a, 'octopus/c1/data', Buffer.alloc(65 * 1024))).toBe(false);
    expect(a.closed()).toBe(true);
  });

  it('accepts at most max_connections clients', async () => {
    const { web } = await start({ max_connections: 3 });
    const ok = [];
    for (let i = 0; i < 3; i++) ok.push(await probe(broker!.url, web));
    const extra = await probe(broker!.url, web);
    probes.push(...ok, extra);
    expect(ok.every((p) => p.client.connected)).toBe(true);
    expect(extra.client.connected).toBe(false);
  });
});

describe('anonymous access', () => {
  it('is refused by default, and read-only when allow_anonymous is set', async () => {
    const off = await start();
    const refused = await probe(broker!.url);
    probes.push(refused);
    expect(refused.client.connected).toBe(false);
    expect(off.denials.at(-1)).toMatchObject({ action: 'connect', who: 'anonymous' });
    await broker!.close();
    const on = await start({ allow_anonymous: true });
    const anon = await on.connect(
      { username: undefined as unknown as string, password: undefined as unknown as string },
      ['octopus/+/data'],
    );
    expect(anon.client.connected).toBe(true);
    const gw = await on.connect(on.gwA);
    expect(await publishOrDrop(gw, 'octopus/c1/data', '{"n":1}')).toBe(true);
    await eventually(() => anon.got.find((m) => m.topic === 'octopus/c1/data'), 'data for the anonymous reader');
    expect(await publishOrDrop(anon, 'octopus/c1/set/co2_setpoint/anonymous', '{"value":1}')).toBe(false);
  });
});

describe('password guessing', () => {
  it("locks a person's user name for a minute after 10 failures, even against the right password; services are never locked", async () => {
    const users = new UserStore(join(mkdtempSync(join(tmpdir(), 'octopus-users-')), 'users.json'));
    await users.addUser('olga', 'operator', 'olga-password');
    const directory = new PrincipalDirectory('octopus', users);
    for (let i = 0; i < MAX_FAILURES; i++)
      expect(await directory.authenticate('olga', Buffer.from(`guess-${i}`))).toBe(4);
    expect(await directory.authenticate('olga', Buffer.from('olga-password'))).toBe(4);
    const gw = directory.addService(gatewayPrincipal('octopus', 'a', ['c1']));
    for (let i = 0; i < MAX_FAILURES + 2; i++)
      expect(await directory.authenticate(gw.username, Buffer.from(`guess-${i}`))).toBe(4);
    expect(await directory.authenticate(gw.username, Buffer.from(gw.password))).toMatchObject({
      principal: { name: 'gateway.a' },
    });
  });
});

describe('the ACL model', () => {
  it('matches topics and filters as MQTT does', () => {
    expect(topicMatches('a/+/c', 'a/b/c')).toBe(true);
    expect(topicMatches('a/#', 'a')).toBe(true);
    expect(topicMatches('a/+', 'a/b/c')).toBe(false);
    expect(topicMatches('#', '$SYS/x')).toBe(false);
    expect(filtersOverlap('octopus/#', 'octopus/+/data')).toBe(true);
    expect(filtersOverlap('octopus/+/set/+/+', 'octopus/+/data')).toBe(false);
  });

  it('grants each principal exactly its part', () => {
    const viewer = personPrincipal('octopus', 'vic', 'viewer');
    const operator = personPrincipal('octopus', 'olga', 'operator');
    const gw = gatewayPrincipal('octopus', 'a', ['c1']);
    const collector = collectorPrincipal('octopus', 'ingest');
    expect(canPublish(viewer, 'octopus/c1/set/t/vic')).toBe(false);
    expect(canPublish(operator, 'octopus/c1/set/t/olga')).toBe(true);
    expect(canPublish(operator, 'octopus/c1/set/t/vic')).toBe(false);
    expect(canPublish(operator, 'octopus/experiments/e/command/olga')).toBe(true);
    expect(canPublish(operator, 'octopus/c1/data')).toBe(false);
    expect(canRead(viewer, 'octopus/c1/data')).toBe(true);
    expect(canRead(viewer, 'octopus/results/olga')).toBe(false);
    expect(canRead(operator, 'octopus/results/olga')).toBe(true);
    expect(canSubscribe(viewer, 'octopus/#')).toBe(true);
    expect(canSubscribe(viewer, 'octopus/experiments/+/command/+')).toBe(false);
    expect(canPublish(gw, 'octopus/c1/data')).toBe(true);
    expect(canPublish(gw, 'octopus/c2/data')).toBe(false);
    expect(canRead(gw, 'octopus/c1/set/t/olga')).toBe(true);
    expect(canRead(gw, 'octopus/c2/set/t/olga')).toBe(false);
    expect(canSubscribe(collector, '$share/ingest/octopus/+/data')).toBe(true);
    expect(canPublish(collector, 'octopus/c1/data')).toBe(false);
    expect(() => personPrincipal('octopus', 'gateway.a', 'admin')).toThrow(/reserved/);
    expect(() => gatewayPrincipal('octopus', 'a', ['results'])).toThrow(/reserved/);
  });

  it('follows the MQTT framing to find an oversized packet from its header', () => {
    const g = new PacketGuard(1000);
    // CONNECT-ish packet of 10 bytes, then a PUBLISH announcing 2,000,000 bytes.
    expect(g.feed(Buffer.from([0x10, 8, 0, 0, 0, 0, 0, 0, 0, 0]))).toBeUndefined();
    expect(g.feed(Buffer.from([0x30, 0x80, 0x89]))).toBeUndefined();
    expect(g.feed(Buffer.from([0x7a]))).toBe(2_000_000 + 4);
  });
});
