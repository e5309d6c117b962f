import { appendFileSync, existsSync, linkSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeDir } from '../core/write-faults.ts';
import { AlarmEvent } from './model.ts';

export const alarmLogFile = (dataDir: string): string => join(dataDir, 'state', 'alarms.jsonl');

export interface AlarmEventLogOptions {
  /** Size beyond which the log is rotated (default: never). */
  maxBytes?: number;
  /** Newest events the new log starts with after a rotation (besides the active alarms). */
  keep?: number;
  /** A rotation that failed (the log keeps growing; appending goes on). */
  onWarn?: (message: string) => void;
}

/**
 * The alarm event log: one AlarmEvent per line, appended (synchronously) before the event
 * is published, so that a restart rebuilds the active alarms and their acknowledgements
 * from it. Lines that are not valid events (a write cut short) are skipped on reading.
 *
 * Past `maxBytes` it is rotated: the whole log is kept beside it as
 * `alarms-<UTC time>.jsonl` (nothing is deleted: it is the record of who acknowledged
 * what) and the log starts again with the latest event of every alarm not cleared and
 * the newest `keep` events. The new log replaces the old one in one rename, so a crash
 * leaves either the old log or the new one.
 */
export class AlarmEventLog {
  private size?: number;

  constructor(
    readonly file: string,
    private readonly o: AlarmEventLogOptions = {},
  ) {}

  append(e: AlarmEvent): void {
    makeDir(dirname(this.file));
    const line = `${JSON.stringify(e)}\n`;
    this.size ??= existsSync(this.file) ? statSync(this.file).size : 0;
    appendFileSync(this.file, line, { mode: 0o600 });
    this.size += Buffer.byteLength(line);
    if (this.o.maxBytes !== undefined && this.size > this.o.maxBytes) {
      try {
        this.rotate();
      } catch (err) {
        this.size = 0; // try again after another maxBytes
        this.o.onWarn?.(`alarm event log ${this.file}: rotation failed (${(err as Error).message}); it keeps growing`);
      }
    }
  }

  /** Every readable event, oldest first, and how many lines were skipped. */
  read(): { events: AlarmEvent[]; skipped: number } {
    if (!existsSync(this.file)) return { events: [], skipped: 0 };
    const events: AlarmEvent[] = [];
    let skipped = 0;
    for (const line of readFileSync(this.file, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        const p = AlarmEvent.safeParse(JSON.parse(line));
        if (p.success) events.push(p.data);
        else skipped++;
      } catch {
        skipped++;
      }
    }
    return { events, skipped };
  }

  /** Keeps the whole log as `alarms-<time>.jsonl`; the log starts again with what a restart and the history need. */
  rotate(): string {
    const { events } = this.read();
    const latest = new Map<string, number>();
    events.forEach((e, i) => latest.set(e.alarm.id, i));
    const keep = new Set<number>();
    for (const i of latest.values()) if (events[i]!.alarm.state !== 'cleared') keep.add(i);
    for (let i = Math.max(0, events.length - (this.o.keep ?? 0)); i < events.length; i++) keep.add(i);
    const text = [...keep]
      .sort((a, b) => a - b)
      .map((i) => `${JSON.stringify(events[i])}\n`)
      .join('');
    const stamp = new Date().toISOString().replace(/[-:]|\.\d+/g, '');
    let archive = join(dirname(this.file), `alarms-${stamp}.jsonl`);
    for (let n = 2; existsSync(archive); n++) archive = join(dirname(this.file), `alarms-${stamp}-${n}.jsonl`);
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, text, { mode: 0o600 });
    linkSync(this.file, archive);
    renameSync(tmp, this.file);
    this.size = Buffer.byteLength(text);
    return archive;
  }
}

/** The alarms not cleared after replaying `events` (latest state of each id), by key. */
export function activeFrom(events: readonly AlarmEvent[]): Map<string, AlarmEvent['alarm']> {
  const byId = new Map<string, AlarmEvent['alarm']>();
  for (const e of events) byId.set(e.alarm.id, e.alarm);
  const out = new Map<string, AlarmEvent['alarm']>();
  for (const a of byId.values()) if (a.state !== 'cleared') out.set(a.key, a);
  return out;
}
