/**
 * The production setup: a real Mosquitto running the password file, ACL file and
 * mosquitto.conf written by `octopus mqtt-config` (two gateways, a collector, an
 * operator and a viewer, a TLS listener with a test CA), and `octopus start` running
 * gateway "gwa" and the collector in one process, each signed in as itself. The same attacks as against the embedded broker, with the same
 * outcome: refused, the PLC (simulated, read back every cycle) unchanged, accepted
 * requests audited with the authenticated user and answered on the result topic.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { person } from '../support/people.ts';
import { loadConfig } from '../../src/config/loader.ts';
import { createExperimentStore } from '../../src/experiments/factory.ts';
import type { ExperimentStore } from '../../src/experiments/store.ts';
import { runCli, simulatedChambers, startOctopus, type RunningOctopus } from '../support/cli.ts';
import { Mosquitto } from '../support/mosquitto.ts';
import { probe, publishOrDrop, type Probe } from '../support/mqtt-probe.ts';
import { auditOf, freshCycles, latest, resultsOf } from '../support/mqtt-scenario.ts';
import { eventually, freePort } from '../support/ports.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-mosq-sec-'));
const dataDir = join(dir, 'data');
const gen = join(dir, 'generated');
let mosquitto: Mosquitto;
let octopus: RunningOctopus;
let url = '';
let tlsUrl = '';
let configOutput = '';
const creds: Record<string, { username: string; password: string }> = {};
let watch: Probe;
let identities: Record<string, string> = {};
let store: ExperimentStore;

/** A test CA and a server certificate for 127.0.0.1, made with openssl. */
function makeCertificates(out: string): void {
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: out, stdio: 'pipe' });
  run(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '2',
    '-subj',
    '/CN=Octopus test CA',
  );
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(out, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  run(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'server.crt',
    '-days',
    '2',
    '-extfile',
    'san.ext',
  );
}

const envFile = (name: string) => {
  const text = readFileSync(join(gen, 'secrets', `${name}.env`), 'utf8');
  return {
    username: /^OCTOPUS_MQTT_USERNAME=(.+)$/m.exec(text)![1]!,
    password: /^OCTOPUS_MQTT_PASSWORD=(.+)$/m.exec(text)![1]!,
  };
};

beforeAll(async () => {
  const ports = {
    opcua: await freePort(),
    modbus: await freePort(),
    mqtt: await freePort(),
    mqtts: await freePort(),
    http: await freePort(),
  };
  url = `mqtt://127.0.0.1:${ports.mqtt}`;
  tlsUrl = `mqtts://127.0.0.1:${ports.mqtts}`;
  const gwa = join(dir, 'gwa.yaml');
  writeFileSync(
    gwa,
    `
gateway: { id: gwa }
data_dir: ${JSON.stringify(dataDir)}
simulator: { enabled: true, seed: 4 }
mqtt: { url: "${url}", username_env: OCTOPUS_MQTT_USERNAME, password_env: OCTOPUS_MQTT_PASSWORD }
collector: { enabled: true, username_env: OCTOPUS_COLLECTOR_MQTT_USERNAME, password_env: OCTOPUS_COLLECTOR_MQTT_PASSWORD }
http: { port: ${ports.http}, host: 127.0.0.1 }
${simulatedChambers(ports, { count: 2 })}`,
  );
  const gwb = join(dir, 'gwb.yaml');
  writeFileSync(
    gwb,
    `
gateway: { id: gwb }
data_dir: ${JSON.stringify(dataDir)}
chambers:
  - { id: c9, driver: modbus, profile: phytolab-gc2, endpoint: "tcp://127.0.0.1:1" }
`,
  );
  await person(dataDir, 'olga', 'operator');
  await person(dataDir, 'vic', 'viewer');
  mkdirSync(gen, { recursive: true });
  makeCertificates(gen);
  const r = runCli([
    'mqtt-config',
    '--config',
    gwa,
    '--config',
    gwb,
    '--out',
    gen,
    '--listener',
    String(ports.mqtt),
    '--listener-host',
    '127.0.0.1',
    '--tls-port',
    String(ports.mqtts),
    '--tls-ca',
    join(gen, 'ca.crt'),
    '--tls-cert',
    join(gen, 'server.crt'),
    '--tls-key',
    join(gen, 'server.key'),
  ]);
  configOutput = r.stdout;
  if (r.code !== 0) throw new Error(`octopus mqtt-config failed (${r.code}): ${r.stderr}`);
  for (const n of ['gateway.gwa', 'gateway.gwb', 'collector.ingest', 'olga', 'vic']) creds[n] = envFile(n);
  chmodSync(dir, 0o755); // mosquitto (user "mosquitto") must reach generated/
  mosquitto = await Mosquitto.startGenerated(gen, ports.mqtt);
  identities = {
    OCTOPUS_MQTT_USERNAME: creds['gateway.gwa']!.username,
    OCTOPUS_MQTT_PASSWORD: creds['gateway.gwa']!.password,
    OCTOPUS_COLLECTOR_MQTT_USERNAME: creds['collector.ingest']!.username,
    OCTOPUS_COLLECTOR_MQTT_PASSWORD: creds['collector.ingest']!.password,
  };
  octopus = await startOctopus(gwa, { env: identities });
  store = createExperimentStore(
    loadConfig(gwa, { ...process.env, ...identities, OCTOPUS_MQTT_URL: '', OCTOPUS_DATA_DIR: '' }),
  );
  watch = await probe(url, creds.olga, { subscribe: ['octopus/+/data', 'octopus/results/olga'] });
  await eventually(
    () => latest(watch, 'c2', 'co2_setpoint') !== undefined,
    'c2 co2_setpoint published through Mosquitto',
    40_000,
  );
}, 120_000);

afterAll(async () => {
  await watch?.end();
  await octopus?.stop('SIGKILL');
  await mosquitto?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function plcValue(): Promise<unknown> {
  await freshCycles(watch, 'c2');
  return latest(watch, 'c2', 'co2_setpoint');
}

describe('octopus mqtt-config', () => {
  it('writes one principal per gateway, collector and person, secrets 0600, passwords in mosquitto_passwd format', () => {
    expect(configOutput).toMatch(/2 gateway\(s\), 1 collector\(s\), 2 person\(s\)/);
    expect(statSync(join(gen, 'passwd')).mode & 0o777).toBe(0o600);
    expect(statSync(join(gen, 'secrets', 'olga.env')).mode & 0o777).toBe(0o600);
    const passwd = readFileSync(join(gen, 'passwd'), 'utf8');
    expect(
      passwd
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(':')[0]),
    ).toEqual(['gateway.gwa', 'gateway.gwb', 'collector.ingest', 'olga', 'vic']);
    expect(passwd).toMatch(/^olga:\$7\$\d+\$[A-Za-z0-9+/=]{16}\$[A-Za-z0-9+/=]{88}$/m);
    const acl = readFileSync(join(gen, 'acl'), 'utf8');
    expect(acl).toContain('user olga\ntopic read octopus/+/data');
    expect(acl).toContain('topic write octopus/+/set/+/olga');
    expect(acl).not.toContain('topic write octopus/+/set/+/vic');
    const conf = readFileSync(join(gen, 'mosquitto.conf'), 'utf8');
    expect(conf).toMatch(/^allow_anonymous false$/m);
    expect(conf).toMatch(/^max_packet_size 1048576$/m);
    expect(conf).toMatch(/^max_connections 256$/m);
  });

  it('keeps the passwords on a re-run (nobody is locked out by adding a user)', () => {
    const again = runCli(['mqtt-config', '--config', join(dir, 'gwa.yaml'), '--out', join(dir, 'rerun')]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('new passwords');
    const third = runCli(['mqtt-config', '--config', join(dir, 'gwa.yaml'), '--out', join(dir, 'rerun')]);
    expect(third.stdout).not.toContain('new passwords');
  });
});

describe('Mosquitto with the generated files', () => {
  it('refuses anonymous clients and wrong passwords', async () => {
    const anonymous = await probe(url);
    const wrong = await probe(url, { username: 'olga', password: 'not-her-password' });
    const borrowed = await probe(url, { username: 'vic', password: creds.olga!.password });
    for (const p of [anonymous, wrong, borrowed]) {
      expect(p.client.connected).toBe(false);
      expect(p.error()?.message).toMatch(/Not authorized|Bad username/i);
      await p.end();
    }
  });

  it("a viewer's setpoint (under any name) never reaches the gateway; the PLC keeps its value", async () => {
    const before = await plcValue();
    const v = await probe(url, creds.vic);
    for (const who of ['vic', 'olga'])
      await publishOrDrop(v, `octopus/c2/set/co2_setpoint/${who}`, JSON.stringify({ value: 1999 }));
    await publishOrDrop(v, 'octopus/experiments/x/command/vic', '{"action":"start"}');
    await v.end();
    expect(await plcValue()).toBe(before);
    expect(auditOf(dataDir).filter((e) => e.action === 'setpoint')).toEqual([]);
  });

  it('gateway A cannot publish data or status as gateway B', async () => {
    const viewer = await probe(url, creds.vic, { subscribe: ['octopus/#'] });
    const a = await probe(url, creds['gateway.gwa']);
    await publishOrDrop(a, 'octopus/c9/data', '{"from":"gwa"}');
    await publishOrDrop(a, 'octopus/gateway/gwb/status', '{"state":"offline","ts":1}');
    const b = await probe(url, creds['gateway.gwb']);
    await publishOrDrop(b, 'octopus/c9/data', '{"from":"gwb"}');
    await eventually(() => viewer.got.find((m) => m.topic === 'octopus/c9/data'), "gwb's own message");
    expect(
      viewer.got
        .filter((m) => m.topic === 'octopus/c9/data' || m.topic === 'octopus/gateway/gwb/status')
        .map((m) => m.payload),
    ).toEqual(['{"from":"gwb"}']);
    for (const p of [viewer, a, b]) await p.end();
  });

  it("an operator's setpoint is written, audited with the authenticated user and answered to her only", async () => {
    const spy = await probe(url, creds.vic, { subscribe: ['octopus/#'] });
    const o = await probe(url, creds.olga);
    await publishOrDrop(o, 'octopus/c2/set/co2_setpoint/olga', JSON.stringify({ value: 615, id: 'mq-1' }));
    expect(
      await eventually(() => resultsOf(watch, 'octopus/results/olga').find((x) => x.id === 'mq-1'), 'result mq-1'),
    ).toMatchObject({ status: 'accepted', by: 'olga', value: 615 });
    expect(await plcValue()).toBe(615);
    expect(auditOf(dataDir)).toContainEqual(
      expect.objectContaining({
        who: 'mqtt:olga',
        action: 'setpoint',
        what: 'c2/co2_setpoint',
        detail: { value: 615, result: 'written', id: 'mq-1' },
      }),
    );
    expect(spy.got.filter((m) => m.topic.includes('/set/') || m.topic.includes('/results/'))).toEqual([]);
    for (const p of [spy, o]) await p.end();
  });

  it("experiment commands: the operator's starts a run as mqtt:<her>, answered; the viewer's never arrives", async () => {
    await store.create(
      {
        id: 'acl-test',
        title: 'ACL test',
        principal_investigator: { name: 'Ada Lovelace' },
        chambers: ['c1'],
        sampling_period_s: 1,
      },
      'test',
    );
    const v = await probe(url, creds.vic);
    await publishOrDrop(v, 'octopus/experiments/acl-test/command/vic', '{"action":"start","id":"v-1"}');
    await publishOrDrop(v, 'octopus/experiments/acl-test/command/olga', '{"action":"start","id":"v-2"}');
    await v.end();
    const o = await probe(url, creds.olga);
    await publishOrDrop(o, 'octopus/experiments/acl-test/command/olga', '{"action":"start","id":"o-1"}');
    expect(
      await eventually(() => resultsOf(watch, 'octopus/results/olga').find((x) => x.id === 'o-1'), 'result o-1'),
    ).toMatchObject({ request: 'command', status: 'accepted', run: 'r001', by: 'olga' });
    await publishOrDrop(o, 'octopus/experiments/acl-test/command/olga', '{"action":"stop","id":"o-2"}');
    await eventually(() => resultsOf(watch, 'octopus/results/olga').find((x) => x.id === 'o-2'), 'result o-2');
    expect(store.get('acl-test').runs).toEqual([
      expect.objectContaining({ id: 'r001', started_by: 'mqtt:olga', stopped_by: 'mqtt:olga' }),
    ]);
    expect(
      auditOf(dataDir)
        .filter((e) => e.what === 'acl-test')
        .map((e) => [e.who, e.action]),
    ).toEqual([
      ['mqtt:olga', 'run_start'],
      ['mqtt:olga', 'run_stop'],
    ]);
    expect(resultsOf(watch, 'octopus/results/olga').some((x) => x.id === 'v-2')).toBe(false);
    await o.end();
  });

  it('a malformed request is refused with the reason, audited and answered', async () => {
    const o = await probe(url, creds.olga);
    await publishOrDrop(o, 'octopus/c2/set/co2_setpoint/olga', '{"value": 500, "id": "mq-bad", "by": "mallory"}');
    const r = await eventually(
      () => resultsOf(watch, 'octopus/results/olga').find((x) => x.id === 'mq-bad'),
      'refusal mq-bad',
    );
    expect(r).toMatchObject({ status: 'refused', by: 'olga' });
    expect(auditOf(dataDir)).toContainEqual(
      expect.objectContaining({
        who: 'mqtt:olga',
        action: 'setpoint',
        detail: expect.objectContaining({ id: 'mq-bad', result: expect.stringMatching(/^refused/) }),
      }),
    );
    expect(await plcValue()).toBe(615);
    await o.end();
  });

  it('a flood of retained requests leaves nothing to replay: each is handled once, audited, and deleted by the gateway', async () => {
    const o = await probe(url, creds.olga);
    for (let i = 0; i < 30; i++)
      await publishOrDrop(o, `octopus/c2/set/flood_${i}/olga`, JSON.stringify({ value: i }), { retain: true });
    await publishOrDrop(o, 'octopus/c2/set/co2_setpoint/olga', JSON.stringify({ value: 620, id: 'retained-1' }), {
      retain: true,
    });
    await eventually(
      () => auditOf(dataDir).filter((e) => e.who === 'mqtt:olga' && /flood_/.test(e.what)).length >= 30,
      '30 flood requests audited',
    );
    expect(
      await eventually(
        () => resultsOf(watch, 'octopus/results/olga').find((x) => x.id === 'retained-1'),
        'result retained-1',
      ),
    ).toMatchObject({ status: 'accepted' });
    // A gateway connecting now gets no retained request: the marker it publishes itself
    // arrives after anything the broker still kept for that filter.
    const fresh = await probe(url, creds['gateway.gwa'], { subscribe: ['octopus/c2/set/+/+'] });
    await eventually(async () => {
      await publishOrDrop(fresh, 'octopus/c2/set/marker/test', 'm');
      return fresh.got.find((m) => m.payload === 'm');
    }, 'marker');
    expect(fresh.got.filter((m) => m.retained && m.payload.length > 0)).toEqual([]);
    expect(await plcValue()).toBe(620);
    expect(auditOf(dataDir).filter((e) => e.detail?.id === 'retained-1')).toHaveLength(1);
    for (const p of [o, fresh]) await p.end();
  });

  it('drops a client sending a packet over max_packet_size', async () => {
    const o = await probe(url, creds.olga);
    expect(await publishOrDrop(o, 'octopus/c2/set/co2_setpoint/olga', Buffer.alloc(2 * 1024 * 1024, 0x41))).toBe(false);
    await eventually(() => o.closed(), 'connection closed by Mosquitto');
    expect(await plcValue()).toBe(620);
  });

  it('serves mqtts with the test CA, and a client that does not trust it cannot connect', async () => {
    const tls = await probe(tlsUrl, creds.vic, { subscribe: ['octopus/c2/data'], caFile: join(gen, 'ca.crt') });
    expect(tls.client.connected).toBe(true);
    await eventually(() => tls.got.find((m) => m.topic === 'octopus/c2/data'), 'data over mqtts');
    const untrusting = await probe(tlsUrl, creds.vic);
    expect(untrusting.client.connected).toBe(false);
    expect(untrusting.error()?.message).toMatch(/self.signed|certificate/i);
    for (const p of [tls, untrusting]) await p.end();
  });
});
