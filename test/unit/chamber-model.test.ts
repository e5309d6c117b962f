import { describe, expect, it } from 'vitest';
import { ChamberModel } from '../../src/sim/dynamics.ts';

const HOUR = 3_600_000;
const midnight = Date.UTC(2026, 5, 1, 0, 0, 0);

/** Runs a model from midnight and records hourly readings for a day. */
function day(seed = 1) {
  const m = new ChamberModel(seed, undefined, midnight);
  const hours: Array<{ h: number; t: number; rh: number; co2: number; par: number; soil: number }> = [];
  for (let h = 0; h <= 24; h++) {
    m.step(midnight + h * HOUR);
    hours.push({
      h,
      t: m.value('air_temperature') as number,
      rh: m.value('relative_humidity') as number,
      co2: m.value('co2') as number,
      par: m.value('par') as number,
      soil: m.value('soil_moisture') as number,
    });
  }
  return { m, hours };
}

describe('simulated climate chamber', () => {
  it('follows a diurnal programme: warm and lit by day, cool and dark at night', () => {
    const { hours } = day();
    const noon = hours[13]!;
    const night = hours[3]!;
    expect(night.par).toBeLessThan(5);
    expect(noon.par).toBeGreaterThan(700);
    expect(noon.t).toBeGreaterThan(24);
    expect(night.t).toBeLessThan(19);
  });

  it('draws CO2 down under light and keeps humidity near its setpoint', () => {
    const { hours } = day();
    expect(hours[13]!.co2).toBeLessThan(hours[3]!.co2 - 5);
    for (const h of hours) expect(Math.abs(h.rh - 65)).toBeLessThan(15);
  });

  it('tracks a written setpoint with a lag', () => {
    const m = new ChamberModel(2, undefined, midnight);
    m.step(midnight + HOUR);
    m.setSetpoint('air_temperature', 30);
    expect(m.setpoint('air_temperature')).toBe(30);
    m.step(midnight + HOUR + 60_000);
    const afterMinute = m.value('air_temperature') as number;
    expect(afterMinute).toBeGreaterThan(18.5);
    expect(afterMinute).toBeLessThan(30);
    m.step(midnight + 2 * HOUR);
    expect(m.value('air_temperature')).toBeCloseTo(30, 0);
  });

  it('is deterministic for a seed and differs between seeds', () => {
    expect(day(7).hours).toEqual(day(7).hours);
    expect(day(7).hours).not.toEqual(day(8).hours);
  });

  it('opens its door and raises alarms now and then over a simulated month', () => {
    const m = new ChamberModel(3, undefined, midnight);
    let doorMinutes = 0;
    let alarmMinutes = 0;
    for (let minute = 1; minute <= 30 * 24 * 60; minute++) {
      m.step(midnight + minute * 60_000);
      if (m.value('door')) doorMinutes++;
      if (m.value('alarm')) alarmMinutes++;
    }
    expect(doorMinutes).toBeGreaterThan(30);
    expect(doorMinutes).toBeLessThan(30 * 24 * 60 * 0.05);
    expect(alarmMinutes).toBeGreaterThan(0);
  });
});
