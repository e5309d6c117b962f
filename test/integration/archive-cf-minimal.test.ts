/**
 * A real run of the embedded default (config/default.yaml: four simulated chambers, the
 * embedded broker, the facility section) whose experiment gives only the required
 * fields — id, title, principal investigator, chambers. The run file and the daily file
 * pass the independent CF-1.11 / ACDD-1.3 checker (python netCDF4, the shipped standard
 * name table, udunits2); the derived VPD and dew point agree with a reference
 * implementation; the daily file is listed in MANIFEST.sha256 and the README, and is
 * downloadable from the API like the run file. Only the ports and the data folder of the
 * default configuration are changed (tests never bind fixed ports).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/loader.ts';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { createExperimentStore } from '../../src/experiments/factory.ts';
import { runCli, startOctopus, type RunningOctopus } from '../support/cli.ts';
import { cfAcddCheck, derivedReference } from '../support/cf-check.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';
import { pythonView } from '../support/netcdf.ts';
import { eventually, freePort } from '../support/ports.ts';

const cleanups: Array<() => Promise<unknown> | unknown> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanScratch();
});

const NO_OVERRIDES = {
  OCTOPUS_MQTT_URL: '',
  OCTOPUS_DATA_DIR: '',
  OCTOPUS_HTTP_PORT: '',
  OCTOPUS_MQTT_PORT: '',
  OCTOPUS_CONFIG: '',
};

describe('minimal experiment metadata on the embedded default', () => {
  it('the run file, its derived variables and the daily file pass CF-1.11 / ACDD-1.3; the daily file is listed and downloadable', async () => {
    const dir = scratch('octopus-cf-minimal-');
    const [http, mqtt, opc1, opc2, modbus] = [
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    const doc = parse(readFileSync(join(PROJECT_ROOT, 'config', 'default.yaml'), 'utf8')) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- the YAML document as parsed
    doc.data_dir = join(dir, 'data');
    doc.http.port = http;
    doc.mqtt.port = mqtt;
    const ports: Record<string, string> = {
      ch01: `opc.tcp://127.0.0.1:${opc1}`,
      ch02: `opc.tcp://127.0.0.1:${opc2}`,
      ch03: `tcp://127.0.0.1:${modbus}`,
      ch04: `tcp://127.0.0.1:${modbus}`,
    };
    for (const c of doc.chambers as Array<{ id: string; endpoint: string }>) c.endpoint = ports[c.id]!;
    expect(doc.facility).toBeDefined();
    const config = join(dir, 'lab.yaml');
    writeFileSync(config, stringify(doc));

    const env = { ...NO_OVERRIDES, OCTOPUS_CONFIG: config, OCTOPUS_ADMIN_TOKEN: '' };
    expect(runCli(['user', 'add', 'rita', '--role', 'researcher'], { env }).code).toBe(0);
    const token = runCli(['token', 'create', 'rita', '--name', 'test'], { env }).stdout.trim();
    expect(token).toMatch(/^oct_/);

    const oct: RunningOctopus = await startOctopus(config);
    cleanups.push(() => oct.stop('SIGKILL'));
    const store = createExperimentStore(loadConfig(config, { ...process.env, ...NO_OVERRIDES }));
    // Only the required fields.
    await store.create(
      {
        id: 'minimal',
        title: 'Minimal metadata',
        principal_investigator: { name: 'Ada Lovelace' },
        chambers: ['ch01', 'ch02', 'ch03', 'ch04'],
      },
      'test',
    );
    const run = store.startRun('minimal', 'test');
    const open = join(dir, 'data', 'runs-open', 'minimal', run.id, 'minimal_r001.nc');
    await eventually(() => existsSync(open), 'the run file opened', 60_000);
    // Derived values present (flag good or held: OPC UA chambers report on change) in every chamber for 15 slots.
    let seen = '';
    await eventually(
      () => {
        const v = pythonView(open, ['vapour_pressure_deficit_qc']).netcdf4.vars.vapour_pressure_deficit_qc?.data as
          number[][] | undefined;
        seen = JSON.stringify(v?.slice(-5));
        return v && v.filter((row) => row.every((q) => q === 0 || q === 4)).length >= 15;
      },
      '15 s of derived values in every chamber',
      120_000,
      1000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last flags ${seen}\n${oct.output().slice(-3000)}`);
    });
    store.stopRun('minimal', run.id, 'test');

    const e = store.get('minimal');
    const file = join(e.dir, run.file);
    const daily = file.replace(/\.nc$/, '_daily.nc');
    await eventually(
      () =>
        existsSync(file) &&
        existsSync(daily) &&
        readFileSync(join(e.dir, 'MANIFEST.sha256'), 'utf8').includes('minimal_r001_daily.nc'),
      'run archived with its daily file and manifest',
      120_000,
      500,
    );
    expect(readFileSync(join(e.dir, 'README.md'), 'utf8')).toContain('minimal_r001_daily.nc');

    const check = cfAcddCheck(file, daily);
    for (const [f, r] of Object.entries(check))
      console.info(
        `cf/acdd ${f.split('/').pop()}: ${r.errors.length} errors, ${r.warnings.length} warnings (${r.warnings.map((w) => w.replace(/ACDD recommended global attribute (\w+) missing.*/, '$1')).join(', ')})`,
      );
    expect(check[file]!.errors).toEqual([]);
    expect(check[daily]!.errors).toEqual([]);

    const view = pythonView(file, ['time']).netcdf4;
    expect(view.globals).toMatchObject({
      institution: doc.facility.institution,
      naming_authority: doc.facility.naming_authority,
      publisher_name: doc.facility.publisher_name,
      license: 'CC-BY-4.0',
      project: 'Minimal metadata',
      keywords_vocabulary: 'CF:NetCDF COARDS Climate and Forecast Standard Names',
    });
    expect(String(view.globals.keywords).split(', ')).toEqual(
      expect.arrayContaining([
        'air_temperature',
        'relative_humidity',
        'water_vapor_saturation_deficit_in_air',
        'dew_point_temperature',
      ]),
    );
    expect(view.globals.date_issued).toBeDefined();
    expect(view.vars.firmware_build!.attrs.units).toBe('1');

    const ref = derivedReference(file, daily);
    console.info(
      `derived on the default: ${ref.derived.compared} values, VPD max rel. error ${(ref.derived.vpd_max_rel_err * 100).toFixed(3)} %, dew point ${ref.derived.dew_max_abs_err_k.toFixed(4)} K; daily: ${ref.daily!.days} day(s), max rel. diff ${ref.daily!.max_rel_diff.toExponential(2)}`,
    );
    expect(ref.derived.chambers_with_inputs).toEqual([0, 1, 2, 3]);
    expect(ref.derived.compared).toBeGreaterThan(4 * 15);
    expect(ref.derived.vpd_max_rel_err).toBeLessThan(0.003);
    expect(ref.derived.dew_max_abs_err_k).toBeLessThan(0.06);
    expect(ref.derived.vpd_qc_mismatches).toBe(0);
    expect(ref.derived.dew_qc_mismatches).toBe(0);
    expect(ref.daily!.mismatches).toBe(0);
    expect(ref.daily!.max_rel_diff).toBeLessThan(1e-5);
    for (const cm of Object.values(ref.daily!.cell_methods))
      expect(cm).toEqual(['time: mean', 'time: minimum', 'time: maximum']);

    // Downloadable like the run file: same bytes, audited, and a clear 404 for a run without one.
    const res = await fetch(`http://127.0.0.1:${http}/api/experiments/minimal/runs/${run.id}/daily.nc`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toContain('minimal_r001_daily.nc');
    expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(daily))).toBe(true);
    const tail = await fetch(`http://127.0.0.1:${http}/api/experiments/minimal/runs/${run.id}/daily.nc`, {
      headers: { authorization: `Bearer ${token}`, range: 'bytes=-16' },
    });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(readFileSync(daily).subarray(-16))).toBe(true);
    const anonymous = await fetch(`http://127.0.0.1:${http}/api/experiments/minimal/runs/${run.id}/daily.nc`);
    expect(anonymous.status).toBe(401);
    const run2 = store.startRun('minimal', 'test');
    const none = await fetch(`http://127.0.0.1:${http}/api/experiments/minimal/runs/${run2.id}/daily.nc`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect([404]).toContain(none.status);
    store.stopRun('minimal', run2.id, 'test');
  }, 400_000);
});
