/**
 * A plausible climate chamber: a diurnal temperature and light programme that a
 * controller tracks with first-order lag, humidity coupled to temperature, CO2 drawn
 * down by photosynthesis under light and topped up by injection, drying soil with
 * irrigation pulses, a door that is opened now and then, and alarms that follow.
 * Pure and deterministic for a seed: `step(simTimeMs)` advances, `value(quantity)` reads.
 */

/** The quantities a profile tag can model (its `sim:` hint). */
export const QUANTITIES = [
  'air_temperature',
  'relative_humidity',
  'co2',
  'par',
  'soil_moisture',
  'door',
  'alarm',
  'run',
  'runtime',
  'heater',
  'alarm_word',
] as const;
export type Quantity = (typeof QUANTITIES)[number];
export type Controlled = 'air_temperature' | 'relative_humidity' | 'co2' | 'par';

const HOUR = 3_600_000;

/** Faults forced on a chamber model; undefined = the model decides. */
export interface ModelFaults {
  /** Added to the reported value of a controlled quantity (its setpoint unchanged): the controller lost its hold. */
  drift: Map<Controlled, number>;
  door?: boolean;
  alarm?: boolean;
}

/** Small deterministic PRNG (mulberry32) so a seed replays the same chamber. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ChamberProgramme {
  dayStartHour: number;
  dayEndHour: number;
  dayTemperature: number;
  nightTemperature: number;
  humidity: number;
  co2: number;
  dayPar: number;
}

export const DEFAULT_PROGRAMME: ChamberProgramme = {
  dayStartHour: 6,
  dayEndHour: 22,
  dayTemperature: 25,
  nightTemperature: 18,
  humidity: 65,
  co2: 420,
  dayPar: 800,
};

export class ChamberModel {
  private readonly rnd: () => number;
  private t = 0;
  private readonly state = {
    air_temperature: 20,
    relative_humidity: 60,
    co2: 420,
    par: 0,
    soil_moisture: 32,
    heater: 0,
  };
  private readonly manual = new Map<Controlled, number>();
  private doorOpenUntil = 0;
  private alarmUntil = 0;
  private runtimeS = 0;
  running = true;
  /** Injected faults (src/sim/faults.ts): drift of a measured value, forced door and alarm states. */
  readonly faults: ModelFaults = { drift: new Map() };

  constructor(
    seed: number,
    private readonly programme: ChamberProgramme = DEFAULT_PROGRAMME,
    startMs = Date.now(),
  ) {
    this.rnd = prng(seed);
    this.t = startMs;
    const sp = (q: Controlled) => this.setpoint(q);
    this.state.air_temperature = sp('air_temperature');
    this.state.relative_humidity = sp('relative_humidity');
    this.state.co2 = sp('co2');
    this.state.par = sp('par');
  }

  /** The programme's target for a controlled quantity at the current time, or a manual setpoint. */
  setpoint(q: Controlled): number {
    const manual = this.manual.get(q);
    if (manual !== undefined) return manual;
    const p = this.programme;
    const light = this.daylight();
    switch (q) {
      case 'air_temperature':
        return p.nightTemperature + (p.dayTemperature - p.nightTemperature) * light;
      case 'relative_humidity':
        return p.humidity;
      case 'co2':
        return p.co2;
      case 'par':
        return p.dayPar * light;
    }
  }

  /** An operator (or the gateway) writes a setpoint: the controller tracks it from now on. */
  setSetpoint(q: Controlled, value: number): void {
    this.manual.set(q, value);
  }

  /** 0 at night, 1 during the day, with one-hour dawn and dusk ramps. */
  private daylight(): number {
    const h = (((this.t / HOUR) % 24) + 24) % 24;
    const { dayStartHour: a, dayEndHour: b } = this.programme;
    if (h < a || h >= b) return 0;
    return Math.min(1, h - a, b - h);
  }

  get doorOpen(): boolean {
    if (this.faults.door !== undefined) return this.faults.door;
    return this.t < this.doorOpenUntil;
  }

  get alarm(): boolean {
    if (this.faults.alarm !== undefined) return this.faults.alarm;
    const t = this.state.air_temperature - this.setpoint('air_temperature');
    return (
      this.t < this.alarmUntil ||
      Math.abs(t) > 3 ||
      (this.faults.door === undefined && this.doorOpen && this.doorOpenUntil - this.t < 60_000)
    );
  }

  /** Advances the model to `nowMs` in steps of at most 1 s of simulated time. */
  step(nowMs: number): void {
    while (this.t < nowMs) {
      const dt = Math.min(1000, nowMs - this.t);
      this.advance(dt / 1000);
      this.t += dt;
    }
  }

  private noise(amplitude: number): number {
    return (this.rnd() - 0.5) * 2 * amplitude;
  }

  private advance(dtS: number): void {
    const s = this.state;
    const perHour = dtS / 3600;
    // Door: opened about twice a day for one to three minutes.
    if (!this.doorOpen && this.rnd() < (2 * perHour) / 24) this.doorOpenUntil = this.t + 60_000 + this.rnd() * 120_000;
    // Spurious alarm (sensor fault, filter) about once a day, for five minutes.
    if (this.rnd() < perHour / 24) this.alarmUntil = this.t + 300_000;
    const open = this.doorOpen;
    const lag = (value: number, target: number, tauS: number) => value + (target - value) * Math.min(1, dtS / tauS);
    const tSp = this.setpoint('air_temperature');
    s.air_temperature = lag(s.air_temperature, open ? 21 : tSp, open ? 120 : 300) + this.noise(0.02 * Math.sqrt(dtS));
    s.heater = Math.max(0, Math.min(100, 50 + 20 * (tSp - s.air_temperature)));
    // Humidity: the controller holds its setpoint; warming above it dries the air (~4 %/K).
    const rhTarget = this.setpoint('relative_humidity') - 4 * (s.air_temperature - tSp);
    s.relative_humidity = Math.max(
      5,
      Math.min(100, lag(s.relative_humidity, open ? 50 : rhTarget, 180) + this.noise(0.1 * Math.sqrt(dtS))),
    );
    // Lamps ramp within seconds; sensor noise scales with the light level (~0 in the dark).
    const parTarget = this.running ? this.setpoint('par') : 0;
    s.par = Math.max(0, lag(s.par, parTarget, 30) + this.noise(0.005 * parTarget));
    // CO2: photosynthesis draws down under light, injection restores the setpoint.
    const drawdown = 0.02 * (s.par / 100) * dtS;
    s.co2 = Math.max(
      150,
      lag(s.co2 - drawdown, open ? 420 : this.setpoint('co2'), 240) + this.noise(0.5 * Math.sqrt(dtS)),
    );
    // Soil dries by 1 %/day, twice as fast under full light; irrigation every 12 h refills it.
    s.soil_moisture -= ((1 + s.par / 800) * dtS) / 86_400;
    if (Math.floor(this.t / (12 * HOUR)) !== Math.floor((this.t + dtS * 1000) / (12 * HOUR))) s.soil_moisture = 35;
    if (this.running) this.runtimeS += dtS;
  }

  /** The current value of a quantity, rounded as a sensor would report it. */
  value(q: Quantity): number | boolean {
    const s = this.state;
    const drift = (c: Controlled) => this.faults.drift.get(c) ?? 0;
    switch (q) {
      case 'air_temperature':
        return round(s.air_temperature + drift(q), 2);
      case 'relative_humidity':
        return round(s.relative_humidity + drift(q), 1);
      case 'co2':
        return round(s.co2 + drift(q), 1);
      case 'par':
        return round(s.par + drift(q), 1);
      case 'soil_moisture':
        return round(s.soil_moisture, 2);
      case 'heater':
        return round(s.heater, 1);
      case 'door':
        return this.doorOpen;
      case 'alarm':
        return this.alarm;
      case 'alarm_word':
        return (this.alarm ? 1 : 0) | (this.doorOpen ? 2 : 0);
      case 'run':
        return this.running;
      case 'runtime':
        return Math.floor(this.runtimeS);
    }
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

export function isQuantity(x: string): x is Quantity {
  return (QUANTITIES as readonly string[]).includes(x);
}

export function isControlled(x: string): x is Controlled {
  return x === 'air_temperature' || x === 'relative_humidity' || x === 'co2' || x === 'par';
}
