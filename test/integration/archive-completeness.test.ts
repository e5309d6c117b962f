/**
 * Completeness independent of arrival timing, through real Mosquitto: one run fed by two
 * sources — an `octopus start` gateway (simulated Modbus chamber m1) and a synthetic
 * gateway (chamber s1) whose sample clock runs 30 s behind — archived by a separate
 * `octopus collect`. The synthetic gateway's link to the broker is cut for 60 s while
 * the other keeps publishing (the grid moves on), then it replays its spool. The file
 * (read with python netCDF4) equals the union of everything both published, sample by
 * sample: zero missing, zero invented, no duplicate time; the clock offset of s1 is
 * reported in the health and the file.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HealthReport } from '../../src/core/health.ts';
import { MqttConfig, SpoolConfig } from '../../src/config/instance-schema.ts';
import { loadConfig } from '../../src/config/loader.ts';
import { createLogger } from '../../src/core/log.ts';
import { Publisher } from '../../src/bus/publisher.ts';
import { Spool } from '../../src/bus/spool.ts';
import { createExperimentStore } from '../../src/experiments/factory.ts';
import { expectRunMatchesRecorder, recorder } from '../support/archive-compare.ts';
import { type RunningOctopus, startCollect, startOctopus } from '../support/cli.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';
import { Mosquitto } from '../support/mosquitto.ts';
import { pythonView } from '../support/netcdf.ts';
import { eventually, freePort } from '../support/ports.ts';
import { TcpCut } from '../support/tcp-cut.ts';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanScratch();
});

describe('one run, two sources, an outage and a lagging clock', () => {
  it('the file holds every sample both sources published, after a 60 s outage and replay of one of them', async () => {
    const mosquitto = await Mosquitto.start();
    cleanups.push(() => mosquitto.close());
    const cut = await TcpCut.start(mosquitto.port);
    cleanups.push(() => cut.close());
    const dir = scratch('octopus-complete-');
    const [modbus, http, collectHttp] = [await freePort(), await freePort(), await freePort()];
    const chambers = (withSynthetic: boolean) =>
      [
        'chambers:',
        `  - { id: m1, name: Modbus, driver: modbus, profile: climatec-ch400, endpoint: "tcp://127.0.0.1:${modbus}", interval_ms: 400, modbus: { unit_id: 2 } }`,
        // s1 is published by the synthetic gateway; the collector only needs its tags.
        ...(withSynthetic
          ? [
              '  - { id: s1, name: Synthetic, driver: modbus, profile: phytolab-gc2, endpoint: "tcp://127.0.0.1:9", interval_ms: 500, modbus: { unit_id: 1 } }',
            ]
          : []),
        '',
      ].join('\n');
    mkdirSync(join(dir, 'gw'));
    mkdirSync(join(dir, 'col'));
    const gwConfig = join(dir, 'gw', 'lab.yaml');
    writeFileSync(
      gwConfig,
      `
gateway: { id: gw-real }
data_dir: ${JSON.stringify(join(dir, 'gw', 'data'))}
simulator: { enabled: true, seed: 9 }
mqtt: { url: ${JSON.stringify(mosquitto.url)} }
http: { port: ${http}, host: 127.0.0.1 }
collector: { enabled: false }
${chambers(false)}`,
    );
    const colConfig = join(dir, 'col', 'lab.yaml');
    writeFileSync(
      colConfig,
      `
gateway: { id: collector }
data_dir: ${JSON.stringify(join(dir, 'col', 'data'))}
mqtt: { url: ${JSON.stringify(mosquitto.url)} }
http: { host: 127.0.0.1 }
collector: { client_id: complete-collector, http_port: ${collectHttp} }
experiments: { reorder_window_ms: 45000, flush_interval_ms: 300 }
${chambers(true)}`,
    );

    const rec = await recorder(mosquitto.url, 'complete-recorder');
    cleanups.push(() => rec.conn.end());
    const { proc: collect } = await startCollect(colConfig);
    cleanups.push(() => collect.kill('SIGKILL'));
    const gw: RunningOctopus = await startOctopus(gwConfig);
    cleanups.push(() => gw.stop('SIGKILL'));

    // The synthetic gateway: its own spool, connected through the link that will be cut.
    const spool = Spool.open(scratch('octopus-synth-spool-'), SpoolConfig.parse({ fsync: 'never' }));
    const pub = new Publisher({
      url: cut.url,
      mqtt: MqttConfig.parse({}),
      gatewayId: 'gw-synth',
      spool,
      log: createLogger('synth'),
    });
    cleanups.push(() => pub.close());
    const BEHIND = 30_000;
    let n = 0;
    const timer = setInterval(() => {
      const ts = Date.now() - BEHIND;
      n++;
      pub.publishSamples('s1', [
        { chamber: 's1', tag: 'air_temperature', ts, value: 20 + (n % 50) / 10, q: 'good' },
        { chamber: 's1', tag: 'relative_humidity', ts, value: 50 + (n % 7), q: 'good' },
      ]);
    }, 500);
    cleanups.push(() => clearInterval(timer));

    const store = createExperimentStore(
      loadConfig(colConfig, { ...process.env, OCTOPUS_MQTT_URL: '', OCTOPUS_DATA_DIR: '', OCTOPUS_HTTP_PORT: '' }),
    );
    await store.create(
      {
        id: 'two',
        title: 'Two sources',
        principal_investigator: { name: 'Ada' },
        chambers: ['m1', 's1'],
        sampling_period_s: 1,
      },
      'test',
    );
    const run = store.startRun('two', 'test');
    await new Promise((r) => setTimeout(r, 10_000)); // scenario time: both sources publish normally
    cut.down();
    const cutAt = Date.now();
    await new Promise((r) => setTimeout(r, 60_000)); // scenario time: the outage
    cut.restore();
    await eventually(
      () => pub.spoolDepth().messages === 0 && Date.now() - cutAt > 61_000,
      'the synthetic gateway replayed its spool',
      60_000,
    );
    await new Promise((r) => setTimeout(r, 3000));
    const stopped = store.stopRun('two', run.id, 'test');
    const health = HealthReport.parse(await (await fetch(`http://127.0.0.1:${collectHttp}/api/health`)).json());
    const clocks = health.sinks.netcdf?.clocks as Record<string, { offset_ms?: number; future_refused: number }>;
    expect(clocks.s1!.offset_ms).toBeGreaterThanOrEqual(BEHIND - 1000);
    expect(clocks.m1!.offset_ms).toBeLessThan(5000);
    // The synthetic samples up to the stop arrive 30 s after it; the run stays open 45 s for them.
    const file = join(store.get('two').dir, run.file);
    await eventually(() => existsSync(file), 'the run archived', 120_000);
    clearInterval(timer);

    const stop = Date.parse(stopped.stop!);
    const s1Cells = rec.samples.filter(
      (s) => s.chamber === 's1' && s.ts >= Date.parse(run.start) && s.ts <= stop,
    ).length;
    expect(s1Cells).toBeGreaterThan(80); // s1 covers the outage window too
    expectRunMatchesRecorder(
      'archive-completeness',
      file,
      rec.samples,
      { start: run.start, stop: stopped.stop! },
      ['m1', 's1'],
      500,
    );
    const offsets = pythonView(file, ['time']).netcdf4.globals.clock_offset_ms as number[];
    expect(offsets[1]).toBeGreaterThanOrEqual(BEHIND - 1000);
  }, 400_000);
});
