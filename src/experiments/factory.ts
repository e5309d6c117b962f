import { mkdirSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import type { ConfigSlice, LoadedConfig } from '../config/loader.ts';
import type { Tag } from '../config/profile-schema.ts';
import { ArchiveRoot } from './archive-root.ts';
import type { VariableInfo } from './documents.ts';
import { ExperimentStore } from './store.ts';

/** Paths of the experiments section, made absolute (relative ones are under data_dir). */
export function experimentPaths(loaded: ConfigSlice<'experiments'>): { root: string; local: string; working: string } {
  const cfg = loaded.config.experiments;
  const under = (p: string) => (isAbsolute(p) ? p : join(loaded.dataDir, p));
  return { root: under(cfg.root), local: under(cfg.local_dir), working: under(cfg.working_dir) };
}

/** The tags of a configured chamber (profile tags with the instance's overrides). */
export function tagsOfChamber(loaded: Pick<LoadedConfig, 'chambers'>): (chamber: string) => readonly Tag[] {
  const byId = new Map(loaded.chambers.map((c) => [c.chamber.id, c.tags as readonly Tag[]]));
  return (chamber) => byId.get(chamber) ?? [];
}

/** The run-trigger tag of a chamber's profile, if it has one. */
export function triggerTagOf(loaded: Pick<LoadedConfig, 'chambers'>): (chamber: string) => string | undefined {
  const tagsOf = tagsOfChamber(loaded);
  return (chamber) => tagsOf(chamber).find((t) => t.run_trigger)?.name;
}

/** The experiment store of a configuration: chambers and variables come from its profiles. */
export function createExperimentStore(loaded: ConfigSlice<'experiments' | 'facility'>): ExperimentStore {
  const paths = experimentPaths(loaded);
  // A folder under data_dir is ours to create; an absolute root is a NAS mount point and
  // is never created (writing into an unmounted mount point would fill the local disk).
  if (!isAbsolute(loaded.config.experiments.root)) mkdirSync(paths.root, { recursive: true });
  const tagsOf = tagsOfChamber(loaded);
  return new ExperimentStore(new ArchiveRoot(paths.root, paths.local), {
    chambers: () => loaded.chambers.map((c) => c.chamber.id),
    ...(loaded.config.facility.licence ? { licence: loaded.config.facility.licence } : {}),
    variables: (chambers, only) => {
      const vars = new Map<string, VariableInfo>();
      for (const c of chambers) {
        for (const t of tagsOf(c)) {
          if (only.length && !only.includes(t.name)) continue;
          if (t.type === 'string' || t.type === 'String' || t.type === 'DateTime') continue;
          const v = vars.get(t.name) ?? {
            name: t.name,
            unit: t.unit,
            standard_name: t.standard_name,
            description: t.description,
            chambers: [],
          };
          v.chambers.push(c);
          vars.set(t.name, v);
        }
      }
      return [...vars.values()];
    },
  });
}
