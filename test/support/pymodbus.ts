/**
 * Runs test/support/pymodbus_server.py (pymodbus as an independent Modbus peer) as a child
 * process and talks to it over JSON lines on stdin/stdout. Debian's python3-pymodbus only
 * imports under the system interpreter, so it is always /usr/bin/python3.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT } from '../../src/config/profiles.ts';
import type { ModbusArea } from '../../src/config/profile-schema.ts';

export const SYSTEM_PYTHON = '/usr/bin/python3';
const SCRIPT = join(PROJECT_ROOT, 'test/support/pymodbus_server.py');

export interface PymodbusOptions {
  /** TCP port to listen on (127.0.0.1); omit for an RTU-only server. */
  port?: number;
  units: number[];
  /** Serial device of an RTU slave (e.g. one end of a socat pty pair). */
  rtu?: string;
  baud?: number;
}

export interface Encoded {
  words: number[];
  /** The same value through pymodbus' BinaryPayloadBuilder (multi-register numbers only). */
  pymodbus_words?: number[];
}

export interface Pymodbus {
  readonly options: PymodbusOptions;
  readonly proc: ChildProcess;
  set(unit: number, area: ModbusArea, address: number, values: Array<number | boolean>): Promise<void>;
  get(unit: number, area: ModbusArea, address: number, count?: number): Promise<number[]>;
  /** The unit stops answering (its requests are dropped); the others keep answering. */
  mute(unit: number): Promise<void>;
  unmute(unit: number): Promise<void>;
  /** Requests seen since the previous call, as [unit, function code, address]. */
  requests(): Promise<Array<[number, number, number | null]>>;
  encode(type: string, order: string, value: number | string, count?: number): Promise<Encoded>;
  /** Terminates the process (SIGTERM, then SIGKILL after 2 s); resolves once it is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** A fresh process with the same options (same port, empty registers). */
  restart(): Promise<Pymodbus>;
}

const running = new Set<ChildProcess>();
// Never leave a server behind, whatever way the test process ends.
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export function startPymodbus(options: PymodbusOptions, timeoutMs = 15_000): Promise<Pymodbus> {
  const args = [SCRIPT, '--units', options.units.join(',')];
  if (options.port) args.push('--port', String(options.port));
  if (options.rtu) args.push('--rtu', options.rtu, '--baud', String(options.baud ?? 19200));
  const proc = spawn(SYSTEM_PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(proc);
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else proc.once('exit', () => resolve());
  });
  void exited.then(() => running.delete(proc));
  proc.stdin!.on('error', () => {}); // EPIPE once the process is gone

  let nextId = 1;
  const pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  let onReady: ((line: Record<string, unknown>) => void) | undefined;
  const lines = createInterface({ input: proc.stdout! });
  lines.on('line', (text) => {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if (msg.event === 'ready') return onReady?.(msg);
    const p = pending.get(msg.id as number);
    if (!p) return;
    pending.delete(msg.id as number);
    if (msg.ok) p.resolve(msg);
    else p.reject(new Error(`pymodbus: ${String(msg.error)}`));
  });
  void exited.then(() => {
    for (const p of pending.values()) p.reject(new Error(`pymodbus server exited; stderr: ${stderr}`));
    pending.clear();
  });

  const call = (op: string, body: Record<string, unknown> = {}): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      if (proc.exitCode !== null || proc.signalCode !== null)
        return reject(new Error('pymodbus server is not running'));
      const id = nextId++;
      pending.set(id, { resolve, reject });
      proc.stdin!.write(`${JSON.stringify({ id, op, ...body })}\n`);
    });

  const server: Pymodbus = {
    options,
    proc,
    set: async (unit, area, address, values) => void (await call('set', { unit, area, address, values })),
    get: async (unit, area, address, count = 1) =>
      (await call('get', { unit, area, address, count })).values as number[],
    mute: async (unit) => void (await call('mute', { unit })),
    unmute: async (unit) => void (await call('unmute', { unit })),
    requests: async () => (await call('requests')).requests as Array<[number, number, number | null]>,
    encode: async (type, order, value, count = 0) =>
      (await call('encode', { type, order, value, count })) as unknown as Encoded,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        const timer = setTimeout(() => proc.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(timer);
      }
      lines.close();
    },
    restart: async () => {
      await server.stop();
      return startPymodbus(options, timeoutMs);
    },
  };

  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(
        new Error(`pymodbus server (${args.slice(1).join(' ')}) not ready after ${timeoutMs} ms; stderr: ${stderr}`),
      );
    }, timeoutMs);
    onReady = () => {
      clearTimeout(timer);
      resolve(server);
    };
    proc.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${SYSTEM_PYTHON} (Debian python3-pymodbus is needed): ${err.message}`));
    });
    proc.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`pymodbus server exited (${code ?? signal}) before ready; stderr: ${stderr}`));
    });
  });
}
