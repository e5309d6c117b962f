/**
 * Alarms with two collectors: two `octopus collect` share one data folder behind real
 * Mosquitto, fed by an `octopus start` gateway reading a simulated PLC served by this
 * test (so it can inject faults). Only the one holding the archive lease publishes; the
 * other evaluates silently and, when the writer is killed, takes over without raising
 * the active alarm a second time, and clears it when the fault ends.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AlarmEvent } from '../../src/alarms/model.ts';
import { connectMqtt } from '../../src/bus/mqtt-client.ts';
import { DataMessage } from '../../src/bus/payload.ts';
import { loadConfig } from '../../src/config/loader.ts';
import { createLogger } from '../../src/core/log.ts';
import { startSimulator } from '../../src/sim/simulator.ts';
import { startCollect, startOctopus } from '../support/cli.ts';
import { cleanScratch, scratch } from '../support/collector-fixtures.ts';
import { Mosquitto } from '../support/mosquitto.ts';
import { eventually, freePort } from '../support/ports.ts';

const cleanups: Array<() => unknown> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanScratch();
});

describe('two collectors, one alarm publisher', () => {
  it('the lease holder publishes once; the standby takes over warm after a kill, adopts the alarm and clears it', async () => {
    const mosquitto = await Mosquitto.start();
    cleanups.push(() => mosquitto.close());
    const dir = scratch('octopus-alarm-collectors-');
    const data = join(dir, 'shared-data');
    const modbus = await freePort();
    const chamber = `chambers:\n  - { id: m1, name: Modbus, driver: modbus, profile: climatec-ch400, endpoint: "tcp://127.0.0.1:${modbus}", interval_ms: 400, modbus: { unit_id: 2 } }\n`;
    mkdirSync(join(dir, 'gw'));
    const gwConfig = join(dir, 'gw', 'lab.yaml');
    writeFileSync(
      gwConfig,
      `gateway: { id: gw }\ndata_dir: ${JSON.stringify(join(dir, 'gw', 'data'))}\nsimulator: { enabled: false }\nmqtt: { url: ${JSON.stringify(mosquitto.url)} }\nhttp: { port: ${await freePort()}, host: 127.0.0.1 }\ncollector: { enabled: false }\n${chamber}`,
    );
    const sim = await startSimulator(
      loadConfig(gwConfig, {
        ...process.env,
        OCTOPUS_CONFIG: '',
        OCTOPUS_MQTT_URL: '',
        OCTOPUS_DATA_DIR: '',
        OCTOPUS_HTTP_PORT: '',
      }),
      createLogger('sim'),
    );
    cleanups.push(() => sim.stop());
    sim.faults.quiet('m1');

    const ports: number[] = [];
    const procs = [];
    for (let i = 0; i < 2; i++) {
      ports.push(await freePort());
      mkdirSync(join(dir, `c${i}`));
      const config = join(dir, `c${i}`, 'lab.yaml');
      writeFileSync(
        config,
        `gateway: { id: col${i} }\ndata_dir: ${JSON.stringify(data)}\nmqtt: { url: ${JSON.stringify(mosquitto.url)} }\nhttp: { host: 127.0.0.1 }\ncollector: { client_id: alarm-col-${i}, http_port: ${ports[i]} }\nexperiments: { lease_ttl_ms: 2000 }\nalarms: { evaluate_interval_ms: 200 }\n${chamber}`,
      );
      const { proc } = await startCollect(config);
      cleanups.push(() => proc.kill('SIGKILL'));
      procs.push(proc);
    }
    const events: AlarmEvent[] = [];
    let newest = 0;
    const obs = connectMqtt({ url: mosquitto.url, clientId: 'alarm-observer' });
    cleanups.push(() => obs.end());
    obs.on('message', (topic, payload) => {
      if (topic === 'octopus/alarms/event') events.push(AlarmEvent.parse(JSON.parse(payload.toString())));
      else if (topic.endsWith('/data'))
        for (const s of DataMessage.parse(JSON.parse(payload.toString())).samples) newest = Math.max(newest, s.ts);
    });
    await eventually(() => obs.connected, 'observer connected');
    await obs.subscribe(['octopus/alarms/event', 'octopus/+/data'], 1);
    const gw = await startOctopus(gwConfig);
    cleanups.push(() => gw.stop('SIGKILL'));

    const alarmsOf = async (i: number) => {
      try {
        const h = (await (await fetch(`http://127.0.0.1:${ports[i]}/api/health`)).json()) as {
          sinks: Record<string, { state: string; active?: number }>;
        };
        return h.sinks.alarms;
      } catch {
        return undefined;
      }
    };
    const roles = async () => (await Promise.all([0, 1].map(alarmsOf))).map((a) => a?.state);
    await eventually(
      async () => (await roles()).sort().join() === 'standby,writer',
      'one writer and one standby',
      30_000,
    );
    await eventually(() => newest > 0, 'data flowing', 30_000);

    sim.faults.plcAlarm('m1', true);
    const raised = await eventually(
      () => events.find((e) => e.event === 'raised' && e.alarm.key === 'm1/plc_alarm/alarm_active'),
      'plc_alarm raised',
      30_000,
    );
    // Both evaluate: the standby knows the alarm too (warm), but only the writer published it.
    await eventually(
      async () => (await Promise.all([0, 1].map(alarmsOf))).every((a) => a?.active && a.active >= 1),
      'both collectors see the alarm',
      20_000,
    );
    const after = raised.alarm.raised_at + 2000;
    await eventually(() => newest > after, 'data after the raise', 20_000);
    expect(events.filter((e) => e.event === 'raised' && e.alarm.key === 'm1/plc_alarm/alarm_active')).toHaveLength(1);

    const writer = (await roles()).indexOf('writer');
    procs[writer]!.kill('SIGKILL');
    const other = 1 - writer;
    await eventually(async () => (await alarmsOf(other))?.state === 'writer', 'the standby takes over', 30_000);
    const takeover = Date.now();
    await eventually(() => newest > takeover + 2000, 'data after the takeover', 20_000);
    expect(events.filter((e) => e.event === 'raised' && e.alarm.key === 'm1/plc_alarm/alarm_active')).toHaveLength(1);

    sim.faults.plcAlarm('m1', false);
    const cleared = await eventually(
      () => events.find((e) => e.event === 'cleared' && e.alarm.id === raised.alarm.id),
      'cleared by the new writer (same alarm id)',
      30_000,
    );
    expect(cleared.alarm.key).toBe('m1/plc_alarm/alarm_active');
  }, 180_000);
});
