import { crc32 } from 'node:zlib';

/**
 * One spooled message on disk: [u32 length][u32 crc32 of body][body], where body is
 * [u32 sampleCount][u16 topicLength][topic utf8][payload utf8]. The CRC lets a reader
 * stop at a torn tail left by a crash.
 */
export interface SpoolRecord {
  seq: number;
  topic: string;
  payload: Buffer;
  samples: number;
}

export const HEADER = 8;

export function encodeFrame(topic: string, payload: string | Buffer, samples: number): Buffer {
  const t = Buffer.from(topic);
  const p = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const bodyLen = 6 + t.length + p.length;
  const buf = Buffer.allocUnsafe(HEADER + bodyLen);
  buf.writeUInt32LE(bodyLen, 0);
  buf.writeUInt32LE(samples, HEADER);
  buf.writeUInt16LE(t.length, HEADER + 4);
  t.copy(buf, HEADER + 6);
  p.copy(buf, HEADER + 6 + t.length);
  buf.writeUInt32LE(crc32(buf.subarray(HEADER)), 4);
  return buf;
}

/** Decodes the frame at `offset`; undefined when incomplete or corrupt (a torn tail). */
export function decodeFrame(buf: Buffer, offset: number): { topic: string; payload: Buffer; samples: number; size: number } | undefined {
  if (offset + HEADER > buf.length) return undefined;
  const bodyLen = buf.readUInt32LE(offset);
  const end = offset + HEADER + bodyLen;
  if (bodyLen < 6 || end > buf.length) return undefined;
  const body = buf.subarray(offset + HEADER, end);
  if (crc32(body) !== buf.readUInt32LE(offset + 4)) return undefined;
  const topicLen = body.readUInt16LE(4);
  if (6 + topicLen > body.length) return undefined;
  return {
    samples: body.readUInt32LE(0),
    topic: body.toString('utf8', 6, 6 + topicLen),
    payload: Buffer.from(body.subarray(6 + topicLen)),
    size: HEADER + bodyLen,
  };
}
