/**
 * A run over chambers of different controller models: the run file holds the union of
 * their tags, and a tag only some chambers have is marked on its variable
 * (`measured_in_chambers`). The other chambers' slots of that variable are fill — not
 * data lost — so the completeness report does not count them as expected, and a run
 * where every chamber delivered everything it has is 100 % complete.
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
import type { CompletenessReport } from '../../src/experiments/completeness.ts';
import { ExperimentStore } from '../../src/experiments/store.ts';
import { NcRunReader } from '../../src/netcdf/reader.ts';
import { eventually } from '../support/ports.ts';

const dir = mkdtempSync(join(tmpdir(), 'octopus-mixed-profiles-'));
let archiver: Archiver | undefined;
afterAll(() => {
  archiver?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const tag = (name: string, unit: string) => ({ name, description: name, type: 'float32', unit }) as unknown as Tag;
/** c1 (an OPC UA model) has air temperature only; c2 (a Modbus model) also has its operating hours. */
const TAGS: Record<string, Tag[]> = {
  c1: [tag('air_temperature', 'degree_Celsius')],
  c2: [tag('air_temperature', 'degree_Celsius'), tag('operating_hours', 'h')],
};
const SLOTS = 60;

describe('a run over chambers of different models', () => {
  it('marks a variable only some chambers have, and counts nothing expected where a chamber lacks it', async () => {
    let clock = Math.floor(Date.now() / 1000) * 1000 - 3600_000;
    const t0 = clock;
    mkdirSync(join(dir, 'experiments'), { recursive: true });
    const store = new ExperimentStore(new ArchiveRoot(join(dir, 'experiments'), join(dir, 'local')), {
      chambers: () => ['c1', 'c2'],
      variables: (chambers) =>
        ['air_temperature', 'operating_hours'].map((name) => ({ name, description: name, chambers })),
      now: () => new Date(clock),
    });
    const cfg = {
      ...ExperimentsConfig.parse({ flush_interval_ms: 50, reorder_window_ms: 1000, lease_ttl_ms: 5000 }),
      working_dir: join(dir, 'working'),
    };
    archiver = new Archiver(store, cfg, (c) => TAGS[c] ?? [], createLogger('archiver-test'), { now: () => clock });
    archiver.start();
    await store.create(
      { id: 'mixed', title: 'Two models', principal_investigator: { name: 'Ada Lovelace' }, chambers: ['c1', 'c2'] },
      'test',
    );
    const run = store.startRun('mixed', 'test');
    await eventually(() => archiver!.health().open_runs.includes(`mixed/${run.id}`), 'run open', 10_000, 20);
    let seq = 0;
    for (let k = 0; k < SLOTS; k++) {
      clock = t0 + k * 1000;
      for (const c of ['c1', 'c2']) {
        const msg: DataMessage = {
          v: 1,
          gw: 'test',
          seq: seq++,
          chamber: c,
          samples: TAGS[c]!.map((t) => ({ tag: t.name, ts: clock, value: 20 + k / 100, q: 'good' as const })),
        };
        archiver.accept(msg, clock + 20);
      }
    }
    store.stopRun('mixed', run.id, 'test');
    clock += 5_000;
    const e = store.get('mixed');
    const report = join(e.dir, 'runs', run.id, 'completeness.json');
    await eventually(() => existsSync(report), 'completeness.json at stop', 30_000, 50);

    const nc = NcRunReader.open(join(e.dir, run.file));
    try {
      const attr = (v: string) => nc.variables.get(v)!.attrs.find((a) => a.name === 'measured_in_chambers')?.value;
      expect(attr('operating_hours')).toBe('c2');
      expect(attr('air_temperature')).toBeUndefined();
    } finally {
      nc.close();
    }
    const r = JSON.parse(readFileSync(report, 'utf8')) as CompletenessReport;
    expect(Object.keys(r.chambers.c1!.variables)).toEqual(['air_temperature']);
    expect(Object.keys(r.chambers.c2!.variables).sort()).toEqual(['air_temperature', 'operating_hours']);
    expect(r.chambers.c2!.variables.operating_hours!.missing.total).toBe(0);
    expect(r.totals.missing).toBe(0);
    expect(r.totals.completeness).toBe(1);
    expect(r.totals.expected).toBe(r.slots * 3);
  }, 60_000);
});
