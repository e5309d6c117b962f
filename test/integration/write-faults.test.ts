/**
 * A failed write never crashes `octopus start` and never goes unnoticed, with real
 * failing writes (a tmpfs remounted read-only; chmod does not stop root):
 * - audit log: with `state/` read-only, a data.nc download is refused with 503 naming
 *   the file and EROFS, an MQTT setpoint is refused and not written to the PLC, health
 *   is degraded naming the path and errno; the process stays up, and once the folder is
 *   writable again health recovers by itself and setpoints and downloads work;
 * - spool: with the spool folder read-only from the start, the gateway starts, keeps
 *   publishing (from memory) with no gap in `seq`, reports the folder in health, stays
 *   up, and writes its spool again when the folder is writable.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthReport } from '../../src/core/health.ts';
import { UserStore } from '../../src/auth/users.ts';
import { connectMqtt, type MqttConnection } from '../../src/bus/mqtt-client.ts';
import { DataMessage } from '../../src/bus/payload.ts';
import { loadConfig } from '../../src/config/loader.ts';
import { createExperimentStore } from '../../src/experiments/factory.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';
import { simulatedChambers, startOctopus, type RunningOctopus } from '../support/cli.ts';
import { mountTmpfs, type Mount } from '../support/faulty-fs.ts';
import { person } from '../support/people.ts';
import { eventually, freePort } from '../support/ports.ts';

const mounts: Mount[] = [];
const running: RunningOctopus[] = [];
const clients: MqttConnection[] = [];
afterAll(async () => {
  for (const c of clients) await c.end();
  for (const o of running) await o.stop('SIGKILL');
  for (const m of mounts) m.unmount();
  cleanScratch();
});

const env = {
  ...process.env,
  OCTOPUS_MQTT_URL: '',
  OCTOPUS_INFLUX_URL: '',
  OCTOPUS_HTTP_PORT: '',
  OCTOPUS_DATA_DIR: '',
  OCTOPUS_WRITE_RETRY_MS: '500',
};

async function health(port: number): Promise<{ code: number; body: HealthReport }> {
  const r = await fetch(`http://127.0.0.1:${port}/api/health`);
  return { code: r.status, body: HealthReport.parse(await r.json()) };
}

function observe(
  url: string,
  filter: string,
  creds: { username: string; password: string },
): { conn: MqttConnection; data: DataMessage[] } {
  const conn = connectMqtt({ url, clientId: `write-faults-${Math.random().toString(16).slice(2)}`, ...creds });
  clients.push(conn);
  const data: DataMessage[] = [];
  conn.on('message', (topic, payload) => {
    if (topic.endsWith('/data')) data.push(DataMessage.parse(JSON.parse(payload.toString())));
  });
  conn.on('connect', () => void conn.subscribe(filter, 1));
  return { conn, data };
}

describe('audit log on a read-only folder', () => {
  let octopus: RunningOctopus;
  let state: Mount;
  let httpPort: number;
  let mqtt: { conn: MqttConnection; data: DataMessage[] };
  let token: string;
  let olga: { username: string; password: string };
  let dataDir: string;
  const auditPath = () => join(dataDir, 'state', 'audit.jsonl');

  beforeAll(async () => {
    const dir = scratch('octopus-audit-fault-');
    dataDir = join(dir, 'data');
    const [mqttPort, opcua, modbus] = [await freePort(), await freePort(), await freePort()];
    httpPort = await freePort();
    state = mountTmpfs(join(dataDir, 'state'), 1024);
    mounts.push(state);
    const users = UserStore.forDataDir(dataDir, {});
    await users.addUser('rita', 'researcher');
    token = users.createToken('rita', 'test').token;
    // The operator who sends setpoints over MQTT (the broker requires sign-in).
    olga = await person(dataDir, 'olga', 'operator');
    const config = join(dir, 'lab.yaml');
    writeFileSync(
      config,
      `
gateway: { id: auditfault }
data_dir: ${JSON.stringify(dataDir)}
simulator: { enabled: true, seed: 3 }
mqtt: { port: ${mqttPort} }
http: { port: ${httpPort}, host: 127.0.0.1 }
experiments: { reorder_window_ms: 500, flush_interval_ms: 200 }
${simulatedChambers({ opcua, modbus }, { count: 2, intervalMs: 300 })}`,
    );
    octopus = await startOctopus(config, { env });
    running.push(octopus);
    const store = createExperimentStore(loadConfig(config, env));
    await store.create(
      {
        id: 'audit-fault',
        title: 'Audit fault',
        principal_investigator: { name: 'Ada' },
        chambers: ['c1', 'c2'],
        sampling_period_s: 1,
      },
      'test',
    );
    store.startRun('audit-fault', 'test');
    mqtt = observe(`mqtt://127.0.0.1:${mqttPort}`, 'octopus/+/data', olga);
    await eventually(() => mqtt.conn.connected, 'observer connected');
  }, 90_000);

  const download = () =>
    fetch(`http://127.0.0.1:${httpPort}/api/experiments/audit-fault/runs/r001/data.nc`, {
      headers: { authorization: `Bearer ${token}` },
    });
  const latest = (tag: string) =>
    [...mqtt.data]
      .reverse()
      .flatMap((m) => (m.chamber === 'c2' ? m.samples : []))
      .find((s) => s.tag === tag)?.value;

  it('works normally first: download and setpoint are audited', async () => {
    await eventually(async () => (await download()).status === 200, 'run file downloadable', 30_000);
    await mqtt.conn.publish('octopus/c2/set/co2_setpoint/olga', JSON.stringify({ value: 555, id: 'ok-1' }), { qos: 1 });
    await eventually(() => latest('co2_setpoint') === 555, 'setpoint 555 read back from the PLC');
    const actions = readFileSync(auditPath(), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; what: string });
    expect(actions.some((a) => a.action === 'download' && a.what === 'audit-fault/r001/data.nc')).toBe(true);
    expect(actions.some((a) => a.action === 'setpoint' && a.what === 'c2/co2_setpoint')).toBe(true);
  }, 60_000);

  it('refuses a download with 503 naming the audit file and EROFS, and health names it; the process stays up', async () => {
    state.readOnly();
    const r = await download();
    expect(r.status).toBe(503);
    const body = (await r.json()) as { error: string; path: string; errno: string };
    expect(body).toMatchObject({ path: auditPath(), errno: 'EROFS' });
    expect(body.error).toContain('download of audit-fault/r001/data.nc refused');
    const h = await health(httpPort);
    expect(h.code).toBe(503);
    expect(h.body.status).toBe('degraded');
    expect(h.body.write_faults).toEqual([
      expect.objectContaining({ target: 'audit', path: auditPath(), errno: 'EROFS' }),
    ]);
    expect(h.body.problems.some((p) => p.includes(auditPath()) && p.includes('EROFS'))).toBe(true);
    expect(octopus.proc.exitCode).toBeNull();
  });

  it('refuses an MQTT setpoint it cannot audit: the PLC keeps its value', async () => {
    await mqtt.conn.publish('octopus/c2/set/co2_setpoint/olga', JSON.stringify({ value: 777, id: 'ro-1' }), { qos: 1 });
    await eventually(
      () => /setpoint c2\/co2_setpoint by mqtt:olga \(request ro-1\) refused: .*EROFS/.test(octopus.output()),
      'refusal logged',
    );
    // Several more poll cycles of c2 after the refusal: still the old value.
    const seen = mqtt.data.length;
    await eventually(
      () =>
        mqtt.data.slice(seen).filter((m) => m.chamber === 'c2' && m.samples.some((s) => s.tag === 'co2_setpoint'))
          .length >= 3,
      'three more c2 messages',
      30_000,
    );
    expect(
      mqtt.data
        .slice(seen)
        .flatMap((m) => (m.chamber === 'c2' ? m.samples : []))
        .filter((s) => s.tag === 'co2_setpoint')
        .map((s) => s.value),
    ).not.toContain(777);
    expect(latest('co2_setpoint')).toBe(555);
    expect(octopus.proc.exitCode).toBeNull();
  }, 60_000);

  it('recovers by itself once the folder is writable: health ok again, setpoint and download audited', async () => {
    state.writable();
    await eventually(
      async () => ((await health(httpPort)).body.write_faults ?? []).length === 0,
      'audit fault cleared by itself',
      30_000,
    );
    await mqtt.conn.publish('octopus/c2/set/co2_setpoint/olga', JSON.stringify({ value: 600, id: 'rw-1' }), { qos: 1 });
    await eventually(() => latest('co2_setpoint') === 600, 'setpoint 600 read back from the PLC');
    expect((await download()).status).toBe(200);
    await eventually(
      () =>
        readFileSync(auditPath(), 'utf8').includes('"who":"mqtt:olga"') &&
        readFileSync(auditPath(), 'utf8').includes('"id":"rw-1"'),
      'setpoint audited',
    );
    expect(octopus.output()).toMatch(/audit: .*audit\.jsonl is writable again/);
    expect(octopus.proc.exitCode).toBeNull();
  }, 60_000);
});

describe('spool folder read-only from the start', () => {
  let octopus: RunningOctopus;
  let spool: Mount;
  let httpPort: number;
  let mqtt: { conn: MqttConnection; data: DataMessage[] };
  let spoolDir: string;

  beforeAll(async () => {
    const dir = scratch('octopus-spool-fault-');
    const dataDir = join(dir, 'data');
    spoolDir = join(dataDir, 'spool');
    mkdirSync(dataDir, { recursive: true });
    const [mqttPort, opcua, modbus] = [await freePort(), await freePort(), await freePort()];
    httpPort = await freePort();
    spool = mountTmpfs(spoolDir, 4096);
    mounts.push(spool);
    spool.readOnly();
    // A viewer watches the data (the broker requires sign-in).
    const vic = await person(dataDir, 'vic', 'viewer');
    const config = join(dir, 'lab.yaml');
    writeFileSync(
      config,
      `
gateway: { id: spoolfault }
data_dir: ${JSON.stringify(dataDir)}
simulator: { enabled: true, seed: 4 }
mqtt: { port: ${mqttPort} }
http: { port: ${httpPort}, host: 127.0.0.1 }
collector: { enabled: false }
experiments: { enabled: false }
${simulatedChambers({ opcua, modbus }, { count: 2, intervalMs: 300 })}`,
    );
    octopus = await startOctopus(config, { env });
    running.push(octopus);
    mqtt = observe(`mqtt://127.0.0.1:${mqttPort}`, 'octopus/+/data', vic);
    await eventually(() => mqtt.conn.connected, 'observer connected');
  }, 90_000);

  it('starts, publishes from memory and reports the spool folder with EROFS', async () => {
    await eventually(
      () => mqtt.data.filter((m) => m.chamber === 'c2').length >= 3,
      'data published without a spool',
      30_000,
    );
    const h = await health(httpPort);
    expect(h.body.status).toBe('degraded');
    expect(h.body.write_faults).toEqual([expect.objectContaining({ target: 'spool', errno: 'EROFS' })]);
    expect(h.body.write_faults![0]!.path.startsWith(spoolDir)).toBe(true);
    expect(h.body.problems.some((p) => p.includes(spoolDir) && p.includes('EROFS') && p.includes('memory'))).toBe(true);
    expect(readdirSync(spoolDir)).toEqual([]);
  }, 60_000);

  it('stays up well past the 5 s that used to kill it, publishing every message (no gap in seq)', async () => {
    await eventually(async () => (await health(httpPort)).body.uptime_s >= 8, 'up for 8 s', 30_000);
    expect(octopus.proc.exitCode).toBeNull();
    const seqs = [...new Set(mqtt.data.map((m) => m.seq))].sort((a, b) => a - b);
    expect(seqs.length).toBeGreaterThan(10);
    expect(seqs.at(-1)! - seqs[0]! + 1).toBe(seqs.length);
    expect((await health(httpPort)).body.spool.dropped_samples).toBe(0);
  }, 60_000);

  it('writes its spool again once the folder is writable, and health is ok', async () => {
    spool.writable();
    await eventually(async () => (await health(httpPort)).body.status === 'ok', 'health ok again', 30_000);
    await eventually(
      () => readdirSync(spoolDir).some((f) => /^seg-\d{16}\.log$/.test(f)),
      'a segment file in the spool folder',
    );
    const before = mqtt.data.length;
    await eventually(() => mqtt.data.length > before + 3, 'still publishing');
    const seqs = [...new Set(mqtt.data.map((m) => m.seq))].sort((a, b) => a - b);
    expect(seqs.at(-1)! - seqs[0]! + 1).toBe(seqs.length);
    expect(octopus.output()).toContain('is writable again');
    expect(existsSync(join(spoolDir, 'cursor.json'))).toBe(true);
  }, 60_000);
});
