import type { LoadedConfig } from '../config/loader.ts';
import {
  controlledVariables,
  type ControlledVariable,
  type Tolerance,
  type ToleranceOverride,
} from '../fidelity/tolerance.ts';

/** A profile tag as the alarm engine needs it. */
export interface WatchedTag {
  name: string;
  role?: string;
  setpoint_of?: string;
  door?: boolean;
  unit?: string;
}

/** What the alarm engine watches on one chamber: from its profile and its instance entry. */
export interface ChamberPlan {
  chamber: string;
  /** The chamber's poll or publishing interval: the stale period. */
  intervalMs: number;
  /**
   * The source reports a tag only when it changes (OPC UA subscription): a good value
   * holds until a sample that is not good, so stale means "not good for N periods";
   * polled sources send every tag every cycle, so stale means "no good sample for N periods".
   */
  onChange: boolean;
  /** Controlled variables (measured tag + setpoint); judged when some tier gives a band. */
  controlled: ControlledVariable[];
  profileTolerances: Readonly<Record<string, Tolerance>>;
  chamberTolerances: Readonly<Record<string, ToleranceOverride>>;
  /** Tags with `role: alarm` (PLC alarm bits and words). */
  alarmTags: string[];
  /** Tags with `door: true`. */
  doorTags: string[];
  units: Record<string, string>;
}

export function planOf(
  id: string,
  intervalMs: number,
  tags: readonly WatchedTag[],
  profileTolerances: Record<string, Tolerance> = {},
  chamberTolerances: Record<string, ToleranceOverride> = {},
  onChange = false,
): ChamberPlan {
  return {
    chamber: id,
    intervalMs,
    onChange,
    controlled: controlledVariables(tags),
    profileTolerances,
    chamberTolerances,
    alarmTags: tags.filter((t) => t.role === 'alarm').map((t) => t.name),
    doorTags: tags.filter((t) => t.door === true).map((t) => t.name),
    units: Object.fromEntries(tags.filter((t) => t.unit).map((t) => [t.name, t.unit!])),
  };
}

/** The plans of every configured chamber (tags after the instance's overrides). */
export function plansOf(loaded: Pick<LoadedConfig, 'chambers'>): ChamberPlan[] {
  return loaded.chambers.map((r) => {
    const interval =
      r.chamber.driver === 'opcua'
        ? (r.chamber.opcua.publishing_interval_ms ?? r.chamber.interval_ms)
        : r.chamber.interval_ms;
    const onChange = r.chamber.driver === 'opcua' && r.chamber.opcua.mode === 'subscription';
    return planOf(r.chamber.id, interval, r.tags, r.profile.tolerances, r.chamber.tolerances, onChange);
  });
}
