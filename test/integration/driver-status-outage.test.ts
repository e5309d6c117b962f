/**
 * During an outage a chamber's status (the retained MQTT status topic, fed by the driver's
 * sink) changes only when the state or its reason does — no countdowns, no counters — and
 * the driver logs its retries with backoff, not one line per attempt. node-opcua's own
 * lines go through our logger (and OCTOPUS_LOG_LEVEL), never straight to the console.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { eventually, freePort } from '../support/ports.ts';
import { makeDriver, RecordingSink, TEST_NS, testProfile } from '../support/opcua-fixtures.ts';
import { startOpcuaServer } from '../../src/sim/opcua-server.ts';
import { routeOpcuaLogs } from '../../src/drivers/opcua/client.ts';
import { createModbusDriver } from '../../src/drivers/modbus/driver.ts';
import { ModbusLinePool } from '../../src/drivers/modbus/line.ts';
import { ModbusChamber } from '../../src/config/instance-schema.ts';
import { ModbusProfile } from '../../src/config/profile-schema.ts';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import { createLogger, type Logger } from '../../src/core/log.ts';
import type { Driver } from '../../src/drivers/types.ts';

/** A logger that keeps its lines (level, component, message) instead of printing them. */
function capture(): { log: Logger; lines: Array<{ level: string; component: string; msg: string }> } {
  const lines: Array<{ level: string; component: string; msg: string }> = [];
  const make = (component: string): Logger => ({
    debug: (msg) => lines.push({ level: 'debug', component, msg }),
    info: (msg) => lines.push({ level: 'info', component, msg }),
    warn: (msg) => lines.push({ level: 'warn', component, msg }),
    error: (msg) => lines.push({ level: 'error', component, msg }),
    child: (c) => make(`${component}:${c}`),
  });
  return { log: make('test'), lines };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  vi.restoreAllMocks();
  routeOpcuaLogs(createLogger('node-opcua'));
});

describe('a chamber during an outage', () => {
  it(
    'OPC UA: one status for the whole outage, retries logged at 1, 2, 4, 8… attempts, node-opcua lines only through the logger',
    { timeout: 120_000 },
    async () => {
      const consoleLines: unknown[][] = [];
      vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void consoleLines.push(args));
      const opcua = capture();
      routeOpcuaLogs(opcua.log);
      const { log, lines } = capture();
      const server = await startOpcuaServer({
        port: await freePort(),
        namespaceUri: TEST_NS,
        profile: { profile: testProfile, folder: 'Chamber' },
      });
      const { driver, sink } = makeDriver(server.endpoint, {}, undefined, 200, { log });
      cleanups.push(() => driver.stop());
      await driver.start();
      expect(sink.state).toBe('online');
      await server.stop();
      // Backoff from 0.5 s up to 5 s: attempt 4 comes a few seconds in.
      await eventually(() => lines.some((l) => /attempt 4;/.test(l.msg)), 'four failed attempts', 60_000);
      const outage = sink.states.slice(1);
      // Lost, then why it cannot reconnect — and nothing more however many attempts follow.
      expect(outage).toEqual([
        { state: 'offline', reason: expect.stringMatching(/lost|closed/) },
        { state: 'offline', reason: expect.stringContaining(`OPC UA connect to ${server.endpoint} failed`) },
      ]);
      const logged = lines.filter((l) => /connect failed/.test(l.msg)).map((l) => /attempt (\d+);/.exec(l.msg)?.[1]);
      expect(logged.slice(0, 3)).toEqual(['1', '2', '4']);
      // node-opcua said something about the failures, through our logger only.
      expect(opcua.lines.length).toBeGreaterThan(0);
      // eslint-disable-next-line no-control-regex -- proves no ANSI colour escape reaches the log
      expect(opcua.lines.every((l) => !/\u001b\[/.test(l.msg) && !l.msg.includes('\n'))).toBe(true);
      expect(consoleLines).toEqual([]);
    },
  );

  it(
    'Modbus: the status stays the same while the device is unreachable (no countdown in the reason)',
    { timeout: 120_000 },
    async () => {
      const profile = ModbusProfile.parse(
        parse(readFileSync(join(PROJECT_ROOT, 'drivers/modbus/phytolab-gc2.yaml'), 'utf8')),
      );
      const chamber = ModbusChamber.parse({
        id: 'm1',
        driver: 'modbus',
        profile: 'phytolab-gc2',
        endpoint: `tcp://127.0.0.1:${await freePort()}`,
        interval_ms: 200,
        modbus: { timeout_ms: 300, retries: 0 },
      });
      const pool = new ModbusLinePool();
      const sink = new RecordingSink();
      const driver: Driver = createModbusDriver(
        { chamber, profile, tags: profile.tags },
        { sink, log: capture().log },
        pool,
      );
      cleanups.push(async () => {
        await driver.stop();
        await pool.close();
      });
      await driver.start();
      // 20 poll cycles (4 s at 200 ms) span several reconnect attempts (backoff from 1 s).
      await eventually(() => sink.batches.length >= 20, '20 poll cycles', 60_000);
      expect(sink.states).toHaveLength(1);
      expect(sink.states[0]!.state).toBe('offline');
      expect(sink.states[0]!.reason).not.toMatch(/next (attempt|probe) in/);
    },
  );
});
