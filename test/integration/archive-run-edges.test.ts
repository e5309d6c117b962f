/**
 * The first and last slots of a run are partial: the run file holds the samples stamped
 * within the run's start and stop instants, exactly what `octopus verify` compares with
 * the database. A sample of the slot stamped just before the start, or just after the
 * stop (even when it reached the archiver before the stop was known and was nearer the
 * slot instant), is not the run's; a value of an on-change tag reported before the start
 * is held from the start. Checked through the real archiver, the real run file and the
 * real comparison against VictoriaMetrics holding every sample the collector saw.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DataMessage, WireSample } from '../../src/bus/payload.ts';
import { Archiver } from '../../src/collector/sinks/netcdf/archiver.ts';
import { QC } from '../../src/collector/sinks/netcdf/grid.ts';
import { encodeLines } from '../../src/collector/sinks/influx/line-protocol.ts';
import { ExperimentsConfig, InfluxConfig } from '../../src/config/instance-schema.ts';
import { loadConfig } from '../../src/config/loader.ts';
import { createLogger } from '../../src/core/log.ts';
import { ArchiveRoot } from '../../src/experiments/archive-root.ts';
import { experimentPaths, tagsOfChamber } from '../../src/experiments/factory.ts';
import { ExperimentStore } from '../../src/experiments/store.ts';
import { compareWithDatabase } from '../../src/experiments/verify.ts';
import { simulatedChambers } from '../support/cli.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';
import { pythonView } from '../support/netcdf.ts';
import { eventually } from '../support/ports.ts';
import { Victoria } from '../support/victoria.ts';

let vm: Victoria;
afterAll(async () => {
  await vm?.close();
  cleanScratch();
});
beforeAll(async () => {
  vm = await Victoria.start();
}, 60_000);

describe('run edges', () => {
  it('the first and last slots hold only the samples within the run, and verify finds no difference with the database', async () => {
    const dir = scratch('octopus-edges-');
    const config = join(dir, 'octopus.yaml');
    // c1: OPC UA (subscription: on-change tags held), c2: Modbus (polled). No server needed: only their profiles.
    writeFileSync(
      config,
      [
        `data_dir: ${JSON.stringify(join(dir, 'data'))}`,
        `influx: { url: "${vm.url}", bucket: octopus, measurement: edges }`,
        simulatedChambers({ opcua: 4840, modbus: 5020 }, { count: 2 }),
      ].join('\n'),
    );
    const loaded = loadConfig(config);
    const paths = experimentPaths(loaded);
    mkdirSync(paths.root, { recursive: true });
    // The run starts 300 ms after a slot instant's second and stops 700 ms after one: slot 0 is
    // the slot the start rounds to (T − 300), the last the one the stop rounds to (S + 300).
    const T = Math.floor(Date.now() / 1000) * 1000 - 20_000 + 300;
    const S = T + 5_400;
    let clock = new Date(T);
    const store = new ExperimentStore(new ArchiveRoot(paths.root, paths.local), {
      chambers: () => ['c1', 'c2'],
      variables: () => [],
      now: () => clock,
    });
    await store.create(
      {
        id: 'edges',
        title: 'Edges',
        principal_investigator: { name: 'Ada Lovelace' },
        chambers: ['c1', 'c2'],
        variables: ['air_temperature', 'co2_setpoint', 'door_open'],
      },
      'test',
    );
    const cfg = {
      ...ExperimentsConfig.parse({}),
      reorder_window_ms: 200,
      flush_interval_ms: 100,
      working_dir: paths.working,
    };
    const archiver = new Archiver(store, cfg, tagsOfChamber(loaded), createLogger('test'), {
      onChange: (c) => c === 'c1',
    });
    archiver.start();
    let seq = 0;
    const published: Array<{ chamber: string; s: WireSample }> = [];
    const give = (chamber: string, samples: WireSample[]) => {
      const msg: DataMessage = { v: 1, gw: 'gw1', seq: seq++, chamber, samples };
      published.push(...samples.map((s) => ({ chamber, s })));
      archiver.accept(msg);
    };
    try {
      // Before the start: the door's last change long before (held from the start), and samples
      // stamped 200 ms before the start that round to slot 0 and are nearer its instant than
      // the run's first samples: not the run's.
      give('c1', [{ tag: 'door_open', ts: T - 5_000, value: true, q: 'good' }]);
      give('c1', [
        { tag: 'air_temperature', ts: T - 200, value: 10.5, q: 'good' },
        { tag: 'co2_setpoint', ts: T - 200, value: 400, q: 'good' },
      ]);
      give('c2', [
        { tag: 'air_temperature', ts: T - 200, value: 11.5, q: 'good' },
        { tag: 'door_open', ts: T - 200, value: false, q: 'good' },
      ]);
      const run = store.startRun('edges', 'test');
      expect(run.start).toBe(new Date(T).toISOString());
      // Within the run: every 200 ms from T + 100 to S − 100.
      for (let k = 0; T + 100 + 200 * k <= S - 100; k++) {
        const ts = T + 100 + 200 * k;
        give('c1', [{ tag: 'air_temperature', ts, value: 20 + (ts - T) / 1000, q: 'good' }]);
        give('c2', [
          { tag: 'air_temperature', ts, value: 30 + (ts - T) / 1000, q: 'good' },
          { tag: 'door_open', ts, value: k % 2 === 0, q: 'good' },
        ]);
      }
      // After the stop, received before the stop is known, nearer the last slot's instant than the run's own samples.
      give('c1', [
        { tag: 'air_temperature', ts: S + 250, value: 99.5, q: 'good' },
        { tag: 'co2_setpoint', ts: S + 250, value: 800, q: 'good' },
      ]);
      give('c2', [{ tag: 'air_temperature', ts: S + 250, value: 98.5, q: 'good' }]);
      clock = new Date(S);
      const stopped = store.stopRun('edges', run.id, 'test');
      const file = join(store.get('edges').dir, stopped.file);
      await eventually(
        () => existsSync(file) && archiver.health().open_runs.length === 0 && archiver.health().stranded.length === 0,
        'the run file archived',
        30_000,
      );

      // The database holds everything the collector saw, in and out of the run.
      const lines = ['c1', 'c2']
        .map((c) =>
          encodeLines(
            'edges',
            c,
            published.filter((p) => p.chamber === c).map((p) => p.s),
          ),
        )
        .join('');
      const res = await fetch(`${vm.url}/api/v2/write?bucket=octopus&precision=ms`, { method: 'POST', body: lines });
      expect(res.status).toBe(204);
      await eventually(
        async () => (await vm.count('edges_value')) === published.length,
        'samples in VictoriaMetrics',
        30_000,
      );

      const view = pythonView(file).netcdf4;
      const times = (view.vars.time!.data as number[]).map((t) => Math.round(t * 1000));
      expect(times[0]).toBe(T - 300);
      expect(times.at(-1)).toBe(S + 300);
      const at = (v: string, c: number, k: number) => (view.vars[v]!.data as Array<Array<number | null>>)[k]![c];
      // Slot 0: the run's first samples (T + 100), not the nearer ones of T − 200.
      expect([at('air_temperature', 0, 0), at('air_temperature', 1, 0)]).toEqual([20.1, 30.1].map(Math.fround));
      // Values of on-change tags (c1) reported before the start are held from slot 0, not measured there.
      expect([at('door_open', 0, 0), at('door_open_qc', 0, 0)]).toEqual([1, QC.held]);
      expect([at('co2_setpoint', 0, 0), at('co2_setpoint_qc', 0, 0)]).toEqual([400, QC.held]);
      // The last slot: the run's last sample (S − 100), not the nearer one after the stop.
      const last = times.length - 1;
      expect([at('air_temperature', 0, last), at('air_temperature', 1, last)]).toEqual(
        [20 + 5.3, 30 + 5.3].map(Math.fround),
      );
      expect([at('air_temperature_qc', 0, last), at('air_temperature_qc', 1, last)]).toEqual([QC.good, QC.good]);
      // The setpoint changed only after the stop: the run's value is still held in its last slot.
      expect([at('co2_setpoint', 0, last), at('co2_setpoint_qc', 0, last)]).toEqual([400, QC.held]);

      const cmp = await compareWithDatabase(
        file,
        InfluxConfig.parse({ url: vm.url, bucket: 'octopus', measurement: 'edges' }),
        undefined,
        { runStartMs: T, runStopMs: S },
      );
      expect(cmp.query).toBe('victoriametrics-export');
      expect(cmp.samples).toBeGreaterThan(0);
      expect(cmp.differences, JSON.stringify(cmp.differences, null, 1)).toEqual([]);
      expect(cmp.differences_total).toBe(0);
    } finally {
      archiver.stop();
    }
  }, 120_000);
});
