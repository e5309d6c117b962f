/**
 * The chamber variables the dashboards plot, with the UDUNITS unit their profiles give
 * (drivers/<kind>/*.yaml) and the Grafana unit id that displays it. A test checks every
 * profile declaring one of these tags uses the same unit, so a profile change that
 * would mislabel a panel fails.
 */
export interface PlottedVariable {
  tag: string;
  title: string;
  /** UDUNITS string, as in the profiles. */
  udunits: string;
  /** Grafana unit id (a built-in id or `suffix:<text>`). */
  grafana: string;
  /** The writable setpoint the value follows, when the chamber controls it. */
  setpoint?: string;
  /** Allowed deviation from the setpoint before the stat turns orange, then red (×2). */
  tolerance?: number;
}

export const CLIMATE: PlottedVariable[] = [
  {
    tag: 'air_temperature',
    title: 'Temperature',
    udunits: 'degree_Celsius',
    grafana: 'celsius',
    setpoint: 'air_temperature_setpoint',
    tolerance: 0.5,
  },
  {
    tag: 'relative_humidity',
    title: 'Humidity',
    udunits: 'percent',
    grafana: 'humidity',
    setpoint: 'relative_humidity_setpoint',
    tolerance: 3,
  },
  { tag: 'co2', title: 'CO₂', udunits: 'umol mol-1', grafana: 'ppm', setpoint: 'co2_setpoint', tolerance: 30 },
  {
    tag: 'par',
    title: 'Light (PAR)',
    udunits: 'umol m-2 s-1',
    grafana: 'suffix: µmol m⁻² s⁻¹',
    setpoint: 'par_setpoint',
    tolerance: 50,
  },
  { tag: 'soil_moisture', title: 'Soil moisture', udunits: 'percent', grafana: 'percent' },
];

/** 1/0 state tags (booleans are stored as 1/0, docs/influxdb.md). */
export const STATES = [
  { tag: 'running', title: 'Run state', on: 'running', off: 'stopped', onColor: 'green', offColor: 'text' },
  { tag: 'door_open', title: 'Door', on: 'open', off: 'closed', onColor: 'orange', offColor: 'green' },
  { tag: 'alarm_active', title: 'Alarm', on: 'ALARM', off: 'ok', onColor: 'red', offColor: 'green' },
] as const;

/** Setpoints share their variable's unit. */
export function unitOfTag(tag: string): string | undefined {
  return CLIMATE.find((v) => v.tag === tag || v.setpoint === tag)?.grafana;
}
