/**
 * Experiments as folders on the NAS: creating one writes the catalogue entry and its
 * documentation; runs start and stop with their own files; hand edits of metadata.yaml
 * are picked up and validated; with the NAS away everything goes to the local fallback
 * and moves over when it returns.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { ArchiveRoot } from '../../src/experiments/archive-root.ts';
import { ExperimentError, ExperimentStore } from '../../src/experiments/store.ts';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function store(opts: { nas?: string } = {}) {
  const base = mkdtempSync(join(tmpdir(), 'octopus-exp-'));
  dirs.push(base);
  const nas = opts.nas ?? join(base, 'nas');
  mkdirSync(nas, { recursive: true });
  let t = Date.parse('2026-03-01T08:00:00Z');
  const s = new ExperimentStore(new ArchiveRoot(nas, join(base, 'local')), {
    chambers: () => ['ch01', 'ch02', 'ch03'],
    variables: (chambers) => [
      {
        name: 'air_temperature',
        unit: 'degree_Celsius',
        standard_name: 'air_temperature',
        description: 'Air temperature',
        chambers,
      },
      {
        name: 'co2',
        unit: 'umol mol-1',
        standard_name: 'mole_fraction_of_carbon_dioxide_in_air',
        description: 'CO2',
        chambers,
      },
    ],
    now: () => new Date((t += 60_000)),
  });
  return { s, nas, base };
}

const drought = {
  id: 'drought-2026',
  title: 'Drought response of wheat under elevated CO2',
  description: 'Two CO2 levels, progressive drought.',
  principal_investigator: { name: 'Ada Lovelace', email: 'ada@example.org', orcid: '0000-0002-1825-0097' },
  project: 'CLIMWHEAT',
  chambers: ['ch01', 'ch02'],
  treatments: [
    { chamber: 'ch01', name: 'elevated CO2', setpoints: { co2_setpoint: 700 } },
    { chamber: 'ch02', name: 'ambient CO2', setpoints: { co2_setpoint: 400 } },
  ],
  keywords: ['wheat', 'drought'],
};

describe('experiment store', () => {
  it('creates the experiment folder: metadata, README with variables and citation, DMP, sync script, manifest', async () => {
    const { s, nas } = store();
    const e = await s.create(drought, 'api:ada');
    expect(e.dir).toBe(join(nas, 'drought-2026'));
    for (const f of ['metadata.yaml', 'README.md', 'dmp.md', 'sync.sh', 'MANIFEST.sha256', 'history.log'])
      expect(existsSync(join(e.dir, f)), f).toBe(true);
    const readme = readFileSync(join(e.dir, 'README.md'), 'utf8');
    expect(readme).toContain('# Drought response of wheat under elevated CO2');
    expect(readme).toContain('| `co2` | umol mol-1 | mole_fraction_of_carbon_dioxide_in_air | CO2 | ch01, ch02 |');
    expect(readme).toContain('| ch01 | elevated CO2 | co2_setpoint = 700 |');
    expect(readme).toContain('Ada Lovelace (2026). Drought response of wheat under elevated CO2.');
    expect(readFileSync(join(e.dir, 'MANIFEST.sha256'), 'utf8')).toMatch(/^[0-9a-f]{64} {2}metadata\.yaml\n$/);
    const check = spawnSync('sha256sum', ['-c', 'MANIFEST.sha256'], { cwd: e.dir, encoding: 'utf8' });
    expect(check.stdout).toContain('metadata.yaml: OK');
    expect(spawnSync('sh', ['-n', join(e.dir, 'sync.sh')]).status).toBe(0);
  });

  it('refuses bad input with every problem, naming field and value, and saves nothing', async () => {
    const { s, nas } = store();
    const bad = { ...drought, id: 'Bad Id', chambers: ['ch01', 'ch09'], treatments: [{ chamber: 'ch07', name: 'x' }] };
    const err = await s.create(bad, 'api:ada').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExperimentError);
    expect((err as ExperimentError).status).toBe(400);
    expect((err as ExperimentError).message).toMatch(/id: experiment ids are slugs.*\(got "Bad Id"\)/);
    expect((err as ExperimentError).message).toContain(
      'treatments[0].chamber: chamber "ch07" is not one of the experiment\'s chambers',
    );
    const unknown = await s
      .create({ ...drought, chambers: ['ch01', 'ch09'], treatments: [] }, 'x')
      .catch((e: ExperimentError) => e.message);
    expect(unknown).toBe('chambers[1]: unknown chamber (known: ch01, ch02, ch03) (got "ch09")');
    expect(s.ids()).toEqual([]);
    expect(existsSync(join(nas, 'Bad Id'))).toBe(false);
  });

  it('numbers runs, allows one running run per chamber, and records who started and stopped them', async () => {
    const { s } = store();
    await s.create(drought, 'api:ada');
    await s.create(
      { ...drought, id: 'heat-2026', title: 'Heat waves', chambers: ['ch02', 'ch03'], treatments: [] },
      'api:ada',
    );
    const r1 = s.startRun('drought-2026', 'api:olga', 'first cycle');
    expect(r1).toMatchObject({
      id: 'r001',
      status: 'running',
      chambers: ['ch01', 'ch02'],
      file: 'runs/r001/drought-2026_r001.nc',
      started_by: 'api:olga',
      note: 'first cycle',
    });
    expect(() => s.startRun('drought-2026', 'cli')).toThrow('experiment "drought-2026" already has run r001 running');
    expect(() => s.startRun('heat-2026', 'cli')).toThrow(
      'chamber(s) ch02 already in run r001 of experiment "drought-2026"',
    );
    const events: string[] = [];
    s.on('run', (e) => events.push(`${e.event} ${e.run.experiment}/${e.run.id}`));
    const stopped = s.stopRun('drought-2026', 'r001', 'plc:ch01/running');
    expect(stopped).toMatchObject({ status: 'stopped', stopped_by: 'plc:ch01/running' });
    expect(Date.parse(stopped.stop!)).toBeGreaterThan(Date.parse(stopped.start));
    expect(() => s.stopRun('drought-2026', 'r001', 'x')).toThrow(/already stopped/);
    expect(() => s.stopRun('drought-2026', 'r009', 'x')).toThrow(
      'experiment "drought-2026" has no run "r009" (runs: r001)',
    );
    expect(s.startRun('drought-2026', 'cli').id).toBe('r002');
    expect(events).toEqual(['run_stopped drought-2026/r001', 'run_started drought-2026/r002']);
    expect(s.openRuns().map((r) => `${r.experiment}/${r.id}`)).toEqual(['drought-2026/r002']);
  });

  it('searches by text, chamber, variable, PI and date range', async () => {
    const { s } = store();
    await s.create(drought, 'x');
    await s.create(
      {
        ...drought,
        id: 'heat-2026',
        title: 'Heat waves on maize',
        description: 'Three heat waves.',
        keywords: ['maize'],
        principal_investigator: { name: 'Grace Hopper' },
        chambers: ['ch03'],
        treatments: [],
        variables: ['air_temperature'],
      },
      'x',
    );
    s.startRun('heat-2026', 'x');
    const ids = (q: Parameters<ExperimentStore['list']>[0]) => s.list(q).map((e) => e.metadata.id);
    expect(ids({ text: 'wheat drought' })).toEqual(['drought-2026']);
    expect(ids({ text: 'CLIMWHEAT' })).toEqual(['drought-2026', 'heat-2026']);
    expect(ids({ chamber: 'ch03' })).toEqual(['heat-2026']);
    expect(ids({ variable: 'co2' })).toEqual(['drought-2026']);
    expect(ids({ pi: 'hopper' })).toEqual(['heat-2026']);
    expect(ids({ from: new Date('2026-03-01T00:00:00Z') })).toEqual(['heat-2026']);
    expect(ids({ to: new Date('2026-01-01T00:00:00Z') })).toEqual([]);
  });

  it('picks up hand edits of metadata.yaml, and reports an invalid edit while keeping the last valid one', async () => {
    const { s } = store();
    const e = await s.create(drought, 'x');
    const file = join(e.dir, 'metadata.yaml');
    const text = readFileSync(file, 'utf8');
    writeFileSync(
      file,
      text.replace('title: Drought response of wheat under elevated CO2', 'title: Drought response of durum wheat'),
    );
    expect(s.get('drought-2026').metadata.title).toBe('Drought response of durum wheat');
    const edited = readFileSync(file, 'utf8');
    writeFileSync(file, edited.replace('licence: CC-BY-4.0', 'licence: CC-BY-4.0\nchambers_typo: [ch01]'));
    expect(s.get('drought-2026').metadata.title).toBe('Drought response of durum wheat');
    const problems = s.problems().get('drought-2026')!;
    expect(problems.map((p) => `${p.file}: ${p.path}: ${p.message}`)).toEqual([
      expect.stringMatching(/^drought-2026\/metadata\.yaml: .*chambers_typo/),
    ]);
  });

  it('writes to the local fallback while the NAS is not writable, and moves everything once it is back', async () => {
    const base = mkdtempSync(join(tmpdir(), 'octopus-nas-'));
    dirs.push(base);
    const nas = join(base, 'nas-mount');
    const { s } = store({ nas });
    expect(s.root.available()).toBe(true);
    // The mount point disappears, as an unmounted NAS does (tests run as root, so a
    // read-only mode would not stop writes).
    rmSync(nas, { recursive: true, force: true });
    expect(s.root.available()).toBe(false);
    const e = await s.create(drought, 'x');
    expect(e.dir).toBe(join(s.root.local, 'drought-2026'));
    s.startRun('drought-2026', 'x');
    expect(s.root.pendingLocal()).toBeGreaterThan(4);
    mkdirSync(nas);
    const moved = s.root.migrate();
    expect(moved).toBeGreaterThan(4);
    expect(s.root.pendingLocal()).toBe(0);
    expect(s.get('drought-2026').dir).toBe(join(nas, 'drought-2026'));
    expect(s.get('drought-2026').runs.map((r) => r.id)).toEqual(['r001']);
  });
});
