import type { AlarmEvent } from '../../src/alarms/model.ts';
import type { AlarmEventSource } from '../../src/alarms/source.ts';

/** An alarm event source driven by the test (the engine's `onEvent` contract). */
export class TestAlarmSource implements AlarmEventSource {
  private readonly listeners = new Set<(e: AlarmEvent) => void>();

  onEvent(listener: (e: AlarmEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(e: AlarmEvent): void {
    for (const l of this.listeners) l(e);
  }

  get listening(): number {
    return this.listeners.size;
  }
}

/** A deviation alarm event of chamber `chamber` (`n` makes ids unique). */
export function alarmEvent(
  n: number,
  o: Partial<AlarmEvent['alarm']> & { event?: AlarmEvent['event']; ts?: number; by?: string } = {},
): AlarmEvent {
  const { event = 'raised', ts = 1_764_072_000_000 + n * 1000, by = 'octopus', ...alarm } = o;
  const state = event;
  return {
    event,
    ts,
    by,
    alarm: {
      id: `ch01-deviation-air_temperature-${n}`,
      key: 'ch01/deviation/air_temperature',
      chamber: 'ch01',
      class: 'deviation',
      tag: 'air_temperature',
      severity: 'critical',
      state,
      message: `air_temperature 23.1 degree_Celsius is 1.1 from setpoint 22 (band ±0.5) for 10 min [#${n}]`,
      since: ts - 600_000,
      raised_at: ts,
      value: 23.1,
      setpoint: 22,
      band: 0.5,
      units: 'degree_Celsius',
      ...(event === 'acknowledged'
        ? { acknowledged_at: ts, acknowledged_by: by, comment: 'door was open, closed it' }
        : {}),
      ...(event === 'cleared' ? { cleared_at: ts } : {}),
      ...alarm,
    },
  };
}
