/**
 * Nothing stranded, nothing silent: with real write faults (`chattr +i`, which stops
 * root too; chmod does not), `octopus start` keeps running, health goes degraded naming
 * the path and errno, and the archive recovers by itself: the run file becomes writable
 * again, a run whose file could not be finished or moved at stop is finished once the
 * fault clears, or after a restart.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HealthReport } from '../../src/core/health.ts';
import { loadConfig } from '../../src/config/loader.ts';
import { createExperimentStore } from '../../src/experiments/factory.ts';
import type { ExperimentStore } from '../../src/experiments/store.ts';
import { startOctopus, type RunningOctopus } from '../support/cli.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';
import { ncdump, pythonView } from '../support/netcdf.ts';
import { eventually, freePort } from '../support/ports.ts';

let dir: string;
let config: string;
let http: number;
let octopus: RunningOctopus | undefined;
let store: ExperimentStore;
const immutable = new Set<string>();

function chattr(flag: '+i' | '-i', path: string): void {
  const r = spawnSync('chattr', [flag, path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`chattr ${flag} ${path}: ${r.stderr}`);
  if (flag === '+i') immutable.add(path);
  else immutable.delete(path);
}

const health = async () => HealthReport.parse(await (await fetch(`http://127.0.0.1:${http}/api/health`)).json());
const working = (run: string, ...rest: string[]) => join(dir, 'data', 'runs-open', 'faults', run, ...rest);

beforeAll(async () => {
  dir = scratch('octopus-archive-faults-');
  const modbus = await freePort();
  http = await freePort();
  config = join(dir, 'lab.yaml');
  writeFileSync(
    config,
    `
gateway: { id: faults }
data_dir: ${JSON.stringify(join(dir, 'data'))}
simulator: { enabled: true }
mqtt: { port: ${await freePort()} }
http: { port: ${http}, host: 127.0.0.1 }
experiments: { reorder_window_ms: 500, flush_interval_ms: 200 }
chambers:
  - { id: m1, name: Modbus, driver: modbus, profile: climatec-ch400, endpoint: "tcp://127.0.0.1:${modbus}", interval_ms: 500, modbus: { unit_id: 2 } }
`,
  );
  octopus = await startOctopus(config);
  store = createExperimentStore(
    loadConfig(config, { ...process.env, OCTOPUS_MQTT_URL: '', OCTOPUS_DATA_DIR: '', OCTOPUS_HTTP_PORT: '' }),
  );
  await store.create(
    { id: 'faults', title: 'Write faults', principal_investigator: { name: 'Ada' }, chambers: ['m1'] },
    'test',
  );
}, 60_000);

afterAll(async () => {
  for (const p of [...immutable]) chattr('-i', p);
  await octopus?.stop('SIGKILL');
  cleanScratch();
});

describe('archive write faults', () => {
  it('an unwritable run file degrades health with its path and errno, and the archive goes on when it is writable again', async () => {
    const run = store.startRun('faults', 'test');
    const file = working(run.id, `faults_${run.id}.nc`);
    await eventually(async () => Number((await health()).sinks.netcdf?.records) >= 3, 'records written', 30_000);
    chattr('+i', file);
    chattr('+i', `${file}.log`);
    const h = await eventually(
      async () => {
        const x = await health();
        return x.status === 'degraded' && x.problems.some((p) => p.includes(file) && p.includes('EPERM'))
          ? x
          : undefined;
      },
      'health names the file and EPERM',
      30_000,
    );
    expect(h.sinks.netcdf?.state).toBe('degraded');
    expect(octopus!.proc.exitCode).toBeNull();
    const during = Number(h.sinks.netcdf?.records);
    chattr('-i', file);
    chattr('-i', `${file}.log`);
    await eventually(async () => (await health()).status === 'ok', 'health ok again', 30_000);
    await eventually(async () => Number((await health()).sinks.netcdf?.records) > during + 2, 'records go on', 30_000);
    const stopped = store.stopRun('faults', run.id, 'test');
    const final = join(store.get('faults').dir, run.file);
    await eventually(() => existsSync(final), 'archived', 30_000);
    // The slots written during the fault are in the file: kept in memory and written after.
    const qc = pythonView(final, ['air_temperature_qc']).netcdf4.vars.air_temperature_qc!.data as number[][];
    const start = Math.round(Date.parse(run.start) / 1000) * 1000;
    expect(qc.length).toBe(Math.round((Date.parse(stopped.stop!) - start) / 1000) + 1);
    expect(qc.slice(1, -1).filter((r) => r[0] !== 0).length).toBeLessThanOrEqual(1);
  });

  it('a run file that cannot be finished or moved at stop is retried, shown in health, and finished once the fault clears', async () => {
    const run = store.startRun('faults', 'test');
    await eventually(async () => Number((await health()).sinks.netcdf?.records) >= 2, 'records written', 30_000);
    const runDir = working(run.id);
    chattr('+i', runDir);
    store.stopRun('faults', run.id, 'test');
    const h = await eventually(
      async () => {
        const x = await health();
        const stranded = (x.sinks.netcdf?.stranded ?? []) as Array<{ path: string; errno: string }>;
        return stranded.some((s) => s.path.startsWith(runDir) && s.errno === 'EPERM') && x.status === 'degraded'
          ? x
          : undefined;
      },
      'health shows the stranded run with EPERM',
      30_000,
    ).catch(async (err: Error) => {
      throw new Error(
        `${err.message}\n${JSON.stringify((await health()).sinks.netcdf)}\n${octopus!.output().slice(-3000)}`,
      );
    });
    expect(h.problems.join('\n')).toContain(runDir);
    const final = join(store.get('faults').dir, run.file);
    expect(existsSync(final)).toBe(false);
    chattr('-i', runDir);
    await eventually(() => existsSync(final), 'finished and moved after the fault cleared', 30_000).catch(
      (err: Error) => {
        throw new Error(`${err.message}\n${octopus!.output().slice(-3000)}`);
      },
    );
    await eventually(
      () => readFileSync(join(store.get('faults').dir, 'MANIFEST.sha256'), 'utf8').includes(run.file),
      'in the manifest',
      30_000,
    );
    expect(spawnSync('sha256sum', ['-c', 'MANIFEST.sha256'], { cwd: store.get('faults').dir }).status).toBe(0);
    expect(ncdump(final, true).status).toBe(0);
    expect(existsSync(runDir)).toBe(false);
    await eventually(async () => (await health()).status === 'ok', 'health ok again', 30_000);
  });

  it('a stranded run is found and finished at the next start', async () => {
    const run = store.startRun('faults', 'test');
    await eventually(async () => Number((await health()).sinks.netcdf?.records) >= 2, 'records written', 30_000);
    const runDir = working(run.id);
    chattr('+i', runDir);
    const stopped = store.stopRun('faults', run.id, 'test');
    await eventually(
      async () => ((await health()).sinks.netcdf?.stranded as unknown[] | undefined)?.length,
      'stranded',
      30_000,
    );
    await octopus!.stop('SIGKILL');
    chattr('-i', runDir);
    octopus = await startOctopus(config);
    const final = join(store.get('faults').dir, run.file);
    await eventually(() => existsSync(final), 'finished at startup', 30_000);
    const times = pythonView(final, ['time']).netcdf4.vars.time!.data as number[];
    const start = Math.round(Date.parse(run.start) / 1000) * 1000;
    expect(times.length).toBe(Math.round((Date.parse(stopped.stop!) - start) / 1000) + 1);
    expect(ncdump(final, true).stdout).toContain('time_coverage_end');
  });
});
