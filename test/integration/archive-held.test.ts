/**
 * Held values are held: an OPC UA chamber (subscription: values reported on change)
 * whose server keeps every tag constant, archived by `octopus start`. Each constant tag is
 * in ≥ 99 % of the online slots (flag held or good); once the OPC UA server process is
 * killed its slots become offline within one period, and held again after it is back.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { HealthReport } from '../../src/core/health.ts';
import { loadConfig } from '../../src/config/loader.ts';
import { createExperimentStore } from '../../src/experiments/factory.ts';
import { QC } from '../../src/collector/sinks/netcdf/grid.ts';
import { startOctopus, type RunningOctopus } from '../support/cli.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';
import { pythonView } from '../support/netcdf.ts';
import { startOpcuaChild, type OpcuaChild } from '../support/opcua-child.ts';
import { TEST_NS, testProfile } from '../support/opcua-fixtures.ts';
import { eventually, freePort } from '../support/ports.ts';

let server: OpcuaChild | undefined;
let octopus: RunningOctopus | undefined;
afterAll(async () => {
  await octopus?.stop('SIGKILL');
  await server?.kill();
  cleanScratch();
});

const TAGS = ['air_temperature', 'co2_raw', 'temperature_setpoint', 'door_open'];

describe('held values of an OPC UA chamber', () => {
  it('constant tags are held in ≥ 99 % of online slots, offline within one period after the server dies, held again after', async () => {
    const dir = scratch('octopus-held-');
    mkdirSync(join(dir, 'profiles'));
    writeFileSync(join(dir, 'profiles', 'test-server.yaml'), stringify(testProfile));
    const [port, http, mqtt] = [await freePort(), await freePort(), await freePort()];
    // --interval-ms far away: the server never changes a value, so each is reported once per subscription.
    const args = [
      '--port',
      String(port),
      '--namespace',
      TEST_NS,
      '--profile',
      join(dir, 'profiles', 'test-server.yaml'),
      '--interval-ms',
      '100000000',
    ];
    server = await startOpcuaChild(args);
    const config = join(dir, 'lab.yaml');
    writeFileSync(
      config,
      `
gateway: { id: held }
data_dir: ${JSON.stringify(join(dir, 'data'))}
profile_dirs: [${JSON.stringify(join(dir, 'profiles'))}]
mqtt: { port: ${mqtt} }
http: { port: ${http}, host: 127.0.0.1 }
experiments: { reorder_window_ms: 1000, flush_interval_ms: 200 }
chambers:
  - { id: o1, name: OPC UA, driver: opcua, profile: test-server, endpoint: ${JSON.stringify(server.endpoint)}, interval_ms: 500 }
`,
    );
    octopus = await startOctopus(config);
    const health = async () => HealthReport.parse(await (await fetch(`http://127.0.0.1:${http}/api/health`)).json());
    await eventually(async () => (await health()).drivers[0]?.state === 'online', 'chamber online', 30_000);
    const store = createExperimentStore(
      loadConfig(config, { ...process.env, OCTOPUS_MQTT_URL: '', OCTOPUS_DATA_DIR: '', OCTOPUS_HTTP_PORT: '' }),
    );
    await store.create(
      {
        id: 'held',
        title: 'Held values',
        principal_investigator: { name: 'Ada' },
        chambers: ['o1'],
        sampling_period_s: 1,
      },
      'test',
    );
    const run = store.startRun('held', 'test');
    await eventually(async () => Number((await health()).sinks.netcdf?.records) >= 20, '20 s of records', 60_000);

    await server.kill();
    const killedAt = Date.now();
    await eventually(async () => (await health()).drivers[0]?.state === 'offline', 'offline after the kill', 30_000);
    await new Promise((r) => setTimeout(r, 5000)); // scenario time: the server stays down
    const restartedAt = Date.now(); // the new server cannot stamp a value before it is spawned
    server = await startOpcuaChild(args);
    await eventually(async () => (await health()).drivers[0]?.state === 'online', 'online again', 60_000);
    const onlineAt = Date.now();
    const recordsThen = Number((await health()).sinks.netcdf?.records);
    await eventually(
      async () => Number((await health()).sinks.netcdf?.records) >= recordsThen + 20,
      '20 s more',
      60_000,
    );
    store.stopRun('held', run.id, 'test');
    const file = join(store.get('held').dir, run.file);
    await eventually(() => pythonView(file, ['time']), 'archived', 30_000);

    const view = pythonView(file, ['time', ...TAGS.flatMap((t) => [t, `${t}_qc`])]).netcdf4;
    const times = (view.vars.time!.data as number[]).map((t) => Math.round(t * 1000));
    for (const tag of TAGS) {
      const qc = (view.vars[`${tag}_qc`]!.data as number[][]).map((r) => r[0]!);
      const values = (view.vars[tag]!.data as Array<Array<number | null>>).map((r) => r[0]);
      // Online before the kill: from the second slot (the first may precede the first value).
      const before = times.map((t, i) => ({ t, i })).filter(({ t }) => t > times[0]! && t < killedAt - 1000);
      const heldBefore = before.filter(({ i }) => qc[i] === QC.good || qc[i] === QC.held);
      expect(
        heldBefore.length / before.length,
        `${tag}: ${JSON.stringify(before.map(({ i }) => qc[i]))}`,
      ).toBeGreaterThanOrEqual(0.99);
      expect(before.filter(({ i }) => qc[i] === QC.held).length).toBeGreaterThan(10);
      expect(heldBefore.every(({ i }) => values[i] !== null)).toBe(true);
      // After the kill (one period on) until the server is back: never held.
      const down = times.map((t, i) => ({ t, i })).filter(({ t }) => t >= killedAt + 1000 && t < restartedAt);
      expect(down.length).toBeGreaterThanOrEqual(4);
      expect(
        down.map(({ i }) => qc[i]).filter((q) => q !== QC.offline && q !== QC.bad),
        `${tag} while down`,
      ).toEqual([]);
      expect(down.every(({ i }) => values[i] === null)).toBe(true);
      // Back online: held again.
      const after = times.map((t, i) => ({ t, i })).filter(({ t }) => t >= onlineAt + 2000);
      expect(after.length).toBeGreaterThanOrEqual(10);
      const heldAfter = after.filter(({ i }) => qc[i] === QC.good || qc[i] === QC.held);
      expect(
        heldAfter.length / after.length,
        `${tag} after: ${JSON.stringify(after.map(({ i }) => qc[i]))}`,
      ).toBeGreaterThanOrEqual(0.99);
    }
  }, 300_000);
});
