/**
 * Exactly one process writes a run's file however many collectors run: three `octopus
 * collect` share one data folder (archive on in each, as scaling out with one shared
 * config does) behind real Mosquitto, fed by an `octopus start` gateway. One holds the
 * archive lease, the others stand by; the PLC's run-trigger edges start and stop the run
 * once; the writer is killed (-9) mid-run, another takes over, and the file holds every
 * sample a recorder saw (netCDF4), written by one writer at a time.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HealthReport } from '../../src/core/health.ts';
import { connectMqtt } from '../../src/bus/mqtt-client.ts';
import { loadConfig } from '../../src/config/loader.ts';
import { createExperimentStore } from '../../src/experiments/factory.ts';
import { expectRunMatchesRecorder, recorder } from '../support/archive-compare.ts';
import { startCollect, startOctopus } from '../support/cli.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';
import { Mosquitto } from '../support/mosquitto.ts';
import { eventually, freePort } from '../support/ports.ts';

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanScratch();
});

describe('three collectors, one archive writer', () => {
  it('one writer at a time, takeover after a kill, each trigger edge acts once, the file complete', async () => {
    const mosquitto = await Mosquitto.start({ persistence: true });
    cleanups.push(() => mosquitto.close());
    const dir = scratch('octopus-lease-');
    const data = join(dir, 'shared-data');
    const modbus = await freePort();
    const chamber = `chambers:\n  - { id: m1, name: Modbus, driver: modbus, profile: climatec-ch400, endpoint: "tcp://127.0.0.1:${modbus}", interval_ms: 400, modbus: { unit_id: 2 } }\n`;
    mkdirSync(join(dir, 'gw'));
    const gwConfig = join(dir, 'gw', 'lab.yaml');
    writeFileSync(
      gwConfig,
      `gateway: { id: gw }\ndata_dir: ${JSON.stringify(join(dir, 'gw', 'data'))}\nsimulator: { enabled: true }\nmqtt: { url: ${JSON.stringify(mosquitto.url)} }\nhttp: { port: ${await freePort()}, host: 127.0.0.1 }\ncollector: { enabled: false }\n${chamber}`,
    );
    const ports: number[] = [];
    const configs: string[] = [];
    for (let i = 0; i < 3; i++) {
      ports.push(await freePort());
      mkdirSync(join(dir, `c${i}`));
      configs.push(join(dir, `c${i}`, 'lab.yaml'));
      writeFileSync(
        configs[i]!,
        `gateway: { id: col${i} }\ndata_dir: ${JSON.stringify(data)}\nmqtt: { url: ${JSON.stringify(mosquitto.url)} }\nhttp: { host: 127.0.0.1 }\ncollector: { client_id: lease-col-${i}, http_port: ${ports[i]} }\nexperiments: { reorder_window_ms: 1000, flush_interval_ms: 300, lease_ttl_ms: 2000 }\n${chamber}`,
      );
    }
    const rec = await recorder(mosquitto.url, 'lease-recorder');
    cleanups.push(() => rec.conn.end());
    const procs = [];
    for (const c of configs) {
      const { proc } = await startCollect(c);
      cleanups.push(() => proc.kill('SIGKILL'));
      procs.push(proc);
    }
    const gw = await startOctopus(gwConfig);
    cleanups.push(() => gw.stop('SIGKILL'));
    const alive = new Set([0, 1, 2]);
    const role = async (i: number) => {
      try {
        const h = HealthReport.parse(await (await fetch(`http://127.0.0.1:${ports[i]}/api/health`)).json());
        return h.sinks.netcdf?.role as string | undefined;
      } catch {
        return undefined;
      }
    };
    // Watch the roles all along: never two writers at once.
    let most = 0;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const roles = await Promise.all([...alive].map(role));
        most = Math.max(most, roles.filter((r) => r === 'writer').length);
        await new Promise((r) => setTimeout(r, 150));
      }
    })();
    cleanups.push(() => (watching = false));
    await eventually(
      async () => (await Promise.all([0, 1, 2].map(role))).filter((r) => r === 'writer').length === 1,
      'one writer',
      30_000,
    );

    const store = createExperimentStore(
      loadConfig(configs[0]!, { ...process.env, OCTOPUS_MQTT_URL: '', OCTOPUS_DATA_DIR: '', OCTOPUS_HTTP_PORT: '' }),
    );
    await store.create(
      { id: 'lease', title: 'Lease', principal_investigator: { name: 'Ada' }, chambers: ['m1'], sampling_period_s: 1 },
      'test',
    );
    const plc = connectMqtt({ url: mosquitto.url, clientId: 'lease-plc-operator' });
    cleanups.push(() => plc.end());
    await eventually(() => plc.connected, 'operator connected');
    await plc.publish('octopus/m1/set/running/lease-operator', JSON.stringify({ value: false }), { qos: 1 });
    // The collectors see the low level first: they get the data stream in the order the
    // recorder does, so once the recorder saw running = false read back, they have too.
    const lowFrom = rec.samples.length;
    await eventually(
      () => rec.samples.slice(lowFrom).some((x) => x.chamber === 'm1' && x.tag === 'running' && x.value === false),
      'running = false read back from the PLC',
      30_000,
    );
    await plc.publish('octopus/m1/set/running/lease-operator', JSON.stringify({ value: true }), { qos: 1 });
    const run = await eventually(
      () => store.get('lease').runs.find((r) => r.status === 'running'),
      'run started by the PLC',
      30_000,
    );
    expect(run.started_by).toBe('plc:m1/running');

    const writer =
      (await eventually(
        async () => {
          for (const i of alive) if ((await role(i)) === 'writer') return i + 1;
          return undefined;
        },
        'the writer',
        10_000,
      )) - 1;
    await new Promise((r) => setTimeout(r, 5000)); // scenario time: the run records
    procs[writer]!.kill('SIGKILL');
    alive.delete(writer);
    await eventually(
      async () => (await Promise.all([...alive].map(role))).includes('writer'),
      'another collector takes over',
      30_000,
    );
    await new Promise((r) => setTimeout(r, 5000)); // scenario time: the run goes on with the new writer

    await plc.publish('octopus/m1/set/running/lease-operator', JSON.stringify({ value: false }), { qos: 1 });
    const stopped = await eventually(
      () => store.get('lease').runs.find((r) => r.id === run.id && r.status === 'stopped'),
      'run stopped by the PLC',
      30_000,
    );
    expect(stopped.stopped_by).toBe('plc:m1/running');
    const file = join(store.get('lease').dir, run.file);
    await eventually(() => existsSync(file), 'the run archived', 60_000);
    await new Promise((r) => setTimeout(r, 3000)); // a second start or stop would show up here
    watching = false;
    await watcher;
    expect(store.get('lease').runs).toHaveLength(1);
    expect(most).toBe(1);

    expectRunMatchesRecorder(
      'archive-lease',
      file,
      rec.samples,
      { start: run.start, stop: stopped.stop! },
      ['m1'],
      100,
    );
  }, 300_000);
});
