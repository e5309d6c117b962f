/**
 * A run from start to archive, in `octopus start` with simulated chambers: the
 * experiment is created as a folder, a run starts by MQTT command, samples of its
 * chambers go into the run's NetCDF file on the run's grid, the stop closes the file and
 * moves it into the experiment folder with its checksum, and a PLC's run-trigger tag
 * starts the next run by itself. netCDF4 (python) judges the file against what the
 * gateway published.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthReport } from '../../src/core/health.ts';
import { connectMqtt, type MqttConnection } from '../../src/bus/mqtt-client.ts';
import { DataMessage, ExperimentEvent, RequestResult } from '../../src/bus/payload.ts';
import { person } from '../support/people.ts';
import { loadConfig } from '../../src/config/loader.ts';
import { createExperimentStore } from '../../src/experiments/factory.ts';
import type { ExperimentStore } from '../../src/experiments/store.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';
import { runCli, simulatedChambers, startOctopus, type RunningOctopus } from '../support/cli.ts';
import { ncdump, pythonView } from '../support/netcdf.ts';
import { eventually, freePort } from '../support/ports.ts';

let octopus: RunningOctopus;
let mqtt: MqttConnection;
let store: ExperimentStore;
let httpPort: number;
let configFile: string;
const events: ExperimentEvent[] = [];
const results: RequestResult[] = [];
/** Samples published before this were not seen by the test client. */
let subscribedAt = 0;
/** chamber → tag → ts → value as published */
const published = new Map<string, number | boolean>();

beforeAll(async () => {
  const dir = scratch('octopus-archive-');
  const [mqttPort, opcua, modbus] = [await freePort(), await freePort(), await freePort()];
  httpPort = await freePort();
  const config = join(dir, 'lab.yaml');
  configFile = config;
  writeFileSync(
    config,
    `
gateway: { id: archive }
data_dir: ${JSON.stringify(join(dir, 'data'))}
simulator: { enabled: true, seed: 5 }
mqtt: { port: ${mqttPort} }
http: { port: ${httpPort}, host: 127.0.0.1 }
experiments: { reorder_window_ms: 1000, flush_interval_ms: 200 }
${simulatedChambers({ opcua, modbus }, { count: 2 })}`,
  );
  const env = {
    ...process.env,
    OCTOPUS_MQTT_URL: '',
    OCTOPUS_INFLUX_URL: '',
    OCTOPUS_HTTP_PORT: '',
    OCTOPUS_DATA_DIR: '',
  };
  octopus = await startOctopus(config, { env });
  // The same folders, as another process (the API, the CLI) sees them.
  store = createExperimentStore(loadConfig(config, env));
  const olga = await person(join(dir, 'data'), 'olga', 'operator');
  mqtt = connectMqtt({ url: `mqtt://127.0.0.1:${mqttPort}`, clientId: 'archive-test', ...olga });
  mqtt.on('message', (topic, payload) => {
    const body: unknown = JSON.parse(payload.toString());
    if (topic.endsWith('/event')) events.push(ExperimentEvent.parse(body));
    else if (topic === 'octopus/results/olga') results.push(RequestResult.parse(body));
    else if (topic.endsWith('/data')) {
      const m = DataMessage.parse(body);
      for (const s of m.samples)
        if (typeof s.value === 'number' || typeof s.value === 'boolean')
          published.set(`${m.chamber}/${s.tag}/${s.ts}`, s.value);
    }
  });
  await eventually(() => mqtt.connected, 'test client connected');
  await mqtt.subscribe(['octopus/experiments/+/event', 'octopus/+/data', 'octopus/results/olga'], 1);
  subscribedAt = Date.now();
}, 60_000);

afterAll(async () => {
  await octopus?.stop('SIGKILL');
  await mqtt?.end();
  cleanScratch();
});

describe('experiment runs archived as NetCDF', () => {
  it('starts a run by MQTT command, writes its chambers on the run grid, and archives the file at stop', async () => {
    await store.create(
      {
        id: 'co2-test',
        title: 'CO2 enrichment test',
        principal_investigator: { name: 'Ada Lovelace' },
        chambers: ['c1', 'c2'],
        sampling_period_s: 1,
        treatments: [{ chamber: 'c1', name: 'elevated', setpoints: { co2_setpoint: 700 } }],
      },
      'test',
    );
    await mqtt.publish(
      'octopus/experiments/co2-test/command/olga',
      JSON.stringify({ action: 'start', note: 'smoke test', id: 'start-1' }),
      { qos: 1 },
    );
    await eventually(() => events.find((e) => e.event === 'run_started'), 'run_started event');
    expect(events[0]).toMatchObject({ experiment: 'co2-test', run: 'r001', chambers: ['c1', 'c2'] });
    // The sender is the authenticated user of the topic, never a name in the payload.
    expect(store.get('co2-test').runs[0]).toMatchObject({
      status: 'running',
      started_by: 'mqtt:olga',
      note: 'smoke test',
    });
    expect(
      await eventually(() => results.find((r) => r.id === 'start-1'), 'result of the start command'),
    ).toMatchObject({ request: 'command', status: 'accepted', run: 'r001', by: 'olga' });
    // Wait until the run has a few seconds of records (not a fixed sleep: the machine may be slow).
    const health = await eventually(
      async () => {
        const h = HealthReport.parse(await (await fetch(`http://127.0.0.1:${httpPort}/api/health`)).json());
        return Number(h.sinks.netcdf?.records) >= 6 ? h : undefined;
      },
      'six records in the run',
      60_000,
    );
    expect(health.sinks.netcdf).toMatchObject({ state: 'ok', open_runs: ['co2-test/r001'], nas_available: true });

    await mqtt.publish('octopus/experiments/co2-test/command/olga', JSON.stringify({ action: 'stop' }), { qos: 1 });
    await eventually(() => events.find((e) => e.event === 'run_stopped'), 'run_stopped event');
    const e = store.get('co2-test');
    const file = join(e.dir, 'runs', 'r001', 'co2-test_r001.nc');
    await eventually(
      () =>
        existsSync(file) && readFileSync(join(e.dir, 'MANIFEST.sha256'), 'utf8').includes('runs/r001/co2-test_r001.nc'),
      'archived file in the manifest',
    );
    expect(spawnSync('sha256sum', ['-c', 'MANIFEST.sha256'], { cwd: e.dir, encoding: 'utf8' }).status).toBe(0);
    expect(readFileSync(join(e.dir, 'README.md'), 'utf8')).toMatch(/\| r001 \| stopped \|/);
    // The completeness report is written beside the file at stop, listed in the manifest and shown in the README.
    await eventually(
      () => readFileSync(join(e.dir, 'MANIFEST.sha256'), 'utf8').includes('runs/r001/completeness.json'),
      'completeness report in the manifest',
    );
    const report = JSON.parse(readFileSync(join(e.dir, 'runs', 'r001', 'completeness.json'), 'utf8')) as {
      run: string;
      file: string;
      slots: number;
      chambers: Record<string, unknown>;
    };
    expect(report).toMatchObject({ run: 'co2-test/r001', file: 'co2-test_r001.nc' });
    expect(Object.keys(report.chambers)).toEqual(['c1', 'c2']);
    expect(readFileSync(join(e.dir, 'README.md'), 'utf8')).toContain('## Completeness of run co2-test/r001');

    const dump = ncdump(file, true);
    expect(dump.status).toBe(0);
    expect(dump.stdout).toContain(':Conventions = "CF-1.11, ACDD-1.3"');
    expect(dump.stdout).toContain(':id = "co2-test/r001"');
    expect(dump.stdout).toContain('air_temperature:standard_name = "air_temperature"');
    const view = pythonView(file, ['time', 'station_name', 'air_temperature', 'air_temperature_qc']).netcdf4;
    const times = view.time_iso!;
    expect(times.length).toBeGreaterThanOrEqual(5);
    expect(report.slots).toBe(times.length);
    const stations = view.vars.station_name!.data as string[];
    expect(stations).toEqual(['c1', 'c2']);
    // Every measured cell (qc good/uncertain) holds a sample the gateway published within
    // half a period of the slot instant; a held cell (qc 4, the OPC UA chamber reports on
    // change) a value the chamber published before; anything else is a fill value: never
    // a made-up number. Late samples are patched in, so every slot after the first is
    // measured or held.
    const temps = view.vars.air_temperature!.data as Array<Array<number | null>>;
    const qcs = view.vars.air_temperature_qc!.data as number[][];
    const of = (c: string) =>
      [...published]
        .filter(([k]) => k.startsWith(`${c}/air_temperature/`))
        .map(([k, v]) => ({ ts: Number(k.split('/')[2]), v: v as number }));
    // Samples stamped after the stop are not part of the run (docs/experiments.md, "Run edges").
    const stopMs = Date.parse(e.runs.find((r) => r.id === 'r001')!.stop!);
    let filled = 0;
    times.forEach((iso, i) => {
      const t = Date.parse(iso.endsWith('Z') ? iso : `${iso}Z`);
      stations.forEach((c, j) => {
        const v = temps[i]![j];
        const q = qcs[i]![j]!;
        if ((q === 0 || q === 1) && t - 500 < subscribedAt) {
          filled++; // a sample the gateway published before the test client subscribed
        } else if (q === 0 || q === 1) {
          const near = of(c)
            .filter((s) => Math.abs(s.ts - t) <= 500)
            .map((s) => s.v);
          expect(
            near.some((w) => Math.abs(w - v!) < 1e-4),
            `${c} at ${iso}: ${v} not among ${near.join(', ')}`,
          ).toBe(true);
          filled++;
        } else if (q === 4) {
          // The value published last before the slot (and the stop); none seen yet: published before the test client subscribed.
          const last = of(c)
            .filter((s) => s.ts <= Math.min(t + 500, stopMs))
            .sort((a, b) => a.ts - b.ts)
            .at(-1);
          if (last)
            expect(Math.abs(last.v - v!), `${c} at ${iso}: held ${v}, last published ${last.v}`).toBeLessThan(1e-4);
          filled++;
        } else expect(v, `${c} at ${iso}: qc ${q} with a value`).toBeNull();
      });
    });
    expect(filled).toBeGreaterThanOrEqual((times.length - 1) * 2);
  });

  it('starts the next run when the PLC run-trigger tag rises, and stops it when it falls', async () => {
    events.length = 0;
    await mqtt.publish('octopus/c2/set/running/olga', JSON.stringify({ value: false }), { qos: 1 });
    await new Promise((r) => setTimeout(r, 1500));
    await mqtt.publish('octopus/c2/set/running/olga', JSON.stringify({ value: true }), { qos: 1 });
    await eventually(() => events.find((e) => e.event === 'run_started'), 'run started by the PLC');
    expect(store.get('co2-test').runs.at(-1)).toMatchObject({
      id: 'r002',
      status: 'running',
      started_by: 'plc:c2/running',
    });
    await mqtt.publish('octopus/c2/set/running/olga', JSON.stringify({ value: false }), { qos: 1 });
    await eventually(() => events.find((e) => e.event === 'run_stopped'), 'run stopped by the PLC');
    expect(store.get('co2-test').runs.at(-1)).toMatchObject({
      id: 'r002',
      status: 'stopped',
      stopped_by: 'plc:c2/running',
    });
  });

  it('archives a run started and stopped with the CLI from another process', async () => {
    events.length = 0;
    const env = { OCTOPUS_MQTT_URL: '', OCTOPUS_HTTP_PORT: '', OCTOPUS_DATA_DIR: '' };
    const start = runCli(['run', 'start', 'co2-test', '--config', configFile, '--note', 'from the CLI'], { env });
    expect(start.stderr).toBe('');
    expect(start.code).toBe(0);
    await eventually(
      () => events.find((e) => e.event === 'run_started' && e.run === 'r003'),
      'the server announces the CLI run',
    );
    await new Promise((r) => setTimeout(r, 2500));
    expect(runCli(['run', 'stop', 'co2-test', 'r003', '--config', configFile], { env }).code).toBe(0);
    await eventually(
      () => events.find((e) => e.event === 'run_stopped' && e.run === 'r003'),
      'the server closes the CLI run',
    );
    const e = store.get('co2-test');
    await eventually(() => existsSync(join(e.dir, 'runs', 'r003', 'co2-test_r003.nc')), 'the CLI run archived');
    expect(ncdump(join(e.dir, 'runs', 'r003', 'co2-test_r003.nc'), true).status).toBe(0);
  });

  it('refuses a malformed command and one naming someone else in the payload: answered, audited, no run', async () => {
    const runs = store.get('co2-test').runs.length;
    await mqtt.publish(
      'octopus/experiments/co2-test/command/olga',
      JSON.stringify({ action: 'start', by: 'mallory', id: 'cmd-bad' }),
      { qos: 1 },
    );
    await mqtt.publish('octopus/experiments/co2-test/command/olga', 'start please', { qos: 1 });
    const bad = await eventually(() => results.find((r) => r.id === 'cmd-bad'), 'refusal of cmd-bad');
    expect(bad).toMatchObject({ request: 'command', status: 'refused', by: 'olga' });
    expect(bad.reason).toMatch(/by|Unrecognized/);
    await eventually(
      () => results.find((r) => r.id === null && r.status === 'refused' && /not JSON/.test(r.reason ?? '')),
      'refusal of the non-JSON command',
    );
    const audit = readFileSync(join(configFile, '..', 'data', 'state', 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { who: string; action: string; detail?: { result?: string; id?: string } });
    expect(
      audit.filter(
        (e) => e.who === 'mqtt:olga' && e.action === 'run_command' && e.detail?.result?.startsWith('refused'),
      ).length,
    ).toBeGreaterThanOrEqual(2);
    expect(audit).toContainEqual(
      expect.objectContaining({
        who: 'mqtt:olga',
        action: 'run_start',
        detail: expect.objectContaining({ result: 'accepted', id: 'start-1' }),
      }),
    );
    expect(store.get('co2-test').runs).toHaveLength(runs);
  });

  it('stops cleanly on SIGINT', async () => {
    expect(await octopus.stop('SIGINT')).toBe(0);
  });
});

describe('NAS away during a run', () => {
  it('keeps the closed run locally, reports it, and moves it to the NAS when it is back', async () => {
    const dir = scratch('octopus-nas-away-');
    const nas = join(dir, 'nas');
    const [mqttPort, modbus, http] = [await freePort(), await freePort(), await freePort()];
    mkdirSync(nas);
    const config = join(dir, 'lab.yaml');
    writeFileSync(
      config,
      `
gateway: { id: nas }
data_dir: ${JSON.stringify(join(dir, 'data'))}
simulator: { enabled: true }
mqtt: { port: ${mqttPort} }
http: { port: ${http}, host: 127.0.0.1 }
experiments: { root: ${JSON.stringify(nas)}, reorder_window_ms: 500, flush_interval_ms: 200, nas_check_interval_ms: 300 }
chambers:
  - { id: m1, name: Modbus, driver: modbus, profile: climatec-ch400, endpoint: "tcp://127.0.0.1:${modbus}", interval_ms: 500, modbus: { unit_id: 2 } }
`,
    );
    const env = { ...process.env, OCTOPUS_MQTT_URL: '', OCTOPUS_HTTP_PORT: '', OCTOPUS_DATA_DIR: '' };
    const running = await startOctopus(config, { env });
    try {
      renameSync(nas, `${nas}-unmounted`); // the mount goes away
      const health = async () => HealthReport.parse(await (await fetch(`http://127.0.0.1:${http}/api/health`)).json());
      await eventually(
        async () => (await health()).sinks.netcdf?.nas_available === false,
        'health says the NAS is away',
      );
      expect((await health()).problems.join('\n')).toMatch(/NAS .* unavailable: experiment files are kept locally/);
      // An experiment created, run and stopped meanwhile lives in the local fallback.
      const s = createExperimentStore(loadConfig(config, env));
      const e = await s.create(
        { id: 'nas-test', title: 'NAS outage', principal_investigator: { name: 'Ada' }, chambers: ['m1'] },
        'test',
      );
      expect(e.dir).toBe(join(dir, 'data', 'experiments-local', 'nas-test'));
      s.startRun('nas-test', 'test');
      await new Promise((r) => setTimeout(r, 2500));
      s.stopRun('nas-test', 'r001', 'test');
      const local = join(dir, 'data', 'experiments-local', 'nas-test', 'runs', 'r001', 'nas-test_r001.nc');
      await eventually(() => existsSync(local), 'the closed run kept locally');
      renameSync(`${nas}-unmounted`, nas); // the mount is back
      const final = join(nas, 'nas-test', 'runs', 'r001', 'nas-test_r001.nc');
      await eventually(() => existsSync(final) && !existsSync(local), 'moved to the NAS');
      await eventually(
        () => readFileSync(join(nas, 'nas-test', 'MANIFEST.sha256'), 'utf8').includes('runs/r001/nas-test_r001.nc'),
        'manifest updated',
      );
      expect(ncdump(final, true).status).toBe(0);
      await eventually(
        async () => (await health()).sinks.netcdf?.nas_available === true,
        'health says the NAS is back',
      );
    } finally {
      await running.stop('SIGKILL');
    }
  });
});
