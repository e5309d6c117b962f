import { crc32 } from 'node:zlib';

/**
 * One spooled message on disk. Current frames (v2):
 *
 *   [u32 magic "OSP2"][u32 bodyLength][u64 seq][u32 samples][u64 cumulativeSamples]
 *   [u32 crc32 of the 28 bytes before][u32 crc32 of body][body]
 *
 * with body = [u16 topicLength][topic utf8][payload]. The magic lets a reader find the
 * next frame after damaged bytes; the header CRC makes seq, samples and the running
 * total of samples trustworthy even when the body is damaged, so a reader knows exactly
 * which records and how many samples it lost. Frames written before (v1:
 * [u32 length][u32 crc32 of body][u32 samples][u16 topicLength][topic][payload]) are
 * still read.
 */
export interface SpoolRecord {
  seq: number;
  topic: string;
  payload: Buffer;
  samples: number;
}

export const MAGIC = 0x3250534f; // "OSP2" little-endian
export const MAGIC_BYTES = Buffer.from('OSP2', 'latin1');
export const HEADER = 36;
const HEADER_CRC_SPAN = 28;
const V1_HEADER = 8;

const u64 = (buf: Buffer, at: number) => buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * 2 ** 32;
function putU64(buf: Buffer, at: number, v: number): void {
  buf.writeUInt32LE(v % 2 ** 32, at);
  buf.writeUInt32LE(Math.floor(v / 2 ** 32), at + 4);
}

export function encodeFrame(
  seq: number,
  cumulative: number,
  topic: string,
  payload: string | Buffer,
  samples: number,
): Buffer {
  const t = Buffer.from(topic);
  const bodyLen = 2 + t.length + (typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length);
  const buf = Buffer.allocUnsafe(HEADER + bodyLen);
  buf.writeUInt32LE(MAGIC, 0);
  buf.writeUInt32LE(bodyLen, 4);
  putU64(buf, 8, seq);
  buf.writeUInt32LE(samples, 16);
  putU64(buf, 20, cumulative);
  buf.writeUInt32LE(crc32(buf.subarray(0, HEADER_CRC_SPAN)), 28);
  buf.writeUInt16LE(t.length, HEADER);
  t.copy(buf, HEADER + 2);
  if (typeof payload === 'string') buf.write(payload, HEADER + 2 + t.length);
  else payload.copy(buf, HEADER + 2 + t.length);
  buf.writeUInt32LE(crc32(buf.subarray(HEADER)), 32);
  return buf;
}

export type Decoded =
  /** A whole, valid frame. `seq`/`cumulative` are undefined for a v1 frame (its seq is its position). */
  | { kind: 'ok'; seq?: number; cumulative?: number; samples: number; topic: string; payload: Buffer; size: number }
  /** The header is valid but the body is damaged: seq, samples and size are known. */
  | { kind: 'damaged'; seq: number; cumulative: number; samples: number; size: number }
  /** Not enough bytes at hand for the frame (a torn tail, or the rest is not read yet). */
  | { kind: 'incomplete'; need: number }
  /** No valid frame starts here. */
  | { kind: 'bad' };

function headerOk(buf: Buffer, offset: number): boolean {
  return (
    buf.readUInt32LE(offset) === MAGIC &&
    crc32(buf.subarray(offset, offset + HEADER_CRC_SPAN)) === buf.readUInt32LE(offset + 28)
  );
}

/** Decodes the frame at `offset` of `buf`. */
export function decodeFrame(buf: Buffer, offset: number): Decoded {
  if (offset + 4 > buf.length) return { kind: 'incomplete', need: HEADER };
  if (buf.readUInt32LE(offset) === MAGIC) {
    if (offset + HEADER > buf.length) return { kind: 'incomplete', need: HEADER };
    if (!headerOk(buf, offset)) return { kind: 'bad' };
    const bodyLen = buf.readUInt32LE(offset + 4);
    const size = HEADER + bodyLen;
    if (offset + size > buf.length) return { kind: 'incomplete', need: size };
    const seq = u64(buf, offset + 8);
    const samples = buf.readUInt32LE(offset + 16);
    const cumulative = u64(buf, offset + 20);
    const body = buf.subarray(offset + HEADER, offset + size);
    const topicLen = bodyLen >= 2 ? body.readUInt16LE(0) : -1;
    if (topicLen < 0 || 2 + topicLen > bodyLen || crc32(body) !== buf.readUInt32LE(offset + 32))
      return { kind: 'damaged', seq, cumulative, samples, size };
    return {
      kind: 'ok',
      seq,
      cumulative,
      samples,
      topic: body.toString('utf8', 2, 2 + topicLen),
      payload: Buffer.from(body.subarray(2 + topicLen)),
      size,
    };
  }
  // A v1 frame (written by an earlier version).
  if (offset + V1_HEADER > buf.length) return { kind: 'incomplete', need: V1_HEADER };
  const bodyLen = buf.readUInt32LE(offset);
  const end = offset + V1_HEADER + bodyLen;
  if (bodyLen < 6) return { kind: 'bad' };
  if (end > buf.length) return { kind: 'incomplete', need: V1_HEADER + bodyLen };
  const body = buf.subarray(offset + V1_HEADER, end);
  if (crc32(body) !== buf.readUInt32LE(offset + 4)) return { kind: 'bad' };
  const topicLen = body.readUInt16LE(4);
  if (6 + topicLen > body.length) return { kind: 'bad' };
  return {
    kind: 'ok',
    samples: body.readUInt32LE(0),
    topic: body.toString('utf8', 6, 6 + topicLen),
    payload: Buffer.from(body.subarray(6 + topicLen)),
    size: V1_HEADER + bodyLen,
  };
}

/** Offset of the next frame with a valid header at or after `from`, or -1. */
export function nextFrame(buf: Buffer, from: number): number {
  let at = from;
  for (;;) {
    at = buf.indexOf(MAGIC_BYTES, at);
    if (at < 0 || at + HEADER > buf.length) return -1;
    if (headerOk(buf, at)) return at;
    at++;
  }
}
