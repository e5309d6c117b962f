import { createServer, type Server, type Socket } from 'node:net';

/**
 * A fast Modbus TCP server on plain sockets (modbus-serial's ServerTCP manages about
 * 1k requests/s; this one is limited by the socket). MBAP framing with several frames
 * per chunk and frames split across chunks; FC 1–6, 15, 16; exceptions 1 (function),
 * 2 (address), 3 (value). Each unit id has its own four banks; an unknown or silenced
 * unit gets no answer, like a dead device behind a gateway.
 */
export interface UnitBanks {
  coil: Uint8Array;
  discrete: Uint8Array;
  input: Uint16Array;
  holding: Uint16Array;
}

export interface WriteEvent {
  unit: number;
  area: 'coil' | 'holding';
  address: number;
  count: number;
}

export interface RunningModbusServer {
  port: number;
  unit(id: number): UnitBanks;
  setSilent(id: number, silent: boolean): void;
  /** Reads of `area` covering `address` of unit `id` answer exception 4 (server device failure) while on (fault injection). */
  setFailing(id: number, area: 'coil' | 'discrete' | 'input' | 'holding', address: number, on: boolean): void;
  onWrite(cb: (e: WriteEvent) => void): void;
  /** Requests answered since start (for benchmarks). */
  readonly requests: number;
  close(): Promise<void>;
}

/** A Modbus TCP server for simulated chambers, on `host` (default loopback only). */
export async function startModbusServer(opts: { port: number; host?: string }): Promise<RunningModbusServer> {
  const host = opts.host ?? '127.0.0.1';
  const units = new Map<number, UnitBanks>();
  const silent = new Set<number>();
  /** `<unit>:<function code>:<address>` of failing registers / bits. */
  const failing = new Set<string>();
  const fails = (id: number, pdu: Buffer): boolean => {
    if (!failing.size || pdu.length < 5 || pdu[0]! > 4) return false;
    const addr = pdu.readUInt16BE(1);
    const qty = pdu.readUInt16BE(3);
    for (let i = 0; i < qty; i++) if (failing.has(`${id}:${pdu[0]}:${addr + i}`)) return true;
    return false;
  };
  const listeners: Array<(e: WriteEvent) => void> = [];
  const sockets = new Set<Socket>();
  let requests = 0;
  const unit = (id: number): UnitBanks => {
    let u = units.get(id);
    if (!u) {
      u = {
        coil: new Uint8Array(65536),
        discrete: new Uint8Array(65536),
        input: new Uint16Array(65536),
        holding: new Uint16Array(65536),
      };
      units.set(id, u);
    }
    return u;
  };

  const handle = (sock: Socket, frame: Buffer) => {
    const tid = frame.readUInt16BE(0);
    const id = frame[6]!;
    const pdu = frame.subarray(7);
    const banks = units.get(id);
    if (!banks || silent.has(id) || pdu.length < 1) return;
    requests++;
    const reply = fails(id, pdu)
      ? exception(pdu[0]!, 4)
      : respond(banks, pdu, (e) => listeners.forEach((l) => l({ unit: id, ...e })));
    const out = Buffer.allocUnsafe(7 + reply.length);
    out.writeUInt16BE(tid, 0);
    out.writeUInt16BE(0, 2);
    out.writeUInt16BE(reply.length + 1, 4);
    out[6] = id;
    reply.copy(out, 7);
    sock.write(out);
  };

  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      let off = 0;
      while (buf.length - off >= 7) {
        const len = buf.readUInt16BE(off + 4);
        if (buf.length - off < 6 + len) break;
        handle(sock, buf.subarray(off, off + 6 + len));
        off += 6 + len;
      }
      buf = off === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(off));
    });
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new Error(`Modbus simulator: cannot listen on ${host}:${opts.port}: ${err.code ?? err.message}`)),
    );
    server.listen(opts.port, host, () => resolve());
  });
  const addr = server.address();
  return {
    port: typeof addr === 'object' && addr ? addr.port : opts.port,
    unit,
    setSilent: (id, s) => void (s ? silent.add(id) : silent.delete(id)),
    setFailing: (id, area, address, on) => {
      const key = `${id}:${{ coil: 1, discrete: 2, holding: 3, input: 4 }[area]}:${address}`;
      if (on) failing.add(key);
      else failing.delete(key);
    },
    onWrite: (cb) => void listeners.push(cb),
    get requests() {
      return requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const exception = (fc: number, code: number) => Buffer.from([fc | 0x80, code]);

/** One PDU → its response PDU. */
function respond(b: UnitBanks, pdu: Buffer, wrote: (e: Omit<WriteEvent, 'unit'>) => void): Buffer {
  const fc = pdu[0]!;
  if (pdu.length < 5) return exception(fc, 3);
  const addr = pdu.readUInt16BE(1);
  const qty = pdu.readUInt16BE(3);
  switch (fc) {
    case 1:
    case 2: {
      if (qty < 1 || qty > 2000) return exception(fc, 3);
      if (addr + qty > 65536) return exception(fc, 2);
      const bits = fc === 1 ? b.coil : b.discrete;
      const n = Math.ceil(qty / 8);
      const out = Buffer.alloc(2 + n);
      out[0] = fc;
      out[1] = n;
      for (let i = 0; i < qty; i++) if (bits[addr + i]) out[2 + (i >> 3)]! |= 1 << (i & 7);
      return out;
    }
    case 3:
    case 4: {
      if (qty < 1 || qty > 125) return exception(fc, 3);
      if (addr + qty > 65536) return exception(fc, 2);
      const regs = fc === 3 ? b.holding : b.input;
      const out = Buffer.allocUnsafe(2 + qty * 2);
      out[0] = fc;
      out[1] = qty * 2;
      for (let i = 0; i < qty; i++) out.writeUInt16BE(regs[addr + i]!, 2 + i * 2);
      return out;
    }
    case 5: {
      if (qty !== 0xff00 && qty !== 0) return exception(fc, 3);
      b.coil[addr] = qty === 0xff00 ? 1 : 0;
      wrote({ area: 'coil', address: addr, count: 1 });
      return Buffer.from(pdu.subarray(0, 5));
    }
    case 6:
      b.holding[addr] = qty;
      wrote({ area: 'holding', address: addr, count: 1 });
      return Buffer.from(pdu.subarray(0, 5));
    case 15:
    case 16: {
      const max = fc === 15 ? 1968 : 123;
      if (qty < 1 || qty > max || pdu.length < 6 + pdu[5]!) return exception(fc, 3);
      if (addr + qty > 65536) return exception(fc, 2);
      for (let i = 0; i < qty; i++) {
        if (fc === 15) b.coil[addr + i] = (pdu[6 + (i >> 3)]! >> (i & 7)) & 1;
        else b.holding[addr + i] = pdu.readUInt16BE(6 + i * 2);
      }
      wrote({ area: fc === 15 ? 'coil' : 'holding', address: addr, count: qty });
      return Buffer.from(pdu.subarray(0, 5));
    }
    default:
      return exception(fc, 1);
  }
}
