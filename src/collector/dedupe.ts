import { readFileSync, renameSync, writeFileSync } from 'node:fs';

/**
 * Duplicate detection for data messages, per stream `(gw, ep)`: `ep` is the gateway's
 * restart epoch (a new one at every gateway start; a message replayed from the spool keeps
 * the epoch it was encoded with), `seq` numbers the messages of a gateway. Within a
 * stream a sliding window of `WINDOW` sequence numbers below the highest seen remembers
 * exactly which were seen (so reordered or redelivered messages are told apart); a
 * message older than the window is dropped and reported (`stale`).
 *
 * Poisoning: a message far ahead of its stream (more than `JUMP` above the highest seen)
 * is delivered but does not move the window until a second message confirms the jump
 * (a seq within `WINDOW` above it), so one forged far-ahead seq cannot make the real
 * messages of the stream look old. It only ever affects its own `(gw, ep)` stream.
 *
 * Legacy payloads without `ep` share the stream `(gw, "")`; there a seq far below the
 * window (≥ `RESTART_GAP`) is taken as a gateway that restarted its numbering, as before.
 */
export const WINDOW = 65_536;
export const JUMP = 1_000_000;
export const RESTART_GAP = 100_000;
/** Streams remembered (the least recently used is forgotten first). */
const MAX_STREAMS = 10_000;

/** A message's identity as stored with it in the InfluxDB disk buffer. */
export function messageKey(m: { gw: string; ep?: string; seq: number }): string {
  return JSON.stringify([m.gw, m.ep ?? '', m.seq]);
}

export function parseMessageKey(key: string): { gw: string; ep: string; seq: number } | undefined {
  try {
    const v: unknown = JSON.parse(key);
    if (
      Array.isArray(v) &&
      v.length === 3 &&
      typeof v[0] === 'string' &&
      typeof v[1] === 'string' &&
      Number.isSafeInteger(v[2])
    )
      return { gw: v[0], ep: v[1], seq: v[2] as number };
  } catch {
    // Records written before keys were stored (the chamber id): nothing to rebuild from.
  }
  return undefined;
}

export type Verdict = 'new' | 'duplicate' | 'stale' | 'unconfirmed-jump';

interface Stream {
  /** Highest confirmed seq. */
  high: number;
  /** Circular bitmap: bit `seq mod WINDOW` set = seq seen, for seq in (high - WINDOW, high]. */
  bits: Uint32Array;
  /** A far-ahead seq seen but not yet confirmed. */
  pendingJump?: number;
}

interface Snapshot {
  v: 1;
  streams: Array<[string, number, string]>;
}

export class Dedupe {
  private readonly streams = new Map<string, Stream>();
  duplicates = 0;
  stale = 0;
  jumps = 0;

  static key(gw: string, ep: string | undefined): string {
    return `${gw}\u0000${ep || ''}`;
  }

  /** Classifies a message and remembers it when it is to be delivered. */
  check(gw: string, ep: string | undefined, seq: number): Verdict {
    const key = Dedupe.key(gw, ep);
    let s = this.streams.get(key);
    if (s) {
      this.streams.delete(key);
      this.streams.set(key, s); // most recently used last
    } else {
      s = { high: seq, bits: new Uint32Array(WINDOW / 32) };
      this.set(s, seq);
      this.streams.set(key, s);
      if (this.streams.size > MAX_STREAMS) this.streams.delete(this.streams.keys().next().value!);
      return 'new';
    }
    if (seq > s.high) {
      if (seq - s.high > JUMP) {
        const p = s.pendingJump;
        if (p === undefined || seq <= p || seq - p > WINDOW) {
          s.pendingJump = seq;
          this.jumps++;
          return 'unconfirmed-jump';
        }
        // Confirmed: restart the window at the jump.
        s.high = p;
        s.bits.fill(0);
        this.set(s, p);
        s.pendingJump = undefined;
      }
      this.advance(s, seq);
      this.set(s, seq);
      return 'new';
    }
    const back = s.high - seq;
    if (back >= WINDOW) {
      if (!ep && back >= RESTART_GAP) {
        // Legacy payload without an epoch: the gateway counts from 0 again.
        s.high = seq;
        s.bits.fill(0);
        this.set(s, seq);
        return 'new';
      }
      this.stale++;
      return 'stale';
    }
    if (this.has(s, seq)) {
      this.duplicates++;
      return 'duplicate';
    }
    this.set(s, seq);
    return 'new';
  }

  /** Marks a message as already delivered (rebuilding the state from a disk buffer). */
  seen(gw: string, ep: string | undefined, seq: number): void {
    const before = [this.duplicates, this.stale, this.jumps];
    this.check(gw, ep, seq);
    [this.duplicates, this.stale, this.jumps] = before as [number, number, number];
  }

  /** Undoes `check` for a message whose delivery failed (it will come again and must then be new). */
  forget(gw: string, ep: string | undefined, seq: number): void {
    const s = this.streams.get(Dedupe.key(gw, ep));
    if (s && s.high - seq < WINDOW && seq <= s.high) s.bits[(seq & (WINDOW - 1)) >>> 5]! &= ~(1 << (seq & 31));
  }

  get size(): number {
    return this.streams.size;
  }

  /** Writes the state atomically (tmp + rename). */
  save(file: string): void {
    const snap: Snapshot = {
      v: 1,
      streams: [...this.streams].map(([k, s]) => [
        k,
        s.high,
        Buffer.from(s.bits.buffer, s.bits.byteOffset, s.bits.byteLength).toString('base64'),
      ]),
    };
    writeFileSync(`${file}.tmp`, JSON.stringify(snap));
    renameSync(`${file}.tmp`, file);
  }

  /** Loads a state written by `save`; a missing or unreadable file leaves it empty and says why. */
  load(file: string): string | undefined {
    let snap: Snapshot;
    try {
      snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      return e.code === 'ENOENT' ? undefined : `${file}: ${e.message}`;
    }
    if (snap?.v !== 1 || !Array.isArray(snap.streams)) return `${file}: not a dedupe state (v ${String(snap?.v)})`;
    for (const [k, high, b64] of snap.streams) {
      const raw = Buffer.from(b64, 'base64');
      if (typeof k !== 'string' || !Number.isSafeInteger(high) || raw.length !== WINDOW / 8)
        return `${file}: bad stream entry ${JSON.stringify(k)}`;
      const bits = new Uint32Array(WINDOW / 32);
      Buffer.from(bits.buffer).set(raw);
      this.streams.set(k, { high, bits });
    }
    return undefined;
  }

  /** Moves the top of the window to `seq`, forgetting the slots that fall out of it. */
  private advance(s: Stream, seq: number): void {
    if (seq - s.high >= WINDOW) s.bits.fill(0);
    else for (let q = s.high + 1; q <= seq; q++) s.bits[(q & (WINDOW - 1)) >>> 5]! &= ~(1 << (q & 31));
    s.high = seq;
  }

  private set(s: Stream, seq: number): void {
    s.bits[(seq & (WINDOW - 1)) >>> 5]! |= 1 << (seq & 31);
  }

  private has(s: Stream, seq: number): boolean {
    return (s.bits[(seq & (WINDOW - 1)) >>> 5]! & (1 << (seq & 31))) !== 0;
  }
}
