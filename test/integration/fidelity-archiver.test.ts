/**
 * A run with a scripted 7-minute excursion through the real archive path, in process:
 * an ExperimentStore and the Archiver (grid, sample log, run file, stop, move, reports,
 * documents) on a clock the test moves, fed with data messages as the collector hands
 * them over. Chamber c2's air temperature leaves its setpoint by +1.2 K for 420 s; c1
 * stays on target. At stop the archiver writes fidelity.json: the excursion interval
 * within one sample period, the within-tolerance share to 0.1 %, c1 at 100 %; the
 * archived file judged independently by xarray + numpy gives the same figures.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DataMessage } from '../../src/bus/payload.ts';
import { Archiver } from '../../src/collector/sinks/netcdf/archiver.ts';
import { ExperimentsConfig } from '../../src/config/instance-schema.ts';
import type { Tag } from '../../src/config/profile-schema.ts';
import { createLogger } from '../../src/core/log.ts';
import { ArchiveRoot } from '../../src/experiments/archive-root.ts';
import { ExperimentStore } from '../../src/experiments/store.ts';
import type { ToleranceSource } from '../../src/fidelity/plan.ts';
import { FidelityReport } from '../../src/fidelity/report-schema.ts';
import { pythonFidelity } from '../support/fidelity-fixture.ts';
import { eventually } from '../support/ports.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-fidelity-archiver-'));
let archiver: Archiver | undefined;
afterAll(() => {
  archiver?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const TAGS = [
  {
    name: 'air_temperature',
    description: 'Air temperature',
    type: 'float32',
    unit: 'degree_Celsius',
    standard_name: 'air_temperature',
  },
  {
    name: 'air_temperature_setpoint',
    description: 'Air temperature setpoint',
    type: 'float32',
    unit: 'degree_Celsius',
    role: 'setpoint',
    setpoint_of: 'air_temperature',
  },
] as unknown as Tag[]; // the fields the archive and the tolerances read
const source: ToleranceSource = (c) =>
  ['c1', 'c2'].includes(c)
    ? { tags: TAGS, profile: { air_temperature: { band: 0.5, min_duration_s: 300 } }, chamber: {} }
    : undefined;
const SLOTS = 1200;
const EXC = { from: 300, slots: 420 };

describe('scripted excursion through the archiver', () => {
  it('fidelity.json at stop gives the excursion interval and the within-tolerance share; numpy agrees', async () => {
    let clock = Math.floor(Date.now() / 1000) * 1000 - 2 * 3600_000;
    const t0 = clock;
    mkdirSync(join(dir, 'experiments'), { recursive: true }); // the NAS mount point is there
    const store = new ExperimentStore(new ArchiveRoot(join(dir, 'experiments'), join(dir, 'local')), {
      chambers: () => ['c1', 'c2'],
      variables: (chambers) => TAGS.map((t) => ({ name: t.name, unit: t.unit, description: t.description, chambers })),
      now: () => new Date(clock),
    });
    const cfg = {
      ...ExperimentsConfig.parse({ flush_interval_ms: 50, reorder_window_ms: 1000, lease_ttl_ms: 5000 }),
      working_dir: join(dir, 'working'),
    };
    archiver = new Archiver(store, cfg, () => TAGS, createLogger('archiver-test'), {
      now: () => clock,
      tolerances: source,
    });
    archiver.start();
    await store.create(
      {
        id: 'scripted',
        title: 'Scripted excursion',
        principal_investigator: { name: 'Ada Lovelace' },
        chambers: ['c1', 'c2'],
        treatments: [
          { chamber: 'c1', name: 'warm' },
          { chamber: 'c2', name: 'warm' },
        ],
      },
      'test',
    );
    const run = store.startRun('scripted', 'test');
    await eventually(
      () => archiver!.health().open_runs.includes(`scripted/${run.id}`),
      'run open in the archiver',
      10_000,
      20,
    );
    let seq = 0;
    for (let k = 0; k < SLOTS; k++) {
      clock = t0 + k * 1000;
      for (const [c, sp] of [
        ['c1', 20],
        ['c2', 25],
      ] as const) {
        const dev = c === 'c2' && k >= EXC.from && k < EXC.from + EXC.slots ? 1.2 : 0.1 * Math.sin(k / 40);
        const msg: DataMessage = {
          v: 1,
          gw: 'test',
          seq: seq++,
          chamber: c,
          samples: [
            { tag: 'air_temperature', ts: clock, value: sp + dev, q: 'good' },
            { tag: 'air_temperature_setpoint', ts: clock, value: sp, q: 'good' },
          ],
        };
        archiver.accept(msg, clock + 20);
      }
      if (k % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    clock = t0 + (SLOTS - 1) * 1000;
    store.stopRun('scripted', run.id, 'test');
    clock += 5_000; // past the reorder window: the next tick closes, finishes and moves the file
    const e = store.get('scripted');
    const report = join(e.dir, 'runs', run.id, 'fidelity.json');
    // README then MANIFEST are regenerated after fidelity.json is written
    const documented = () =>
      readFileSync(join(e.dir, 'README.md'), 'utf8').includes('## Treatment fidelity') &&
      readFileSync(join(e.dir, 'MANIFEST.sha256'), 'utf8').includes(`runs/${run.id}/fidelity.json`);
    await eventually(
      () => existsSync(report) && documented(),
      'fidelity.json, the README section and the MANIFEST entry',
      30_000,
      50,
    );
    const r = FidelityReport.parse(JSON.parse(readFileSync(report, 'utf8')));
    expect(r.slots).toBe(SLOTS);
    const c2 = r.chambers.c2!.variables.air_temperature!;
    const iso = (k: number) => Date.parse(new Date(t0 + k * 1000).toISOString());
    expect(c2.excursions).toBe(1);
    expect(Math.abs(Date.parse(c2.longest_excursion!.start) - iso(EXC.from))).toBeLessThanOrEqual(1000);
    expect(Math.abs(Date.parse(c2.longest_excursion!.end) - iso(EXC.from + EXC.slots - 1))).toBeLessThanOrEqual(1000);
    expect(Math.abs(c2.within_tolerance_percent! - (100 * (SLOTS - EXC.slots)) / SLOTS)).toBeLessThan(0.1);
    expect(r.chambers.c1!.variables.air_temperature!.within_tolerance_percent).toBe(100);
    expect(r.chambers.c1!.variables.air_temperature!.coverage_percent).toBe(100);
    expect(r.treatments.warm!.variables.air_temperature!.worst_chamber).toBe('c2');
    const nc = join(e.dir, run.file);
    const py = pythonFidelity(nc, {
      c1: [
        {
          measured: 'air_temperature',
          setpoint: 'air_temperature_setpoint',
          band: 0.5,
          min_duration_s: 300,
          hysteresis: 0.05,
        },
      ],
      c2: [
        {
          measured: 'air_temperature',
          setpoint: 'air_temperature_setpoint',
          band: 0.5,
          min_duration_s: 300,
          hysteresis: 0.05,
        },
      ],
    });
    for (const c of ['c1', 'c2']) {
      const mine = r.chambers[c]!.variables.air_temperature!;
      const p = py.chambers[c]!.air_temperature!;
      expect(mine.covered).toBe(p.covered);
      expect(mine.within_tolerance_percent!).toBeCloseTo(p.within_pct!, 9);
      expect(mine.mean_deviation!).toBeCloseTo(p.mean!, 9);
      expect(mine.rms_deviation!).toBeCloseTo(p.rms!, 9);
      expect(
        mine.excursion_list.map((x) => [Date.parse(x.start) / 1000, Date.parse(x.end) / 1000, x.duration_s]),
      ).toEqual(p.excursions);
    }
  }, 120_000);
});
