/**
 * Our Modbus driver (modbus-serial underneath) against pymodbus as an independent peer:
 * the expected register words are produced by Python's struct module (and checked against
 * pymodbus' BinaryPayloadBuilder), never by our codec.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ModbusChamber } from '../../src/config/instance-schema.ts';
import { ModbusProfile, registerCount, type ModbusArea, type WordOrder } from '../../src/config/profile-schema.ts';
import { createLogger } from '../../src/core/log.ts';
import type { Sample } from '../../src/core/sample.ts';
import { createModbusDriver } from '../../src/drivers/modbus/driver.ts';
import { ModbusLinePool } from '../../src/drivers/modbus/line.ts';
import type { ChamberState, Driver, DriverSink } from '../../src/drivers/types.ts';
import { eventually, freePort } from '../support/ports.ts';
import { startPymodbus, type Pymodbus } from '../support/pymodbus.ts';

class RecordingSink implements DriverSink {
  readonly batches: Sample[][] = [];
  readonly states: Array<{ state: ChamberState; reason?: string; at: number }> = [];
  samples(samples: Sample[]): void {
    this.batches.push(samples);
  }
  status(state: ChamberState, reason?: string): void {
    this.states.push({ state, reason, at: Date.now() });
  }
  all(): Sample[] {
    return this.batches.flat();
  }
  get state(): ChamberState | undefined {
    return this.states.at(-1)?.state;
  }
}

type TagSpec = Record<string, unknown> & { name: string; address: number; type: string };

function profileOf(tags: TagSpec[]): ModbusProfile {
  return ModbusProfile.parse({
    kind: 'modbus',
    vendor: 'test',
    model: 'pymodbus',
    description: 'tags served by pymodbus in the tests',
    addressing: 'zero-based',
    defaults: { area: 'holding', order: 'ABCD' },
    tags: tags.map((t) => ({ description: t.name, ...t })),
  });
}

// Everything a test opens is closed after it, pass or fail.
const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function server(options: Parameters<typeof startPymodbus>[0]): Promise<{ current: Pymodbus }> {
  const ref = { current: await startPymodbus(options) };
  cleanups.push(() => ref.current.stop('SIGKILL'));
  return ref;
}

function pool(): ModbusLinePool {
  const p = new ModbusLinePool();
  cleanups.push(() => p.close());
  return p;
}

/** A pair of linked pseudo-terminals (a null-modem cable): `<dir>/a` ↔ `<dir>/b`. */
async function ptyPair(): Promise<{ a: string; b: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'octopus-rtu-'));
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  const proc: ChildProcess = spawn(
    '/usr/bin/socat',
    ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  cleanups.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  });
  await eventually(
    () => /starting data transfer loop/.test(stderr) && existsSync(a) && existsSync(b),
    `socat pty pair in ${dir} (${stderr})`,
    5000,
    20,
  );
  return { a, b };
}

const FAST = { timeout_ms: 300, retries: 1 };

function driverFor(
  p: ModbusLinePool,
  endpoint: string,
  profile: ModbusProfile,
  o: { id?: string; unit?: number; interval?: number; modbus?: Record<string, unknown> } = {},
): { driver: Driver; sink: RecordingSink } {
  const chamber = ModbusChamber.parse({
    id: o.id ?? 'c1',
    driver: 'modbus',
    profile: 'test-pymodbus',
    endpoint,
    interval_ms: o.interval ?? 250,
    modbus: { unit_id: o.unit ?? 1, ...FAST, ...o.modbus },
  });
  const sink = new RecordingSink();
  const driver = createModbusDriver(
    { chamber, profile, tags: profile.tags },
    { sink, log: createLogger(`test:${chamber.id}`) },
    p,
  );
  cleanups.push(() => driver.stop());
  return { driver, sink };
}

/** The first batch polled after `since` (ts is the poll start, so it saw what was set before). */
async function batchAfter(
  sink: RecordingSink,
  since: number,
  what: string,
  timeoutMs = 10_000,
): Promise<Map<string, Sample>> {
  const batch = await eventually(() => sink.batches.find((b) => b.length > 0 && b[0]!.ts > since), what, timeoutMs, 50);
  return new Map(batch.map((s) => [s.tag, s]));
}

const ORDERS: WordOrder[] = ['ABCD', 'CDAB', 'BADC', 'DCBA'];

describe('Modbus driver against pymodbus', () => {
  it('decodes every type in every byte/word order to the value written (TCP, holding and input registers, coils, discrete inputs)', async () => {
    // Two rounds of values, so that a match cannot come from a stale or zeroed register.
    const numeric: Record<string, [number, number]> = {
      int16: [-12345, 32767],
      uint16: [0xbeef, 1],
      int32: [-123456789, 2147483647],
      uint32: [0x89abcdef, 70000],
      float32: [-1234.5, 1013.25],
      int64: [-1234567890123, -0x12_3456_789a_bcde],
      uint64: [0x12_3456_789a_bcde, 2 ** 53 - 1],
      float64: [-12345.6789, 86400.125],
    };
    const strings: [string, string] = ['GC2-SN-0042', 'Octopus!ok'];
    const STRING_COUNT = 6;
    const BIT = 5;

    interface Slot {
      tag: TagSpec;
      area: ModbusArea;
      expected: [unknown, unknown];
      raw: (round: 0 | 1) => Promise<Array<number | boolean>>;
    }
    const slots: Slot[] = [];
    const next: Record<ModbusArea, number> = { holding: 0, input: 0, coil: 0, discrete: 0 };
    const place = (area: ModbusArea, size: number) => {
      const a = next[area];
      next[area] += size + 1; // a one-register hole between tags (bridged by max_gap)
      return a;
    };
    let py!: Pymodbus;
    ORDERS.forEach((order, i) => {
      const o = order.toLowerCase();
      const regArea: ModbusArea = i % 2 === 0 ? 'holding' : 'input';
      for (const [type, values] of Object.entries(numeric)) {
        const address = place(regArea, registerCount({ type: type as 'int16' }));
        slots.push({
          tag: { name: `${type}_${o}`, area: regArea, address, type, order },
          area: regArea,
          expected: values,
          raw: async (round) => {
            const enc = await py.encode(type, order, values[round]);
            if (enc.pymodbus_words)
              expect(enc.words, `${type} ${order}: struct vs pymodbus BinaryPayloadBuilder`).toEqual(
                enc.pymodbus_words,
              );
            return enc.words;
          },
        });
      }
      slots.push({
        tag: {
          name: `string_${o}`,
          area: regArea,
          address: place(regArea, STRING_COUNT),
          type: 'string',
          count: STRING_COUNT,
          order,
        },
        area: regArea,
        expected: strings,
        raw: async (round) => (await py.encode('string', order, strings[round], STRING_COUNT)).words,
      });
      // Bit 5 set among other set bits, then cleared among other set bits.
      slots.push({
        tag: { name: `bit_${o}`, area: regArea, address: place(regArea, 1), type: 'bool', bit: BIT, order },
        area: regArea,
        expected: [true, false],
        raw: async (round) => [round === 0 ? 0x8421 | (1 << BIT) : 0xffff & ~(1 << BIT)],
      });
      for (const area of ['coil', 'discrete'] as const) {
        for (const k of [0, 1]) {
          const first = (i + k) % 2 === 0;
          slots.push({
            tag: { name: `${area}_${o}_${k}`, area, address: place(area, 1), type: 'bool', order },
            area,
            expected: [first, !first],
            raw: async (round) => [round === 0 ? first : !first],
          });
        }
      }
    });

    const port = await freePort();
    py = (await server({ port, units: [1] })).current;
    const profile = profileOf(slots.map((s) => s.tag));
    const { driver, sink } = driverFor(pool(), `tcp://127.0.0.1:${port}`, profile, { interval: 200 });

    for (const round of [0, 1] as const) {
      for (const s of slots) await py.set(1, s.area, s.tag.address, await s.raw(round));
      const setAt = Date.now();
      if (round === 0) await driver.start();
      const batch = await batchAfter(sink, setAt, `a poll after writing round ${round}`);
      const got = Object.fromEntries(
        slots.map((s) => [
          s.tag.name,
          batch.get(s.tag.name)?.q === 'good' ? batch.get(s.tag.name)!.value : batch.get(s.tag.name),
        ]),
      );
      const want = Object.fromEntries(slots.map((s) => [s.tag.name, s.expected[round]]));
      expect(got).toEqual(want);
    }
    expect(slots.length).toBe(4 * (8 + 1 + 1 + 4));
    // Merged reads: one request per register area per order pair, one per bit area.
    expect(driver.health()).toMatchObject({ state: 'online', requestsPerCycle: 4 });
  });

  it('a unit that stops answering does not stall its neighbour on the same TCP connection', async () => {
    const port = await freePort();
    const py = (await server({ port, units: [1, 2] })).current;
    const profile = profileOf([
      { name: 'air_temperature', area: 'input', address: 0, type: 'float32' },
      { name: 'co2', area: 'holding', address: 10, type: 'uint16' },
    ]);
    for (const unit of [1, 2]) {
      await py.set(unit, 'input', 0, [0x41cc, 0x0000]); // 25.5
      await py.set(unit, 'holding', 10, [400 + unit]);
    }
    const interval = 250;
    const p = pool();
    const one = driverFor(p, `tcp://127.0.0.1:${port}`, profile, { id: 'c1', unit: 1, interval });
    const two = driverFor(p, `tcp://127.0.0.1:${port}`, profile, { id: 'c2', unit: 2, interval });
    await Promise.all([one.driver.start(), two.driver.start()]);
    expect(one.sink.all().find((s) => s.tag === 'co2')).toMatchObject({ q: 'good', value: 401 });
    expect(two.sink.all().find((s) => s.tag === 'co2')).toMatchObject({ q: 'good', value: 402 });

    await py.mute(2);
    const mutedAt = Date.now();
    await eventually(() => two.sink.state === 'offline', 'unit 2 offline after it stopped answering', 5000);
    const bad = two.sink.all().filter((s) => s.ts >= mutedAt - interval && s.q === 'bad');
    expect(bad.length).toBeGreaterThanOrEqual(2);
    expect(bad[0]!.reason).toMatch(/timeout after 300 ms reading (input 0\.\.1|holding 10\.\.10) unit 2/);
    expect(two.sink.states.at(-1)?.reason).toMatch(/timeout|not answering/);

    // Once unit 2 is marked down, unit 1 keeps (nearly) its cadence: count its cycles.
    await new Promise((r) => setTimeout(r, 500));
    const windowStart = Date.now();
    const windowMs = 3000;
    await new Promise((r) => setTimeout(r, windowMs));
    const cycles = one.sink.batches.filter((b) => b[0]!.ts >= windowStart && b[0]!.ts < windowStart + windowMs);
    const nominal = windowMs / interval;
    console.log(`unit 1 with unit 2 muted: ${cycles.length} cycles in ${windowMs} ms (nominal ${nominal})`);
    expect(cycles.length).toBeGreaterThanOrEqual(Math.floor(nominal * 0.6));
    expect(cycles.flat().every((s) => s.q === 'good')).toBe(true);
    expect(one.sink.all().filter((s) => s.ts >= mutedAt && s.q === 'bad')).toEqual([]);
    expect(one.sink.state).toBe('online');
    const twoInWindow = two.sink.batches
      .filter((b) => b[0]!.ts >= windowStart && b[0]!.ts < windowStart + windowMs)
      .flat();
    expect(twoInWindow.length).toBeGreaterThan(0);
    expect(twoInWindow.every((s) => s.q === 'bad' && /timeout|not answering/.test(s.reason ?? ''))).toBe(true);

    // It is probed now and then, and comes back once it answers again.
    await py.unmute(2);
    const unmutedAt = Date.now();
    await eventually(
      () => two.sink.all().some((s) => s.ts > unmutedAt && s.q === 'good'),
      'unit 2 answering again',
      20_000,
    );
    expect(two.sink.state).toBe('online');
  });

  it('polling resumes after the server process is killed and started again on the same port, without recreating the driver', async () => {
    const port = await freePort();
    const ref = await server({ port, units: [1] });
    const profile = profileOf([
      { name: 'co2', address: 0, type: 'uint16' },
      { name: 'runtime', address: 2, type: 'uint32', order: 'CDAB' },
    ]);
    await ref.current.set(1, 'holding', 0, [415, 0, 0x5678, 0x1234]);
    const { driver, sink } = driverFor(pool(), `tcp://127.0.0.1:${port}`, profile, { interval: 200 });
    await driver.start();
    await eventually(
      () => sink.all().filter((s) => s.tag === 'runtime' && s.q === 'good' && s.value === 0x12345678).length >= 2,
      'values before the kill',
    );

    await ref.current.stop('SIGKILL');
    const killedAt = Date.now();
    await eventually(() => sink.state === 'offline', 'offline after the kill', 5000);
    expect(sink.states.at(-1)?.reason).toMatch(/connection|closed|not connected|ECONNREFUSED|Port Not Open/i);
    expect(sink.all().some((s) => s.ts >= killedAt && s.q === 'bad' && s.tag === 'co2')).toBe(true);
    // Stay down long enough for a few failed reconnect attempts.
    await new Promise((r) => setTimeout(r, 2000));

    ref.current = await ref.current.restart();
    await ref.current.set(1, 'holding', 0, [777, 0, 0x0001, 0x0000]);
    const restartedAt = Date.now();
    await eventually(
      () => sink.all().some((s) => s.ts > restartedAt && s.tag === 'co2' && s.q === 'good' && s.value === 777),
      'good samples from the restarted server',
      15_000,
    );
    const recoveredMs = Date.now() - restartedAt;
    const runtime = sink
      .all()
      .filter((s) => s.tag === 'runtime' && s.ts > restartedAt && s.q === 'good')
      .at(-1);
    expect(runtime?.value).toBe(1); // CDAB: low word first
    expect(sink.state).toBe('online');
    expect(driver.health().reconnects).toBeGreaterThanOrEqual(1);
    console.log(`Modbus restart: good samples ${recoveredMs} ms after the server restarted`);
  });

  it('writes land: coil (FC5), single register (FC6), float32 and int32 setpoints (FC16), scaled int16, a bit of a register; out-of-range writes are refused', async () => {
    const port = await freePort();
    const py = (await server({ port, units: [1] })).current;
    const profile = profileOf([
      { name: 'running', area: 'coil', address: 3, type: 'bool', writable: true, role: 'command' },
      { name: 'co2_setpoint', address: 10, type: 'uint16', writable: true, min: 200, max: 2000 },
      { name: 'air_temperature_setpoint', address: 20, type: 'float32', writable: true, min: 5, max: 40 },
      { name: 'programme_seconds', address: 30, type: 'int32', order: 'CDAB', writable: true },
      { name: 'humidity_setpoint', address: 40, type: 'int16', scale: 0.1, writable: true, min: -10, max: 95 },
      { name: 'door_lock', address: 50, type: 'bool', bit: 3, writable: true },
      { name: 'raw_word', address: 60, type: 'uint16', writable: true },
      { name: 'co2', address: 70, type: 'uint16' },
    ]);
    await py.set(1, 'holding', 50, [0x8001]); // other bits of the register must survive
    const { driver, sink } = driverFor(pool(), `tcp://127.0.0.1:${port}`, profile);
    const words = (address: number, count = 1) => py.get(1, 'holding', address, count);
    const float32 = (w: number[]) => {
      const b = Buffer.alloc(4);
      b.writeUInt16BE(w[0]!, 0);
      b.writeUInt16BE(w[1]!, 2);
      return b.readFloatBE(0);
    };
    await py.requests();

    await driver.write('running', true);
    expect(await py.get(1, 'coil', 3)).toEqual([1]);
    await driver.write('co2_setpoint', 800);
    expect(await words(10)).toEqual([800]);
    await driver.write('air_temperature_setpoint', 21.1);
    expect(float32(await words(20, 2))).toBe(Math.fround(21.1));
    await driver.write('programme_seconds', -70000); // 0xFFFEEE90, low word first
    expect(await words(30, 2)).toEqual([0xee90, 0xfffe]);
    await driver.write('humidity_setpoint', 65.5);
    expect(await words(40)).toEqual([655]);
    await driver.write('humidity_setpoint', -5.5);
    expect(await words(40)).toEqual([0x10000 - 55]);
    await driver.write('door_lock', true);
    expect(await words(50)).toEqual([0x8009]);
    await driver.write('door_lock', 'false');
    expect(await words(50)).toEqual([0x8001]);
    await driver.write('running', 0);
    expect(await py.get(1, 'coil', 3)).toEqual([0]);

    // The function codes pymodbus saw: FC5 for the coil, FC6 for one register, FC16 for more, FC3+FC6 for the bit.
    expect(await py.requests()).toEqual([
      [1, 5, 3],
      [1, 6, 10],
      [1, 16, 20],
      [1, 16, 30],
      [1, 6, 40],
      [1, 6, 40],
      [1, 3, 50],
      [1, 6, 50],
      [1, 3, 50],
      [1, 6, 50],
      [1, 5, 3],
    ]);

    // Refused before anything reaches the wire; the registers keep their values.
    await expect(driver.write('air_temperature_setpoint', 45)).rejects.toThrow(
      /air_temperature_setpoint = 45 is outside 5\.\.40/,
    );
    await expect(driver.write('co2_setpoint', 100)).rejects.toThrow(/outside 200\.\.2000/);
    await expect(driver.write('raw_word', 70000)).rejects.toThrow(/70000 is out of range for uint16/);
    await expect(driver.write('raw_word', -1)).rejects.toThrow(/out of range for uint16/);
    await expect(driver.write('co2', 400)).rejects.toThrow(/read-only/);
    await expect(driver.write('door_lock', 2)).rejects.toThrow(/is a bool/);
    expect(await py.requests()).toEqual([]);
    expect(float32(await words(20, 2))).toBe(Math.fround(21.1));
    expect(await words(10)).toEqual([800]);

    // And the driver reads back what it wrote, in engineering units.
    const startedAt = Date.now() - 1;
    await driver.start();
    const batch = await batchAfter(sink, startedAt, 'a poll after the writes');
    expect(Object.fromEntries([...batch].map(([k, s]) => [k, s.value]))).toEqual({
      running: false,
      co2_setpoint: 800,
      air_temperature_setpoint: 21.1,
      programme_seconds: -70000,
      humidity_setpoint: -5.5,
      door_lock: false,
      raw_word: 0,
      co2: 0,
    });
  });

  it('speaks Modbus RTU over a serial line (socat pty pair): two units share the line, reads, writes, a silent unit times out alone', async () => {
    const { a, b } = await ptyPair();
    const py = (await server({ rtu: a, baud: 19200, units: [1, 3] })).current;
    const profile = profileOf([
      { name: 'air_temperature', area: 'input', address: 0, type: 'float32', order: 'CDAB' },
      { name: 'relative_humidity', area: 'holding', address: 10, type: 'int16', scale: 0.1 },
      { name: 'serial_number', area: 'input', address: 4, type: 'string', count: 4 },
      {
        name: 'air_temperature_setpoint',
        area: 'holding',
        address: 20,
        type: 'float32',
        order: 'CDAB',
        writable: true,
        min: 5,
        max: 40,
      },
      { name: 'running', area: 'coil', address: 0, type: 'bool', writable: true },
    ]);
    for (const [unit, temp, rh, sn] of [
      [1, 21.5, 655, 'RTU-0001'],
      [3, -4.25, 123, 'RTU-0003'],
    ] as const) {
      await py.set(unit, 'input', 0, (await py.encode('float32', 'CDAB', temp)).words);
      await py.set(unit, 'input', 4, (await py.encode('string', 'ABCD', sn, 4)).words);
      await py.set(unit, 'holding', 10, [rh]);
    }
    const endpoint = `rtu://${b}`;
    const p = pool();
    const modbus = { baud_rate: 19200 };
    const one = driverFor(p, endpoint, profile, { id: 'c1', unit: 1, interval: 300, modbus });
    const three = driverFor(p, endpoint, profile, { id: 'c3', unit: 3, interval: 300, modbus });
    await Promise.all([one.driver.start(), three.driver.start()]);
    const values = (sink: RecordingSink) =>
      Object.fromEntries(sink.batches[0]!.map((s) => [s.tag, s.q === 'good' ? s.value : s.reason]));
    expect(values(one.sink)).toEqual({
      air_temperature: 21.5,
      relative_humidity: 65.5,
      serial_number: 'RTU-0001',
      air_temperature_setpoint: 0,
      running: false,
    });
    expect(values(three.sink)).toEqual({
      air_temperature: -4.25,
      relative_humidity: 12.3,
      serial_number: 'RTU-0003',
      air_temperature_setpoint: 0,
      running: false,
    });

    await py.requests();
    await three.driver.write('air_temperature_setpoint', 18.5);
    await one.driver.write('running', true);
    expect(await py.get(3, 'holding', 20, 2)).toEqual([0x0000, 0x4194]); // 18.5 = 0x41940000, low word first
    expect(await py.get(1, 'holding', 20, 2)).toEqual([0, 0]);
    expect(await py.get(1, 'coil', 0)).toEqual([1]);
    expect(await py.get(3, 'coil', 0)).toEqual([0]);
    expect((await py.requests()).filter(([, fc]) => fc === 5 || fc === 16)).toEqual([
      [3, 16, 20],
      [1, 5, 0],
    ]);
    const wroteAt = Date.now();
    await eventually(
      () => three.sink.all().some((s) => s.ts > wroteAt && s.tag === 'air_temperature_setpoint' && s.value === 18.5),
      'unit 3 reads its new setpoint',
      5000,
    );
    await eventually(
      () => one.sink.all().some((s) => s.ts > wroteAt && s.tag === 'running' && s.value === true),
      'unit 1 reads its coil',
      5000,
    );

    await py.mute(3);
    const mutedAt = Date.now();
    await eventually(() => three.sink.state === 'offline', 'unit 3 offline once silent', 5000);
    expect(three.sink.states.at(-1)?.reason).toMatch(/timeout after 300 ms|not answering/);
    await new Promise((r) => setTimeout(r, 1500));
    const late = one.sink.batches.filter((batch) => batch[0]!.ts > mutedAt + 1000);
    expect(late.length).toBeGreaterThanOrEqual(2);
    expect(late.flat().every((s) => s.q === 'good')).toBe(true);
    expect(one.sink.state).toBe('online');
  });
});
