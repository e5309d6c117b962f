/**
 * The simulator's Modbus TCP server, spoken to with raw MBAP frames (no Modbus library),
 * so the peer our driver benchmarks and demos run against is itself checked against the
 * protocol: framing across and within TCP chunks, every function code, exceptions, and
 * silent units.
 */
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startModbusServer, type RunningModbusServer, type WriteEvent } from '../../src/sim/modbus-server.ts';

let server: RunningModbusServer;
let sock: Socket;
const writes: WriteEvent[] = [];
let pending: Buffer = Buffer.alloc(0);
const waiters: Array<() => void> = [];

beforeAll(async () => {
  server = await startModbusServer({ port: 0, host: '127.0.0.1' });
  const u1 = server.unit(1);
  u1.holding.set([0x41c8, 0x0000, 7, 65535], 100);
  u1.input.set([1, 2, 3], 0);
  u1.coil.set([1, 0, 1, 1, 0, 0, 0, 0, 1], 0);
  u1.discrete.set([0, 1], 10);
  server.unit(2);
  server.onWrite((e) => writes.push(e));
  sock = connect(server.port, '127.0.0.1');
  sock.on('data', (b: Buffer) => {
    pending = Buffer.concat([pending, b]);
    waiters.splice(0).forEach((w) => w());
  });
  await new Promise((r) => sock.once('connect', r));
});
afterAll(async () => {
  sock.destroy();
  await server.close();
});

let tid = 0;
const frame = (unit: number, pdu: number[]): { tid: number; bytes: Buffer } => {
  tid = (tid + 1) & 0xffff;
  const b = Buffer.alloc(7 + pdu.length);
  b.writeUInt16BE(tid, 0);
  b.writeUInt16BE(0, 2);
  b.writeUInt16BE(pdu.length + 1, 4);
  b[6] = unit;
  Buffer.from(pdu).copy(b, 7);
  return { tid, bytes: b };
};

/** Next complete response frame: [transaction id, unit, PDU bytes]. */
async function response(timeoutMs = 1000): Promise<{ tid: number; unit: number; pdu: number[] }> {
  const deadline = Date.now() + timeoutMs;
  while (pending.length < 7 || pending.length < 6 + pending.readUInt16BE(4)) {
    if (Date.now() > deadline) throw new Error('no response');
    await new Promise<void>((r) => {
      waiters.push(r);
      setTimeout(r, 50);
    });
  }
  const len = pending.readUInt16BE(4);
  const out = { tid: pending.readUInt16BE(0), unit: pending[6]!, pdu: [...pending.subarray(7, 6 + len)] };
  pending = pending.subarray(6 + len);
  return out;
}

async function ask(unit: number, pdu: number[]) {
  const f = frame(unit, pdu);
  sock.write(f.bytes);
  const r = await response();
  expect(r.tid).toBe(f.tid);
  expect(r.unit).toBe(unit);
  return r.pdu;
}

describe('the simulator Modbus TCP server', () => {
  it('reads holding (FC3) and input (FC4) registers big-endian', async () => {
    expect(await ask(1, [3, 0, 100, 0, 4])).toEqual([3, 8, 0x41, 0xc8, 0, 0, 0, 7, 0xff, 0xff]);
    expect(await ask(1, [4, 0, 0, 0, 3])).toEqual([4, 6, 0, 1, 0, 2, 0, 3]);
  });

  it('packs coils (FC1) and discrete inputs (FC2) least significant bit first', async () => {
    expect(await ask(1, [1, 0, 0, 0, 9])).toEqual([1, 2, 0b00001101, 0b00000001]);
    expect(await ask(1, [2, 0, 10, 0, 2])).toEqual([2, 1, 0b10]);
  });

  it('writes a coil (FC5), a register (FC6) and registers (FC16), echoing the request and reporting the write', async () => {
    expect(await ask(1, [5, 0, 3, 0x00, 0x00])).toEqual([5, 0, 3, 0, 0]);
    expect(server.unit(1).coil[3]).toBe(0);
    expect(await ask(1, [6, 0, 200, 0x12, 0x34])).toEqual([6, 0, 200, 0x12, 0x34]);
    expect(await ask(1, [16, 0, 201, 0, 2, 4, 0xab, 0xcd, 0x00, 0x01])).toEqual([16, 0, 201, 0, 2]);
    expect(Array.from(server.unit(1).holding.subarray(200, 203))).toEqual([0x1234, 0xabcd, 1]);
    expect(writes).toEqual([
      { unit: 1, area: 'coil', address: 3, count: 1 },
      { unit: 1, area: 'holding', address: 200, count: 1 },
      { unit: 1, area: 'holding', address: 201, count: 2 },
    ]);
  });

  it('answers exceptions: 1 for an unknown function, 3 for a bad quantity, 2 past the last address', async () => {
    expect(await ask(1, [0x2b, 0, 0, 0, 1])).toEqual([0xab, 1]);
    expect(await ask(1, [3, 0, 0, 0, 126])).toEqual([0x83, 3]);
    expect(await ask(1, [3, 0xff, 0xff, 0, 2])).toEqual([0x83, 2]);
  });

  it('handles frames split across TCP chunks and several frames in one chunk, in order', async () => {
    const a = frame(1, [4, 0, 0, 0, 1]);
    const b = frame(1, [4, 0, 1, 0, 1]);
    const c = frame(1, [4, 0, 2, 0, 1]);
    const all = Buffer.concat([a.bytes, b.bytes, c.bytes]);
    sock.write(all.subarray(0, 5));
    await new Promise((r) => setTimeout(r, 30));
    sock.write(all.subarray(5, 20));
    await new Promise((r) => setTimeout(r, 30));
    sock.write(all.subarray(20));
    const got = [await response(), await response(), await response()];
    expect(got.map((r) => [r.tid, r.pdu[3]])).toEqual([
      [a.tid, 1],
      [b.tid, 2],
      [c.tid, 3],
    ]);
  });

  it('gives no answer for a silenced or unknown unit, and answers the others meanwhile', async () => {
    server.setSilent(2, true);
    sock.write(frame(2, [3, 0, 0, 0, 1]).bytes);
    sock.write(frame(9, [3, 0, 0, 0, 1]).bytes);
    expect(await ask(1, [4, 0, 0, 0, 1])).toEqual([4, 2, 0, 1]);
    await expect(response(300)).rejects.toThrow('no response');
    server.setSilent(2, false);
    expect(await ask(2, [3, 0, 0, 0, 1])).toEqual([3, 2, 0, 0]);
  });
});
