/**
 * `octopus start` as a user runs it: a configuration with simulated chambers (one OPC UA,
 * two Modbus units sharing a connection), the embedded broker and the HTTP API, all on
 * free loopback ports. Every chamber's data arrives over MQTT in the documented shape
 * (to an operator signed in with user name + API token), the health and metrics
 * endpoints answer, a setpoint sent over MQTT reaches the simulated PLC and is answered
 * on the operator's result topic, and SIGINT stops everything cleanly (exit 0, gateway
 * status offline). With no address configured, the HTTP server and the embedded broker
 * listen on loopback only.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthReport } from '../../src/core/health.ts';
import { connectMqtt, type MqttConnection } from '../../src/bus/mqtt-client.ts';
import { DataMessage, RequestResult, StatusMessage } from '../../src/bus/payload.ts';
import { person } from '../support/people.ts';
import { simulatedChambers, startOctopus, type RunningOctopus } from '../support/cli.ts';
import { eventually, freePort, listeningAddresses, waitForPort } from '../support/ports.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-e2e-'));
let ports: { opcua: number; modbus: number; mqtt: number; http: number };
let octopus: RunningOctopus;
let sub: MqttConnection;
const data: DataMessage[] = [];
const status = new Map<string, StatusMessage>();
const results: RequestResult[] = [];

beforeAll(async () => {
  ports = { opcua: await freePort(), modbus: await freePort(), mqtt: await freePort(), http: await freePort() };
  const config = join(dir, 'lab.yaml');
  writeFileSync(
    config,
    `
gateway: { id: e2e }
data_dir: ${JSON.stringify(join(dir, 'data'))}
simulator: { enabled: true, seed: 7 }
mqtt: { port: ${ports.mqtt}, prefix: lab }
http: { port: ${ports.http} }
${simulatedChambers(ports, { count: 3 })}`,
  );
  octopus = await startOctopus(config);
  const olga = await person(join(dir, 'data'), 'olga', 'operator');
  sub = connectMqtt({ url: `mqtt://127.0.0.1:${ports.mqtt}`, clientId: 'e2e-observer', ...olga });
  sub.on('message', (topic, payload) => {
    const body: unknown = JSON.parse(payload.toString());
    if (topic.endsWith('/data')) data.push(DataMessage.parse(body));
    else if (topic.endsWith('/status')) status.set(topic, StatusMessage.parse(body));
    else if (topic === 'lab/results/olga') results.push(RequestResult.parse(body));
  });
  await eventually(() => sub.connected, 'observer connected');
  await sub.subscribe('lab/#', 1);
}, 60_000);

afterAll(async () => {
  await sub?.end();
  await octopus?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

const latest = (chamber: string, tag: string) => {
  for (let i = data.length - 1; i >= 0; i--) {
    if (data[i]!.chamber !== chamber) continue;
    const s = data[i]!.samples.find((x) => x.tag === tag);
    if (s) return s;
  }
  return undefined;
};

describe('octopus start with simulated chambers', () => {
  it('prints where to look: health, metrics and the live MQTT topics', () => {
    expect(octopus.output()).toContain('with 3 chamber(s): c1, c2, c3');
    expect(octopus.output()).toContain(`curl http://localhost:${ports.http}/api/health`);
    expect(octopus.output()).toContain(`listening on 127.0.0.1:${ports.http} (this host only; http.host opens it)`);
    expect(octopus.output()).toContain(
      `mosquitto_sub -h 127.0.0.1 -p ${ports.mqtt} -u <user> -P <API token> -t 'lab/+/data' -v`,
    );
  });

  it('listens on loopback only when no address is configured: HTTP and the embedded broker', () => {
    // the kernel's table of listening sockets, not our own report of them
    expect(listeningAddresses(ports.http)).toEqual(['127.0.0.1']);
    expect(listeningAddresses(ports.mqtt)).toEqual(['127.0.0.1']);
  });

  it('publishes good, plausible data from every chamber on <prefix>/<chamber>/data', async () => {
    await eventually(
      () => ['c1', 'c2', 'c3'].every((c) => latest(c, 'air_temperature')?.q === 'good'),
      'good air temperature from every chamber',
    );
    // OPC UA sends changes only: a door that stays shut is in the first message, which
    // this observer may have missed; the polled Modbus chambers send it every cycle.
    await eventually(
      () =>
        ['c1', 'c2', 'c3'].every((c) => latest(c, 'relative_humidity')?.q === 'good') &&
        ['c2', 'c3'].every((c) => latest(c, 'door_open')?.q === 'good'),
      'humidity from every chamber, door from the polled ones',
    );
    for (const c of ['c1', 'c2', 'c3']) {
      const t = latest(c, 'air_temperature')!;
      expect(t.value as number, `${c} air_temperature`).toBeGreaterThan(5);
      expect(t.value as number, `${c} air_temperature`).toBeLessThan(40);
      const rh = latest(c, 'relative_humidity')!;
      expect(rh.value as number, `${c} relative_humidity`).toBeGreaterThan(20);
      expect(rh.value as number, `${c} relative_humidity`).toBeLessThanOrEqual(100);
      if (c !== 'c1') expect(typeof latest(c, 'door_open')!.value, `${c} door_open`).toBe('boolean');
      expect(Math.abs(Date.now() - t.ts), `${c} sample age`).toBeLessThan(10_000);
    }
    const msg = data.find((m) => m.chamber === 'c2')!;
    expect(msg.gw).toBe('e2e');
    // the simulator writes `SIM-<chamber id>` into the 8 string registers (16 ASCII bytes,
    // NUL-padded; src/sim/modbus-chambers.ts): decoded exactly, padding stripped
    expect(latest('c2', 'serial_number')).toMatchObject({ value: 'SIM-c2', q: 'good' });
  });

  it('keeps retained status: every chamber online, the gateway online', async () => {
    await eventually(
      () => ['c1', 'c2', 'c3'].every((c) => status.get(`lab/${c}/status`)?.state === 'online'),
      'chamber statuses online',
    );
    expect(status.get('lab/gateway/e2e/status')?.state).toBe('online');
  });

  it('answers GET /api/health with 200 and every driver online', async () => {
    const res = await fetch(`http://127.0.0.1:${ports.http}/api/health`);
    expect(res.status).toBe(200);
    const health = HealthReport.parse(await res.json());
    expect(health).toMatchObject({ status: 'ok', gateway: 'e2e', problems: [] });
    expect(health.drivers.map((d) => [d.chamber, d.driver, d.state])).toEqual([
      ['c1', 'opcua', 'online'],
      ['c2', 'modbus', 'online'],
      ['c3', 'modbus', 'online'],
    ]);
    expect(health.broker).toMatchObject({ embedded: true, connected: true });
    expect(health.published.samples).toBeGreaterThan(0);
  });

  it('exports Prometheus metrics on /metrics', async () => {
    const res = await fetch(`http://127.0.0.1:${ports.http}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/^# TYPE octopus_\w+/m);
    expect(text).toMatch(/octopus_\w+\{[^}]*chamber="c3"[^}]*\} \d+/);
  });

  it('writes a setpoint sent on <prefix>/<chamber>/set/<tag>/<user> to the PLC (Modbus and OPC UA), audited and answered', async () => {
    await sub.publish('lab/c3/set/co2_setpoint/olga', JSON.stringify({ value: 700, id: 'e2e-1' }), { qos: 1 });
    await sub.publish('lab/c1/set/co2_setpoint/olga', JSON.stringify({ value: 650 }), { qos: 1 });
    await eventually(
      () => latest('c3', 'co2_setpoint')?.value === 700 && latest('c1', 'co2_setpoint')?.value === 650,
      'setpoints read back from the PLCs',
    );
    const audit = readFileSync(join(dir, 'data', 'state', 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit).toContainEqual(
      expect.objectContaining({
        who: 'mqtt:olga',
        action: 'setpoint',
        what: 'c3/co2_setpoint',
        detail: { value: 700, result: 'written', id: 'e2e-1' },
      }),
    );
    const answer = await eventually(() => results.find((r) => r.id === 'e2e-1'), 'result on lab/results/olga');
    expect(answer).toMatchObject({
      request: 'setpoint',
      status: 'accepted',
      by: 'olga',
      value: 700,
      topic: 'lab/c3/set/co2_setpoint/olga',
    });
  });

  it('stops on SIGINT with exit code 0, frees its ports and leaves the gateway status offline', async () => {
    expect(await octopus.stop('SIGINT')).toBe(0);
    for (const port of Object.values(ports)) await expect(waitForPort(port, '127.0.0.1', 300)).rejects.toThrow();
    // The broker went with the gateway; its last retained word was sent before it stopped.
    expect(status.get('lab/gateway/e2e/status')?.state).toBe('offline');
  });
});
