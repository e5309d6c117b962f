import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeDir } from '../core/write-faults.ts';
import { AlarmEvent } from './model.ts';

export const alarmLogFile = (dataDir: string): string => join(dataDir, 'state', 'alarms.jsonl');

/**
 * The alarm event log: one AlarmEvent per line, appended (synchronously) before the event
 * is published, so that a restart rebuilds the active alarms and their acknowledgements
 * from it. Lines that are not valid events (a write cut short) are skipped on reading.
 */
export class AlarmEventLog {
  constructor(readonly file: string) {}

  append(e: AlarmEvent): void {
    makeDir(dirname(this.file));
    appendFileSync(this.file, `${JSON.stringify(e)}\n`, { mode: 0o600 });
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
}

/** The alarms not cleared after replaying `events` (latest state of each id), by key. */
export function activeFrom(events: readonly AlarmEvent[]): Map<string, AlarmEvent['alarm']> {
  const byId = new Map<string, AlarmEvent['alarm']>();
  for (const e of events) byId.set(e.alarm.id, e.alarm);
  const out = new Map<string, AlarmEvent['alarm']>();
  for (const a of byId.values()) if (a.state !== 'cleared') out.set(a.key, a);
  return out;
}
