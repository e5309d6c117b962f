import type { Tag } from '../config/profile-schema.ts';
import { isControlled, isQuantity, type ChamberModel, type Controlled } from './dynamics.ts';

/**
 * Links a profile's tags to the chamber model through their `sim:` hints: a tag with
 * `sim: air_temperature` reads the model's air temperature; a setpoint tag
 * (`sim: setpoint`, `setpoint_of: <tag>`) reads and writes the target of the quantity
 * its measured tag models. Tags without a known hint keep the server's initial value.
 */
export interface TagBinding<T extends Tag = Tag> {
  tag: T;
  read(): number | boolean | undefined;
  /** Applies a write from a client (setpoints only); returns false when not applicable. */
  write(value: number | boolean | string): boolean;
}

export function bindTags<T extends Tag>(tags: readonly T[], model: ChamberModel): TagBinding<T>[] {
  const byName = new Map(tags.map((t) => [t.name, t]));
  return tags.map((tag): TagBinding<T> => {
    const controlled = controlledQuantity(tag, byName);
    if (controlled) {
      return {
        tag,
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
      return { tag, read: () => model.value('run'), write: (v) => ((model.running = Boolean(Number(v)) || v === true), true) };
    }
    if (hint && isQuantity(hint)) return { tag, read: () => model.value(hint), write: () => false };
    return { tag, read: () => undefined, write: () => false };
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
