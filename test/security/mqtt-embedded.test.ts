/**
 * The control plane of `octopus start` (embedded broker) attacked as issue 11 measured it:
 * every client must sign in, each principal may only do what the ACL model grants, the
 * sender of a setpoint is the authenticated user, every request is audited and answered,
 * and an oversized packet costs the process nothing. The PLC (simulated Modbus server,
 * read back every cycle) keeps its value through every refused attempt.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { person } from '../support/people.ts';
import { simulatedChambers, startOctopus, type RunningOctopus } from '../support/cli.ts';
import { probe, publishOrDrop, type Probe } from '../support/mqtt-probe.ts';
import { auditOf, freshCycles, latest, resultsOf } from '../support/mqtt-scenario.ts';
import { eventually, freePort } from '../support/ports.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-mqtt-sec-'));
const dataDir = join(dir, 'data');
let octopus: RunningOctopus;
let url = '';
let http = '';
let olga: { username: string; password: string };
let vic: { username: string; password: string };
/** The operator, watching data and her results. */
let watch: Probe;

beforeAll(async () => {
  const ports = { opcua: await freePort(), modbus: await freePort(), mqtt: await freePort(), http: await freePort() };
  const config = join(dir, 'lab.yaml');
  writeFileSync(
    config,
    `
gateway: { id: sec }
data_dir: ${JSON.stringify(dataDir)}
simulator: { enabled: true, seed: 3 }
mqtt: { port: ${ports.mqtt} }
http: { port: ${ports.http}, host: 127.0.0.1 }
${simulatedChambers(ports, { count: 2 })}`,
  );
  octopus = await startOctopus(config);
  url = `mqtt://127.0.0.1:${ports.mqtt}`;
  http = `http://127.0.0.1:${ports.http}`;
  olga = await person(dataDir, 'olga', 'operator');
  vic = await person(dataDir, 'vic', 'viewer');
  watch = await probe(url, olga, { subscribe: ['octopus/+/data', 'octopus/results/olga'] });
  await eventually(() => latest(watch, 'c2', 'co2_setpoint') !== undefined, 'c2 co2_setpoint published');
}, 90_000);

afterAll(async () => {
  await watch?.end();
  await octopus?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** The PLC value, after it has been read back a few more times. */
async function plcValue(): Promise<unknown> {
  await freshCycles(watch, 'c2');
  return latest(watch, 'c2', 'co2_setpoint');
}

describe('embedded broker: authentication', () => {
  it('listens on 127.0.0.1 only', () => {
    expect(octopus.output()).toMatch(/broker on 127\.0\.0\.1:\d+, sign-in required/);
  });

  it('refuses anonymous clients, wrong tokens, and a person using a service name', async () => {
    const anonymous = await probe(url);
    expect(anonymous.client.connected).toBe(false);
    expect(anonymous.error()?.message).toMatch(/Not authorized/i);
    const wrong = await probe(url, {
      username: 'olga',
      password: 'oct_000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
    });
    expect(wrong.error()?.message).toMatch(/Bad username or password/i);
    const borrowed = await probe(url, { username: 'vic', password: olga.password });
    expect(borrowed.client.connected, "olga's token under another name").toBe(false);
    const service = await probe(url, { username: 'gateway.sec', password: olga.password });
    expect(service.client.connected).toBe(false);
    for (const p of [anonymous, wrong, borrowed, service]) await p.end();
  });
});

describe('embedded broker: topic ACLs', () => {
  it("a viewer cannot write a setpoint, not even under the operator's name; the PLC keeps its value and the attempt is audited", async () => {
    const before = await plcValue();
    for (const topic of [
      'octopus/c2/set/co2_setpoint/vic',
      'octopus/c2/set/co2_setpoint/olga',
      'octopus/c2/set/co2_setpoint',
    ]) {
      const v = await probe(url, vic);
      expect(v.client.connected).toBe(true);
      expect(await publishOrDrop(v, topic, JSON.stringify({ value: 1999 })), `${topic} acknowledged`).toBe(false);
      await v.end();
    }
    expect(await plcValue()).toBe(before);
    const denied = auditOf(dataDir).filter((e) => e.action === 'mqtt_denied' && e.who === 'mqtt:vic');
    expect(denied.map((e) => e.what)).toEqual([
      'octopus/c2/set/co2_setpoint/vic',
      'octopus/c2/set/co2_setpoint/olga',
      'octopus/c2/set/co2_setpoint',
    ]);
    expect(auditOf(dataDir).filter((e) => e.action === 'setpoint' && e.detail?.result === 'written')).toEqual([]);
  });

  it('a viewer cannot send experiment commands, fake data or gateway status', async () => {
    for (const topic of [
      'octopus/experiments/x/command/vic',
      'octopus/c2/data',
      'octopus/gateway/sec/status',
      'octopus/results/olga',
    ]) {
      const v = await probe(url, vic);
      expect(await publishOrDrop(v, topic, '{"action":"start"}'), topic).toBe(false);
      await v.end();
    }
    expect(auditOf(dataDir).filter((e) => e.action === 'run_start')).toEqual([]);
  });

  it("an operator's setpoint is written, audited with the authenticated user and answered on her result topic only", async () => {
    const spy = await probe(url, vic, { subscribe: ['octopus/#'] });
    const o = await probe(url, olga);
    expect(
      await publishOrDrop(o, 'octopus/c2/set/co2_setpoint/olga', JSON.stringify({ value: 612, id: 'sec-1' })),
    ).toBe(true);
    const r = await eventually(
      () => resultsOf(watch, 'octopus/results/olga').find((x) => x.id === 'sec-1'),
      'result sec-1',
    );
    expect(r).toMatchObject({ status: 'accepted', request: 'setpoint', by: 'olga', value: 612 });
    expect(await plcValue()).toBe(612);
    expect(auditOf(dataDir)).toContainEqual(
      expect.objectContaining({
        who: 'mqtt:olga',
        action: 'setpoint',
        what: 'c2/co2_setpoint',
        detail: { value: 612, result: 'written', id: 'sec-1' },
      }),
    );
    // The viewer subscribed to everything, yet saw neither the request nor the answer.
    expect(spy.got.filter((m) => m.topic.includes('/set/') || m.topic.includes('/results/'))).toEqual([]);
    expect(spy.got.some((m) => m.topic === 'octopus/c2/data')).toBe(true);
    await o.end();
    await spy.end();
  });

  it('a malformed or out-of-range request is refused with the reason, audited and answered', async () => {
    const o = await probe(url, olga);
    await publishOrDrop(
      o,
      'octopus/c2/set/co2_setpoint/olga',
      '{"value": "lots", "id": "bad-1", "by": "someone-else"}',
    );
    await publishOrDrop(o, 'octopus/c2/set/co2_setpoint/olga', 'not json at all');
    await publishOrDrop(o, 'octopus/c2/set/co2_setpoint/olga', JSON.stringify({ value: 1e9, id: 'range-1' }));
    await eventually(
      () => resultsOf(watch, 'octopus/results/olga').filter((x) => x.status === 'refused').length >= 3,
      'three refusals',
    );
    const refused = resultsOf(watch, 'octopus/results/olga').filter((x) => x.status === 'refused');
    expect(refused.find((x) => x.id === 'bad-1')?.reason).toMatch(/by|Unrecognized key|value/);
    expect(refused.find((x) => x.id === null)?.reason).toMatch(/not JSON/);
    expect(refused.find((x) => x.id === 'range-1')?.reason).toMatch(/outside/);
    const entries = auditOf(dataDir).filter(
      (e) => e.action === 'setpoint' && String(e.detail?.result).startsWith('refused'),
    );
    expect(entries.length).toBeGreaterThanOrEqual(3);
    expect(entries.every((e) => e.who === 'mqtt:olga')).toBe(true);
    expect(await plcValue()).toBe(612);
    await o.end();
  });

  it('a retained request is refused by the broker (it would replay to the next gateway)', async () => {
    const o = await probe(url, olga);
    expect(
      await publishOrDrop(o, 'octopus/c2/set/co2_setpoint/olga', JSON.stringify({ value: 444 }), { retain: true }),
    ).toBe(false);
    expect(auditOf(dataDir).at(-1)).toMatchObject({
      who: 'mqtt:olga',
      action: 'mqtt_denied',
      detail: { result: expect.stringMatching(/retained/) },
    });
    expect(await plcValue()).toBe(612);
  });

  it('drops a client announcing a 5 MB packet before reading it; the process stays small and serves on', async () => {
    const o = await probe(url, olga);
    expect(await publishOrDrop(o, 'octopus/c2/set/co2_setpoint/olga', Buffer.alloc(5 * 1024 * 1024, 0x41))).toBe(false);
    expect(o.closed()).toBe(true);
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${octopus.proc.pid}/status`, 'utf8'))![1]);
    expect(rssKb, 'RSS of octopus start, kB').toBeLessThan(600 * 1024);
    expect((await fetch(`${http}/api/health`)).status).toBeLessThan(500);
    expect(await plcValue()).toBe(612);
  });
});

describe('HTTP setpoint endpoint', () => {
  const post = (token: string, body: string, tag = 'co2_setpoint') =>
    fetch(`${http}/api/chambers/c2/setpoints/${tag}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body,
    });

  it('writes for an operator, audited as api:<user>, with the same validation as MQTT', async () => {
    const res = await post(olga.password, JSON.stringify({ value: 640, id: 'http-1' }));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'accepted', value: 640, id: 'http-1', by: 'olga' });
    expect(await plcValue()).toBe(640);
    expect(auditOf(dataDir)).toContainEqual(
      expect.objectContaining({
        who: 'api:olga',
        action: 'setpoint',
        what: 'c2/co2_setpoint',
        detail: { value: 640, result: 'written', id: 'http-1' },
      }),
    );
    const bad = await post(olga.password, '{"value": 640, "by": "mallory"}');
    expect(bad.status).toBe(422);
    expect((await bad.json()).reason).toMatch(/by|Unrecognized/);
    const range = await post(olga.password, JSON.stringify({ value: -5e6 }));
    expect(range.status).toBe(422);
    expect(
      auditOf(dataDir).filter((e) => e.who === 'api:olga' && String(e.detail?.result).startsWith('refused')).length,
    ).toBeGreaterThanOrEqual(2);
  });

  it('refuses a viewer (403) and an anonymous caller (401); the PLC keeps its value', async () => {
    expect((await post(vic.password, JSON.stringify({ value: 1999 }))).status).toBe(403);
    expect(auditOf(dataDir).at(-1)).toMatchObject({
      who: 'api:vic',
      action: 'setpoint',
      what: 'c2/co2_setpoint',
      detail: { result: expect.stringMatching(/^refused: needs role operator/) },
    });
    expect(
      (
        await fetch(`${http}/api/chambers/c2/setpoints/co2_setpoint`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"value":1999}',
        })
      ).status,
    ).toBe(401);
    expect(await plcValue()).toBe(640);
  });
});
