/**
 * Durable before acknowledged: the all-in-one `octopus start` (simulated Modbus chambers,
 * gateway and collector in one process, real Mosquitto with persistence) is killed with
 * SIGKILL at random moments during a run, five times, and restarted each time. A
 * recorder subscribed on MQTT keeps every sample it saw; after the run stops, the run's
 * file (read with python netCDF4) holds each of them in its slot by the nearest-sample
 * rule: nothing missing, nothing invented, no duplicate time.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/loader.ts';
import { createExperimentStore } from '../../src/experiments/factory.ts';
import { expectRunMatchesRecorder, killAtRandomMoments, recorder } from '../support/archive-compare.ts';
import { startOctopus, type RunningOctopus } from '../support/cli.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';
import { Mosquitto } from '../support/mosquitto.ts';
import { eventually, freePort } from '../support/ports.ts';

let mosquitto: Mosquitto | undefined;
let octopus: RunningOctopus | undefined;
afterAll(async () => {
  await octopus?.stop('SIGKILL');
  await mosquitto?.close();
  cleanScratch();
});

describe('run archive across kill -9 of octopus start', () => {
  it('every sample a recorder saw for the run is in the file after five kills at random moments', async () => {
    mosquitto = await Mosquitto.start({ persistence: true });
    const dir = scratch('octopus-kill-');
    const [modbus, http] = [await freePort(), await freePort()];
    const config = join(dir, 'lab.yaml');
    writeFileSync(
      config,
      `
gateway: { id: killgw }
data_dir: ${JSON.stringify(join(dir, 'data'))}
simulator: { enabled: true, seed: 3 }
mqtt: { url: ${JSON.stringify(mosquitto.url)} }
http: { port: ${http}, host: 127.0.0.1 }
collector: { client_id: kill-test-collector }
experiments: { reorder_window_ms: 1000, flush_interval_ms: 300 }
chambers:
  - { id: m1, name: Floats, driver: modbus, profile: phytolab-gc2, endpoint: "tcp://127.0.0.1:${modbus}", interval_ms: 300, modbus: { unit_id: 1 } }
  - { id: m2, name: Integers, driver: modbus, profile: climatec-ch400, endpoint: "tcp://127.0.0.1:${modbus}", interval_ms: 300, modbus: { unit_id: 2 } }
`,
    );
    const rec = await recorder(mosquitto.url, 'kill-test-recorder');
    octopus = await startOctopus(config);
    const store = createExperimentStore(
      loadConfig(config, { ...process.env, OCTOPUS_MQTT_URL: '', OCTOPUS_DATA_DIR: '', OCTOPUS_HTTP_PORT: '' }),
    );
    await store.create(
      {
        id: 'kill',
        title: 'Kill test',
        principal_investigator: { name: 'Ada' },
        chambers: ['m1', 'm2'],
        sampling_period_s: 1,
      },
      'test',
    );
    const run = store.startRun('kill', 'test');
    const kills = await killAtRandomMoments(5, async () => {
      await octopus?.stop('SIGKILL');
      octopus = await startOctopus(config);
    });
    // Let the restarted gateway publish a few seconds more, then stop the run.
    const before = rec.samples.length;
    await eventually(() => rec.samples.length > before + 20, 'samples after the last restart', 30_000);
    const stopped = store.stopRun('kill', run.id, 'test');
    const e = store.get('kill');
    const file = join(e.dir, run.file);
    await eventually(() => existsSync(file), 'the run archived', 60_000);
    await rec.conn.end();

    expect(kills).toHaveLength(5);
    expectRunMatchesRecorder(
      'archive-durability',
      file,
      rec.samples,
      { start: run.start, stop: stopped.stop! },
      ['m1', 'm2'],
      200,
    );
  }, 300_000);
});
