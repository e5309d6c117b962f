/**
 * Treatment fidelity through the real stop path: `octopus start` with simulated chambers
 * (c1 OPC UA, c2 Modbus), tolerances from the shipped profiles, a chamber override in the
 * instance configuration and a treatment override in the experiment's metadata. While
 * the run records, the API answers with the report computed from the working file; at
 * stop the archiver writes runs/<run>/fidelity.json, the README's "Treatment fidelity"
 * section, the MANIFEST entry and the attributes of each controlled variable in the
 * NetCDF file; an independent xarray + numpy computation over the archived file agrees
 * with fidelity.json.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/loader.ts';
import { createExperimentStore } from '../../src/experiments/factory.ts';
import type { ExperimentStore } from '../../src/experiments/store.ts';
import { FidelityReport } from '../../src/fidelity/report-schema.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';
import { runCli, startOctopus, type RunningOctopus } from '../support/cli.ts';
import { spawnSync } from 'node:child_process';
import { pythonFidelity } from '../support/fidelity-fixture.ts';
import { ncdump, pythonView } from '../support/netcdf.ts';
import { person } from '../support/people.ts';
import { eventually, freePort } from '../support/ports.ts';

let octopus: RunningOctopus;
let store: ExperimentStore;
let base = '';
let token = '';
let configFile = '';
const cliEnv = {
  OCTOPUS_CONFIG: '',
  OCTOPUS_MQTT_URL: '',
  OCTOPUS_INFLUX_URL: '',
  OCTOPUS_HTTP_PORT: '',
  OCTOPUS_DATA_DIR: '',
};

beforeAll(async () => {
  const dir = scratch('octopus-fidelity-stop-');
  const [mqttPort, opcua, modbus, http] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const config = join(dir, 'lab.yaml');
  configFile = config;
  writeFileSync(
    config,
    `
gateway: { id: fidelity }
data_dir: ${JSON.stringify(join(dir, 'data'))}
simulator: { enabled: true, seed: 11 }
mqtt: { port: ${mqttPort} }
http: { port: ${http}, host: 127.0.0.1 }
experiments: { reorder_window_ms: 1000, flush_interval_ms: 200 }
chambers:
  - { id: c1, name: OPC UA chamber, driver: opcua, profile: ecotron-chamberctl, endpoint: "opc.tcp://127.0.0.1:${opcua}", interval_ms: 500 }
  - { id: c2, name: Float registers, driver: modbus, profile: phytolab-gc2, endpoint: "tcp://127.0.0.1:${modbus}", interval_ms: 500, modbus: { unit_id: 1 }, tolerances: { co2: { band: 80 } } }
`,
  );
  const env = {
    ...process.env,
    OCTOPUS_MQTT_URL: '',
    OCTOPUS_INFLUX_URL: '',
    OCTOPUS_HTTP_PORT: '',
    OCTOPUS_DATA_DIR: '',
  };
  octopus = await startOctopus(config, { env });
  store = createExperimentStore(loadConfig(config, env));
  token = (await person(join(dir, 'data'), 'vera', 'viewer')).password;
  base = `http://127.0.0.1:${http}`;
}, 90_000);

afterAll(async () => {
  await octopus?.stop('SIGKILL');
  cleanScratch();
});

const api = async (path: string) => {
  const r = await fetch(base + path, { headers: { authorization: `Bearer ${token}` } });
  return { status: r.status, body: (await r.json()) as unknown };
};

describe('treatment fidelity at run stop', () => {
  it('is answered for the open run and written beside the file, in the README, the MANIFEST and the NetCDF attributes at stop', async () => {
    await store.create(
      {
        id: 'fid-run',
        title: 'Fidelity through the stop path',
        principal_investigator: { name: 'Ada Lovelace' },
        chambers: ['c1', 'c2'],
        treatments: [
          { chamber: 'c1', name: 'warm', tolerances: { air_temperature: { band: 2, min_duration_s: 5 } } },
          { chamber: 'c2', name: 'warm' },
        ],
      },
      'test',
    );
    const run = store.startRun('fid-run', 'test');
    // the open run: computed from its working file by the API
    let open: FidelityReport | undefined;
    await eventually(
      async () => {
        const r = await api(`/api/experiments/fid-run/runs/${run.id}/fidelity`);
        if (r.status !== 200) return false;
        open = FidelityReport.parse(r.body);
        return (
          open.slots >= 6 && Object.values(open.chambers).every((c) => (c.variables.air_temperature?.covered ?? 0) > 0)
        );
      },
      'the open run has a few covered slots of air temperature in both chambers',
      60_000,
      500,
    );
    expect(open!.open).toBe(true);
    expect(open!.chambers.c1!.variables.air_temperature!.tolerance).toMatchObject({
      band: 2,
      min_duration_s: 5,
      source: { band: 'treatment', min_duration_s: 'treatment', hysteresis: 'default' },
    });
    expect(open!.chambers.c2!.variables.co2!.tolerance).toMatchObject({
      band: 80,
      min_duration_s: 300,
      source: { band: 'chamber', min_duration_s: 'profile' },
    });
    expect(open!.treatments.warm!.chambers).toEqual(['c1', 'c2']);
    const completeness = await api(`/api/experiments/fid-run/runs/${run.id}/completeness`);
    expect(completeness.status).toBe(200);
    expect((completeness.body as { open: boolean }).open).toBe(true);

    store.stopRun('fid-run', run.id, 'test');
    const dir = store.get('fid-run').dir;
    const report = join(dir, 'runs', run.id, 'fidelity.json');
    await eventually(
      () =>
        existsSync(report) &&
        readFileSync(join(dir, 'MANIFEST.sha256'), 'utf8').includes(`runs/${run.id}/fidelity.json`),
      'fidelity.json written and listed in the MANIFEST',
      60_000,
      250,
    );
    const saved = FidelityReport.parse(JSON.parse(readFileSync(report, 'utf8')));
    expect(saved.open).toBe(false);
    expect(saved.run).toBe(`fid-run/${run.id}`);
    const sha = createHash('sha256').update(readFileSync(report)).digest('hex');
    expect(readFileSync(join(dir, 'MANIFEST.sha256'), 'utf8')).toContain(`${sha}  runs/${run.id}/fidelity.json`);
    await eventually(
      () => readFileSync(join(dir, 'README.md'), 'utf8').includes(`## Treatment fidelity of run fid-run/${run.id}`),
      'README section',
      30_000,
      250,
    );
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toMatch(
      /\| c2 \| warm \| `co2` \| ±80 umol mol-1 ≥ 300 s \(chamber\/profile\/default\) \|/,
    );
    // the API now answers with the stored report
    const after = await api(`/api/experiments/fid-run/runs/${run.id}/fidelity`);
    expect((after.body as FidelityReport).generated_at).toBe(saved.generated_at);

    // attributes of the controlled variables in the archived file, as netCDF4 reads them
    const nc = join(dir, store.get('fid-run').runs[0]!.file);
    expect(ncdump(nc, true).status).toBe(0);
    const view = pythonView(nc, ['air_temperature']);
    const at = view.netcdf4.vars.air_temperature!.attrs;
    expect(at.fidelity_setpoint_variable).toBe('air_temperature_setpoint');
    expect(at.tolerance_band).toEqual([2, 0.5]);
    expect((at.fidelity_coverage_percent as number[])[0]).toBeCloseTo(
      saved.chambers.c1!.variables.air_temperature!.coverage_percent,
      9,
    );

    // an independent computation over the archived file agrees
    const plan = Object.fromEntries(
      Object.entries(saved.chambers).map(([c, cf]) => [
        c,
        Object.entries(cf.variables).map(([m, v]) => ({
          measured: m,
          setpoint: v.setpoint,
          band: v.tolerance.band,
          min_duration_s: v.tolerance.min_duration_s,
          hysteresis: v.tolerance.hysteresis,
        })),
      ]),
    );
    const py = pythonFidelity(nc, plan);
    let judged = 0;
    for (const [c, cf] of Object.entries(saved.chambers)) {
      for (const [m, v] of Object.entries(cf.variables)) {
        const p = py.chambers[c]![m]!;
        expect(v.covered, `${c} ${m}`).toBe(p.covered);
        expect(v.within, `${c} ${m}`).toBe(p.within);
        if (p.mean !== null) expect(v.mean_deviation!, `${c} ${m}`).toBeCloseTo(p.mean, 9);
        if (p.rms !== null) expect(v.rms_deviation!, `${c} ${m}`).toBeCloseTo(p.rms, 9);
        expect(v.excursions, `${c} ${m}`).toBe(p.excursions.length);
        judged++;
      }
    }
    expect(judged).toBeGreaterThanOrEqual(6);
  }, 180_000);

  it("octopus fidelity prints a run's report, writes it again for a stopped run (documents and MANIFEST kept consistent), refuses --write while recording", () => {
    const shown = runCli(['fidelity', 'fid-run', 'r001', '--config', configFile], { env: cliEnv });
    expect(shown.code, shown.stderr).toBe(0);
    expect(shown.stdout).toContain('## Treatment fidelity of run fid-run/r001');
    const json = runCli(['fidelity', 'fid-run', 'r001', '--json', '--config', configFile], { env: cliEnv });
    const report = FidelityReport.parse(JSON.parse(json.stdout));
    expect(report.chambers.c1!.variables.air_temperature!.tolerance.band).toBe(2);
    const dir = store.get('fid-run').dir;
    const before = JSON.parse(readFileSync(join(dir, 'runs', 'r001', 'fidelity.json'), 'utf8')).generated_at;
    const written = runCli(['fidelity', 'fid-run', 'r001', '--write', '--config', configFile], { env: cliEnv });
    expect(written.code, written.stderr).toBe(0);
    expect(written.stdout).toMatch(/wrote .*fidelity\.json, the attributes, README\.md and MANIFEST\.sha256/);
    expect(JSON.parse(readFileSync(join(dir, 'runs', 'r001', 'fidelity.json'), 'utf8')).generated_at).not.toBe(before);
    expect(spawnSync('sha256sum', ['-c', 'MANIFEST.sha256'], { cwd: dir, encoding: 'utf8' }).status).toBe(0);
    store.startRun('fid-run', 'test');
    const refused = runCli(['fidelity', 'fid-run', '--write', '--config', configFile], { env: cliEnv });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/run fid-run\/r002 is still recording/);
  }, 120_000);
});
