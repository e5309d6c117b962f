/**
 * Writes every alarm event into InfluxDB as a line of the `alarm` measurement
 * (influx-lines.ts) through the collector's InfluxDB sink: the line goes into the sink's
 * disk buffer, so it is batched, retried and kept while the database is away exactly like
 * the samples.
 *
 * When the buffer folder cannot be written (the sink throws and reports the write fault
 * `influx-buffer`), the lines are held in memory (at most `maxHeld`, then the oldest is
 * dropped, counted and logged) and offered again with the next event and every
 * `retryMs`; the alarm engine is never blocked or thrown at.
 */
import type { Logger } from '../core/log.ts';
import { encodeAlarmLine } from './influx-lines.ts';
import type { AlarmEvent } from './model.ts';
import type { AlarmEventSource } from './source.ts';

/** The part of the InfluxDB sink this needs (src/collector/sinks/influx/sink.ts). */
export interface LineSink {
  acceptLines(key: string, text: string): void;
}

export interface AlarmInfluxHealth {
  /** Events turned into lines and handed to the sink. */
  written: number;
  /** Lines waiting in memory because the sink's buffer cannot be written. */
  held: number;
  /** Lines dropped because more than `maxHeld` were waiting. */
  dropped: number;
  last_error?: string;
}

export interface AlarmInflux {
  health(): AlarmInfluxHealth;
  /** Unsubscribes; held lines are offered one last time. */
  close(): void;
}

export function writeAlarmsToInflux(
  source: AlarmEventSource,
  sink: LineSink,
  log: Logger,
  o: { measurement?: string; maxHeld?: number; retryMs?: number } = {},
): AlarmInflux {
  const maxHeld = o.maxHeld ?? 10_000;
  const held: Array<{ key: string; text: string }> = [];
  let written = 0;
  let dropped = 0;
  let lastError: string | undefined;
  let timer: NodeJS.Timeout | undefined;

  const flush = (): void => {
    while (held.length) {
      const h = held[0]!;
      try {
        sink.acceptLines(h.key, h.text);
      } catch (err) {
        const msg = (err as Error).message;
        if (msg !== lastError)
          log.warn(`alarm events cannot be buffered for InfluxDB (${msg}); ${held.length} held in memory`);
        lastError = msg;
        if (!timer) {
          timer = setInterval(flush, o.retryMs ?? 5000);
          timer.unref();
        }
        return;
      }
      held.shift();
      written++;
    }
    if (lastError) log.info('alarm events are buffered for InfluxDB again');
    lastError = undefined;
    clearInterval(timer);
    timer = undefined;
  };

  const unsubscribe = source.onEvent((e: AlarmEvent) => {
    let text: string;
    try {
      text = encodeAlarmLine(e, o.measurement);
    } catch (err) {
      log.error(`alarm event ${e.alarm.id} (${e.event}) cannot be encoded for InfluxDB: ${(err as Error).message}`);
      return;
    }
    held.push({ key: `alarm:${e.alarm.id}:${e.event}`, text });
    flush();
    if (held.length > maxHeld) {
      const lost = held.shift()!;
      dropped++;
      log.error(`InfluxDB alarm line dropped (more than ${maxHeld} held in memory): ${lost.text.trimEnd()}`);
    }
  });

  return {
    health: () => ({ written, held: held.length, dropped, ...(lastError ? { last_error: lastError } : {}) }),
    close() {
      unsubscribe();
      flush();
      clearInterval(timer);
      timer = undefined;
    },
  };
}
