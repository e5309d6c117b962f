import type { Tag } from '../config/profile-schema.ts';
import { isControlled, isQuantity, type ChamberModel, type Controlled } from './dynamics.ts';

/**
 * Links a profile's tags to the chamber model through their `sim:` hints: a tag with
 * `sim: air_temperature` reads the model's air temperature; a setpoint tag
 * (`sim: setpoint`, `setpoint_of: <tag>`) reads and writes the target of the quantity
 * its measured tag models. The hint is optional: without one it is inferred from the
 * tag's CF standard_name, role, run_trigger and name (simHintFor), and a tag that still
 * matches nothing holds a plausible constant (the middle of min..max, 0, false) that a
 * client may overwrite, as a PLC keeps a written value. Strings keep the server's value.
 */
export interface TagBinding<T extends Tag = Tag> {
  tag: T;
  read(): number | boolean | undefined;
  /** Applies a write from a client (setpoints only); returns false when not applicable. */
  write(value: number | boolean | string): boolean;
}

/** What the CF standard names of the climate-chamber quantities are modelled as. */
const BY_STANDARD_NAME: Record<string, string> = {
  air_temperature: 'air_temperature',
  relative_humidity: 'relative_humidity',
  mole_fraction_of_carbon_dioxide_in_air: 'co2',
  mass_fraction_of_carbon_dioxide_in_air: 'co2',
  surface_downwelling_photosynthetic_photon_flux_in_air: 'par',
  downwelling_photosynthetic_photon_flux_in_sea_water: 'par',
  volume_fraction_of_condensed_water_in_soil: 'soil_moisture',
  mass_content_of_water_in_soil: 'soil_moisture',
  mass_content_of_water_in_soil_layer: 'soil_moisture',
};

/** The tag's `sim:` hint, or one inferred from its standard_name, role, run_trigger and name. */
export function simHintFor(tag: Tag): string | undefined {
  if (tag.sim) return tag.sim;
  const isBool = tag.type === 'bool' || tag.type === 'Boolean';
  if (tag.role === 'setpoint' && tag.setpoint_of) return 'setpoint';
  if (tag.standard_name && BY_STANDARD_NAME[tag.standard_name]) return BY_STANDARD_NAME[tag.standard_name];
  if (tag.run_trigger) return 'run';
  if (tag.role === 'alarm') return isBool ? 'alarm' : 'alarm_word';
  if (tag.door || (isBool && /door/.test(tag.name))) return 'door';
  if (!isBool && /runtime|run_time/.test(tag.name)) return 'runtime';
  if (!isBool && /heater|heating/.test(tag.name)) return 'heater';
  return undefined;
}

/** A plausible constant for a tag nothing models: inside min..max, else 0 (false for bools). */
function constantFor(tag: Tag): number | boolean {
  if (tag.type === 'bool' || tag.type === 'Boolean') return false;
  if (tag.min !== undefined && tag.max !== undefined) return (tag.min + tag.max) / 2;
  if (tag.min !== undefined) return Math.max(tag.min, 0);
  if (tag.max !== undefined) return Math.min(tag.max, 0);
  return 0;
}

export function bindTags<T extends Tag>(input: readonly T[], model: ChamberModel): TagBinding<T>[] {
  // Tags with their hint filled in, so a setpoint finds the quantity of its measured tag.
  const hinted = input.map((t) => ({ tag: t, withHint: { ...t, sim: simHintFor(t) } as T }));
  const byName = new Map<string, Tag>(hinted.map((h) => [h.withHint.name, h.withHint]));
  return hinted.map(({ tag: original, withHint: tag }): TagBinding<T> => {
    const controlled = controlledQuantity(tag, byName);
    if (controlled) {
      return {
        tag: original,
        read: () => model.setpoint(controlled),
        write: (v) => {
          const n = Number(v);
          if (!Number.isFinite(n)) return false;
          model.setSetpoint(controlled, n);
          return true;
        },
      };
    }
    const hint = tag.sim;
    if (hint === 'run') {
      return {
        tag: original,
        read: () => model.value('run'),
        write: (v) => ((model.running = Boolean(Number(v)) || v === true), true),
      };
    }
    if (hint && isQuantity(hint)) return { tag: original, read: () => model.value(hint), write: () => false };
    if (tag.type === 'string' || tag.type === 'String' || tag.type === 'DateTime')
      return { tag: original, read: () => undefined, write: () => false };
    let held = constantFor(tag);
    return {
      tag: original,
      read: () => held,
      write: (v) => {
        if (typeof v === 'string') return false;
        held = typeof held === 'boolean' ? v === true || Number(v) !== 0 : Number(v);
        return true;
      },
    };
  });
}

function controlledQuantity(tag: Tag, byName: Map<string, Tag>): Controlled | undefined {
  if (tag.sim !== 'setpoint' || !tag.setpoint_of) return undefined;
  const target = byName.get(tag.setpoint_of)?.sim;
  return target && isControlled(target) ? target : undefined;
}

/** A model value as the tag's type expects it (bools for boolean tags, numbers otherwise). */
export function asTagValue(value: number | boolean, wantsBoolean: boolean): number | boolean {
  if (wantsBoolean) return typeof value === 'boolean' ? value : value !== 0;
  return typeof value === 'boolean' ? (value ? 1 : 0) : value;
}
