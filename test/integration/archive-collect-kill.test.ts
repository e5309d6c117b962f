/**
 * Durable before acknowledged, with the collector on its own: a gateway (`octopus start`
 * with the collector disabled, simulated Modbus chambers) publishes into real Mosquitto,
 * and `octopus collect` (default configuration: persistent session with its stable client
 * id; it archives the run) is killed with SIGKILL at random moments during a run, five
 * times, and restarted each time. A recorder subscribed on MQTT keeps every sample it
 * saw; after the run stops, the run's file (read with python netCDF4) holds each sample
 * stamped within the run in its slot by the nearest-sample rule: nothing missing,
 * nothing invented, no duplicate time. (archive-durability.test.ts does the same with
 * the all-in-one process.)
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/loader.ts';
import { createExperimentStore } from '../../src/experiments/factory.ts';
import { expectRunMatchesRecorder, killAtRandomMoments, recorder } from '../support/archive-compare.ts';
import { startCollect, startOctopus, type RunningOctopus } from '../support/cli.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';
import { Mosquitto } from '../support/mosquitto.ts';
import { eventually, freePort } from '../support/ports.ts';

let mosquitto: Mosquitto | undefined;
let gateway: RunningOctopus | undefined;
let collect: ChildProcess | undefined;
afterAll(async () => {
  collect?.kill('SIGKILL');
  await gateway?.stop('SIGKILL');
  await mosquitto?.close();
  cleanScratch();
});

const killed = (p: ChildProcess) =>
  new Promise<void>((resolve) =>
    p.exitCode !== null || p.signalCode !== null ? resolve() : p.once('exit', () => resolve()),
  );

describe('run archive across kill -9 of octopus collect', () => {
  it('every sample a recorder saw for the run is in the file after five kills of the collector at random moments', async () => {
    mosquitto = await Mosquitto.start({ persistence: true });
    const dir = scratch('octopus-collect-kill-');
    const modbus = await freePort();
    const chambers = [
      'chambers:',
      `  - { id: m1, name: Floats, driver: modbus, profile: phytolab-gc2, endpoint: "tcp://127.0.0.1:${modbus}", interval_ms: 300, modbus: { unit_id: 1 } }`,
      `  - { id: m2, name: Integers, driver: modbus, profile: climatec-ch400, endpoint: "tcp://127.0.0.1:${modbus}", interval_ms: 300, modbus: { unit_id: 2 } }`,
      '',
    ].join('\n');
    mkdirSync(join(dir, 'gw'));
    mkdirSync(join(dir, 'col'));
    const gwConfig = join(dir, 'gw', 'lab.yaml');
    writeFileSync(
      gwConfig,
      `gateway: { id: killgw }\ndata_dir: ${JSON.stringify(join(dir, 'gw', 'data'))}\nsimulator: { enabled: true, seed: 5 }\nmqtt: { url: ${JSON.stringify(mosquitto.url)} }\nhttp: { port: ${await freePort()}, host: 127.0.0.1 }\ncollector: { enabled: false }\n${chambers}`,
    );
    // The collector's configuration is the default one (no client_id: the stable default, persistent session).
    const colConfig = join(dir, 'col', 'lab.yaml');
    writeFileSync(
      colConfig,
      `gateway: { id: killcol }\ndata_dir: ${JSON.stringify(join(dir, 'col', 'data'))}\nmqtt: { url: ${JSON.stringify(mosquitto.url)} }\nhttp: { host: 127.0.0.1 }\ncollector: { http_port: ${await freePort()} }\nexperiments: { reorder_window_ms: 1000, flush_interval_ms: 300 }\n${chambers}`,
    );

    const rec = await recorder(mosquitto.url, 'collect-kill-recorder');
    collect = (await startCollect(colConfig)).proc;
    gateway = await startOctopus(gwConfig);
    const store = createExperimentStore(
      loadConfig(colConfig, { ...process.env, OCTOPUS_MQTT_URL: '', OCTOPUS_DATA_DIR: '', OCTOPUS_HTTP_PORT: '' }),
    );
    await store.create(
      {
        id: 'ckill',
        title: 'Collector kill test',
        principal_investigator: { name: 'Ada' },
        chambers: ['m1', 'm2'],
        sampling_period_s: 1,
      },
      'test',
    );
    await eventually(() => rec.samples.length > 20, 'the gateway publishing', 30_000);
    const run = store.startRun('ckill', 'test');
    const kills = await killAtRandomMoments(5, async () => {
      const dying = collect;
      if (!dying) throw new Error('no collector to kill');
      dying.kill('SIGKILL');
      await killed(dying);
      collect = (await startCollect(colConfig)).proc;
    });
    // Let the gateway publish a few seconds more into the restarted collector, then stop the run.
    const before = rec.samples.length;
    await eventually(() => rec.samples.length > before + 20, 'samples after the last restart', 30_000);
    const stopped = store.stopRun('ckill', run.id, 'test');
    const file = join(store.get('ckill').dir, run.file);
    await eventually(() => existsSync(file), 'the run archived', 60_000);
    await rec.conn.end();

    expect(kills).toHaveLength(5);
    expectRunMatchesRecorder(
      'archive-collect-kill',
      file,
      rec.samples,
      { start: run.start, stop: stopped.stop! },
      ['m1', 'm2'],
      200,
    );
  }, 300_000);
});
