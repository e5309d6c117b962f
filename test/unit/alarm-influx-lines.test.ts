import { describe, expect, it } from 'vitest';
import { annotationTags, encodeAlarmLine } from '../../src/alarms/influx-lines.ts';
import { writeAlarmsToInflux } from '../../src/alarms/influx.ts';
import { createLogger } from '../../src/core/log.ts';
import { alarmEvent, TestAlarmSource } from '../support/alarm-events.ts';

const log = createLogger('test:alarm-influx');

describe('alarm events as InfluxDB line protocol (measurement alarm)', () => {
  it('one line: sorted tags chamber, class, event, severity, tag; the alarm fields; the event time in ms', () => {
    const e = alarmEvent(1, { ts: 1_764_072_000_000 });
    expect(encodeAlarmLine(e)).toBe(
      'alarm,chamber=ch01,class=deviation,event=raised,severity=critical,tag=air_temperature ' +
        'band=0.5,by="octopus",id="ch01-deviation-air_temperature-1",key="ch01/deviation/air_temperature",' +
        'message="air_temperature 23.1 degree_Celsius is 1.1 from setpoint 22 (band ±0.5) for 10 min [#1]",' +
        'setpoint=22,since=1764071400000,tags="ch01,deviation,critical,raised,air_temperature",units="degree_Celsius",value=23.1 1764072000000\n',
    );
  });

  it('acknowledged carries who and the comment; offline has no tag and no numbers', () => {
    const ack = encodeAlarmLine(alarmEvent(2, { event: 'acknowledged', by: 'api:alice' }));
    expect(ack).toContain(',by="api:alice",comment="door was open, closed it",');
    expect(ack).toContain('event=acknowledged');
    const off = encodeAlarmLine(
      alarmEvent(3, {
        class: 'offline',
        tag: undefined,
        value: undefined,
        setpoint: undefined,
        band: undefined,
        units: undefined,
        message: 'chamber ch01 offline',
      }),
    );
    expect(off).toMatch(
      /^alarm,chamber=ch01,class=offline,event=raised,severity=critical by="octopus",id="[^"]+",key="[^"]+",message="chamber ch01 offline",since=\d+,tags="ch01,offline,critical,raised" \d+\n$/,
    );
  });

  it('hostile chamber, tag and message are escaped per line protocol: one line, nothing breaks out', () => {
    const e = alarmEvent(4, {
      chamber: 'ch 1,x=y',
      tag: 'air\\',
      message: 'say "hi"\nback\\slash, a=b',
      value: Number.NaN,
    });
    const line = encodeAlarmLine(e);
    expect(line.split('\n')).toHaveLength(2);
    expect(line).toContain('chamber=ch\\ 1\\,x\\=y,');
    expect(line).toContain('tag=air\\\\ ');
    expect(line).toContain('message="say \\"hi\\"\\nback\\\\slash, a=b"');
    expect(line).not.toContain('value=');
    // The annotation tags keep their commas as separators only.
    expect(annotationTags(e)).toBe('ch 1 x=y,deviation,critical,raised,air\\');
  });
});

describe('writeAlarmsToInflux', () => {
  it('hands each event to the sink; while the sink refuses, holds the lines in memory and offers them again in order', () => {
    const source = new TestAlarmSource();
    const accepted: string[] = [];
    let refuse = true;
    const sink = {
      acceptLines(key: string, text: string) {
        if (refuse) throw new Error('influx-buffer cannot be written (EROFS)');
        accepted.push(`${key} ${text.split(' ')[0]}`);
      },
    };
    const w = writeAlarmsToInflux(source, sink, log, { maxHeld: 2, retryMs: 3_600_000 });
    source.emit(alarmEvent(1));
    source.emit(alarmEvent(2));
    source.emit(alarmEvent(3));
    expect(w.health()).toEqual({
      written: 0,
      held: 2,
      dropped: 1,
      last_error: 'influx-buffer cannot be written (EROFS)',
    });
    refuse = false;
    source.emit(alarmEvent(4, { event: 'cleared' }));
    expect(accepted.map((a) => a.split(' ')[0])).toEqual([
      'alarm:ch01-deviation-air_temperature-2:raised',
      'alarm:ch01-deviation-air_temperature-3:raised',
      'alarm:ch01-deviation-air_temperature-4:cleared',
    ]);
    expect(w.health()).toEqual({ written: 3, held: 0, dropped: 1 });
    w.close();
    expect(source.listening).toBe(0);
  });
});
