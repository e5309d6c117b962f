/** The alarm event log is rotated past its size limit without losing an event or an active alarm. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { activeFrom, AlarmEventLog } from '../../src/alarms/event-log.ts';
import type { AlarmEvent } from '../../src/alarms/model.ts';
import { scratchWorkspaces } from '../support/workspace.ts';

const workspace = scratchWorkspaces('octopus-alarm-log-');

function event(id: string, state: 'raised' | 'cleared', ts: number): AlarmEvent {
  return {
    event: state,
    ts,
    by: 'octopus',
    alarm: {
      id,
      key: `c1.deviation.${id}`,
      chamber: 'c1',
      class: 'deviation',
      tag: id,
      severity: 'warning',
      state,
      message: `${id} off its setpoint`,
      since: ts - 1000,
      raised_at: ts,
      ...(state === 'cleared' ? { cleared_at: ts } : {}),
    },
  };
}

const lines = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean);

describe('alarm event log rotation', () => {
  it('keeps every event in the archived logs and starts the new log with the active alarms and the newest events', () => {
    const dir = workspace({});
    const file = join(dir, 'state', 'alarms.jsonl');
    const log = new AlarmEventLog(file, { maxBytes: 8192, keep: 5 });
    const written: AlarmEvent[] = [];
    const write = (e: AlarmEvent) => {
      log.append(e);
      written.push(e);
    };
    write(event('door', 'raised', 1)); // stays active throughout
    for (let i = 0; i < 100; i++) {
      write(event(`t${i}`, 'raised', 10 + 2 * i));
      write(event(`t${i}`, 'cleared', 11 + 2 * i));
    }
    const archives = readdirSync(join(dir, 'state'))
      .filter((f) => /^alarms-\d{8}T\d{6}Z(-\d+)?\.jsonl$/.test(f))
      .sort();
    expect(archives.length).toBeGreaterThanOrEqual(2);
    // Nothing is lost: every event written is in an archive or in the current log.
    const everything = new Set([...archives.flatMap((a) => lines(join(dir, 'state', a))), ...lines(file)]);
    for (const e of written) expect(everything.has(JSON.stringify(e))).toBe(true);
    // The current log is small and still rebuilds the active alarm and the newest history.
    const { events, skipped } = log.read();
    expect(skipped).toBe(0);
    expect(readFileSync(file).length).toBeLessThanOrEqual(8192);
    expect([...activeFrom(events).keys()]).toEqual(['c1.deviation.door']);
    const newest = written.slice(-5).map((e) => JSON.stringify(e));
    expect(lines(file).slice(-5)).toEqual(newest);
  });

  it('never rotates without a size limit', () => {
    const dir = workspace({});
    const file = join(dir, 'alarms.jsonl');
    const log = new AlarmEventLog(file);
    for (let i = 0; i < 200; i++) log.append(event(`t${i}`, 'raised', i));
    expect(readdirSync(dir)).toEqual(['alarms.jsonl']);
    expect(log.read().events).toHaveLength(200);
  });
});
