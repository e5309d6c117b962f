import { createRequire } from 'node:module';
import type ModbusModule from 'modbus-serial';
import type { ModbusOptions } from '../../config/instance-schema.ts';
import type { ModbusArea } from '../../config/profile-schema.ts';

/** The only file that imports modbus-serial: one TCP connection or serial line. */

// modbus-serial is CommonJS with `module.exports = ModbusRTU`; under NodeNext its typed
// default import is the module object, so the constructor is loaded with require.
const ModbusRTU = createRequire(import.meta.url)('modbus-serial') as (typeof ModbusModule)['default'];

export type ModbusFailure =
  { kind: 'exception'; code: number; name: string } | { kind: 'timeout' } | { kind: 'connection'; message: string };

export class ModbusError extends Error {
  constructor(
    readonly failure: ModbusFailure,
    message: string,
  ) {
    super(message);
  }
}

const EXCEPTIONS: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target failed to respond',
};

export function describeFailure(f: ModbusFailure, timeoutMs?: number): string {
  if (f.kind === 'exception') return `modbus exception ${f.code} (${f.name})`;
  if (f.kind === 'timeout') return `timeout after ${timeoutMs ?? '?'} ms`;
  return `connection error: ${f.message}`;
}

function classify(err: unknown): ModbusFailure {
  const e = err as { modbusCode?: number; errno?: string; message?: string; code?: string };
  if (typeof e.modbusCode === 'number')
    return { kind: 'exception', code: e.modbusCode, name: EXCEPTIONS[e.modbusCode] ?? 'unknown exception' };
  if (e.errno === 'ETIMEDOUT' || /timed out/i.test(e.message ?? '')) return { kind: 'timeout' };
  return { kind: 'connection', message: e.message ?? e.code ?? String(err) };
}

export interface ModbusClient {
  readonly open: boolean;
  read(unit: number, area: ModbusArea, address: number, count: number, timeoutMs: number): Promise<number[]>;
  writeCoil(unit: number, address: number, value: boolean, timeoutMs: number): Promise<void>;
  writeRegisters(unit: number, address: number, words: number[], timeoutMs: number): Promise<void>;
  close(): Promise<void>;
}

/** Connects `tcp://host:port` or `rtu:///dev/tty…`; rejects with a ModbusError. */
export async function connectModbus(endpoint: string, opts: ModbusOptions): Promise<ModbusClient> {
  const client = new ModbusRTU();
  try {
    if (endpoint.startsWith('tcp://')) {
      const url = new URL(endpoint);
      await client.connectTCP(url.hostname, { port: Number(url.port || 502) });
    } else {
      const path = endpoint.slice('rtu://'.length);
      await client.connectRTUBuffered(path, {
        baudRate: opts.baud_rate,
        parity: opts.parity,
        dataBits: opts.data_bits,
        stopBits: opts.stop_bits,
      });
    }
  } catch (err) {
    throw new ModbusError(classify(err), `cannot connect to ${endpoint}: ${describeFailure(classify(err))}`);
  }
  const call = async <T>(unit: number, timeoutMs: number, op: () => Promise<T>): Promise<T> => {
    client.setID(unit);
    client.setTimeout(timeoutMs);
    try {
      return await op();
    } catch (err) {
      const f = classify(err);
      throw new ModbusError(f, describeFailure(f, timeoutMs));
    }
  };
  return {
    get open() {
      return client.isOpen;
    },
    read: (unit, area, address, count, timeoutMs) =>
      call(unit, timeoutMs, async () => {
        switch (area) {
          case 'coil':
            return (await client.readCoils(address, count)).data.slice(0, count).map(Number);
          case 'discrete':
            return (await client.readDiscreteInputs(address, count)).data.slice(0, count).map(Number);
          case 'input':
            return (await client.readInputRegisters(address, count)).data;
          case 'holding':
            return (await client.readHoldingRegisters(address, count)).data;
        }
      }),
    writeCoil: (unit, address, value, timeoutMs) =>
      call(unit, timeoutMs, async () => void (await client.writeCoil(address, value))),
    writeRegisters: (unit, address, words, timeoutMs) =>
      call(unit, timeoutMs, async () => {
        if (words.length === 1) await client.writeRegister(address, words[0]!);
        else await client.writeRegisters(address, words);
      }),
    close: () => new Promise<void>((resolve) => client.close(() => resolve())),
  };
}
