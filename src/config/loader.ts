import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { controlledVariables } from '../fidelity/tolerance.ts';
import { ConfigError, type ConfigIssue } from '../core/errors.ts';
import type { ResolvedModbus, ResolvedOpcua } from './resolved.ts';
import { applyEnvOverrides } from './env.ts';
import { z } from 'zod';
import { Chamber, Config } from './instance-schema.ts';
import type { ModbusTag, OpcuaTag } from './profile-schema.ts';
import { displayPath, loadProfiles, PROJECT_ROOT, type LoadedProfile } from './profiles.ts';
import { annotateIssues, readYamlFile } from './yaml-file.ts';
import { zodToIssues } from './zod-issues.ts';
import { checkStandardName, checkUnit } from '../units/check.ts';

export const DEFAULT_CONFIG = join(PROJECT_ROOT, 'config', 'default.yaml');

export type ResolvedChamber = ResolvedModbus | ResolvedOpcua;

export interface LoadedConfig {
  file: string;
  config: Config;
  /** data_dir made absolute (relative paths are relative to the working directory). */
  dataDir: string;
  profiles: Map<string, LoadedProfile>;
  chambers: ResolvedChamber[];
}

/**
 * Loads a configuration file, applies environment overrides, validates it and the
 * profiles it uses, and resolves each chamber's tags. Throws ConfigError with every
 * problem found (not only the first).
 */
export function loadConfig(
  file = process.env.OCTOPUS_CONFIG || DEFAULT_CONFIG,
  env: NodeJS.ProcessEnv = process.env,
): LoadedConfig {
  const label = displayPath(file);
  const read = readYamlFile(file, label);
  if (!read.ok) throw new ConfigError(read.issues);
  const raw = applyEnvOverrides(read.data, env);
  const parsed = Config.safeParse(raw);
  const baseDir = dirname(resolve(file));
  const located = (issues: ConfigIssue[]) => annotateIssues(issues, label, raw, read.locate);
  if (!parsed.success) {
    // Report the shape problems and, alongside, the cross-checks of every chamber
    // that is itself well-formed, so one run of `validate` shows everything.
    const shape = zodToIssues(label, parsed.error, raw, [], Config);
    const doc = (raw ?? {}) as { chambers?: unknown; profile_dirs?: unknown };
    const dirs = z.array(z.string()).safeParse(doc.profile_dirs ?? []);
    const list = Array.isArray(doc.chambers) ? doc.chambers : [];
    const entries = list.map((c, index) => ({ index, parsed: Chamber.safeParse(c) }));
    const good = entries.flatMap((e) => (e.parsed.success ? [{ index: e.index, chamber: e.parsed.data }] : []));
    const set = loadProfiles(profileDirsOf(dirs.success ? dirs.data : [], baseDir));
    throw new ConfigError(
      located([...shape, ...set.issues, ...resolveChambers(label, good, set.profiles, env, baseDir).issues]),
    );
  }
  const config = parsed.data;
  const set = loadProfiles(profileDirsOf(config.profile_dirs, baseDir));
  const resolved = resolveChambers(
    label,
    config.chambers.map((chamber, index) => ({ index, chamber })),
    set.profiles,
    env,
    baseDir,
  );
  const issues = [...set.issues, ...resolved.issues, ...checkMqtt(label, config, env, baseDir)];
  if (issues.length) throw new ConfigError(located(issues));
  return { file, config, dataDir: resolve(config.data_dir), profiles: set.profiles, chambers: resolved.chambers };
}

function profileDirsOf(dirs: string[], baseDir: string): string[] {
  return dirs.map((d) => (isAbsolute(d) ? d : resolve(baseDir, d)));
}

/** Cross-checks chambers against each other, the profiles and the environment; applies overrides. */
function resolveChambers(
  label: string,
  list: Array<{ index: number; chamber: Chamber }>,
  profiles: Map<string, LoadedProfile>,
  env: NodeJS.ProcessEnv,
  baseDir: string,
): { chambers: ResolvedChamber[]; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const chambers: ResolvedChamber[] = [];
  const seen = new Map<string, number>();
  const units = new Map<string, number>();
  for (const { index: i, chamber: c } of list) {
    const at = (f: string) => `chambers[${i}].${f}`;
    const first = seen.get(c.id);
    if (first !== undefined)
      issues.push({
        file: label,
        path: at('id'),
        message: `duplicate chamber id (first at chambers[${first}])`,
        got: c.id,
      });
    else seen.set(c.id, i);
    issues.push(...checkEndpoint(label, at('endpoint'), c.endpoint));
    issues.push(...checkCredentials(label, `chambers[${i}]`, c, env, baseDir));
    if (c.driver === 'modbus') {
      const key = `${c.endpoint}#${c.modbus.unit_id}`;
      const other = units.get(key);
      if (other !== undefined)
        issues.push({
          file: label,
          path: at('modbus.unit_id'),
          message: `unit id already used on ${c.endpoint} by chambers[${other}]`,
          got: c.modbus.unit_id,
        });
      else units.set(key, i);
    }
    const loaded = profiles.get(c.profile);
    if (!loaded) {
      const known = [...profiles.keys()].sort().join(', ') || 'none';
      issues.push({ file: label, path: at('profile'), message: `unknown profile "${c.profile}" (known: ${known})` });
      continue;
    }
    if (loaded.profile.kind !== c.driver) {
      issues.push({
        file: label,
        path: at('profile'),
        message: `profile "${c.profile}" is for ${loaded.profile.kind} but the chamber's driver is ${c.driver}`,
        got: c.profile,
      });
      continue;
    }
    const names = new Set(loaded.profile.tags.map((t) => t.name));
    for (const tag of Object.keys(c.overrides)) {
      if (!names.has(tag))
        issues.push({
          file: label,
          path: at(`overrides.${tag}`),
          message: `profile "${c.profile}" has no tag of that name`,
          got: tag,
        });
    }
    const tags = loaded.profile.tags
      .filter((t) => c.overrides[t.name]?.enabled !== false)
      .map((t) => {
        const { enabled: _enabled, ...o } = c.overrides[t.name] ?? {};
        return { ...t, ...o };
      });
    issues.push(...checkOverrideUnits(label, at('overrides'), c.overrides, tags));
    const controlled = new Set(controlledVariables(tags).map((v) => v.measured));
    for (const [key, t] of Object.entries(c.tolerances)) {
      if (!controlled.has(key))
        issues.push({
          file: label,
          path: at(`tolerances.${key}`),
          message: `not a controlled variable of profile "${c.profile}" (controlled: ${[...controlled].join(', ') || 'none'})`,
          got: key,
        });
      else if (t.band === undefined && !loaded.profile.tolerances[key])
        issues.push({
          file: label,
          path: at(`tolerances.${key}`),
          message: `profile "${c.profile}" gives no band for ${key}: give band here`,
        });
    }
    if (c.driver === 'modbus' && loaded.profile.kind === 'modbus')
      chambers.push({ chamber: c, profile: loaded.profile, tags: tags as ModbusTag[] });
    if (c.driver === 'opcua' && loaded.profile.kind === 'opcua')
      chambers.push({ chamber: c, profile: loaded.profile, tags: tags as OpcuaTag[] });
  }
  return { chambers, issues };
}

/** An override's unit and standard_name get the same udunits2 and CF checks as the profile's. */
function checkOverrideUnits(
  file: string,
  at: string,
  overrides: Chamber['overrides'],
  tags: Array<{ name: string; unit?: string; standard_name?: string }>,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  for (const t of tags) {
    const o = overrides[t.name];
    if (!o || (o.unit === undefined && o.standard_name === undefined)) continue;
    const unit = t.unit !== undefined ? checkUnit(t.unit) : undefined;
    if (o.unit !== undefined && unit && !unit.ok)
      issues.push({ file, path: `${at}.${t.name}.unit`, message: unit.message });
    if (t.standard_name !== undefined) {
      for (const [field, message] of checkStandardName(t.standard_name, t.unit, unit?.ok ? unit.unit : undefined))
        issues.push({
          file,
          path: `${at}.${t.name}.${o[field] !== undefined ? field : field === 'unit' ? 'standard_name' : 'unit'}`,
          message,
        });
    }
  }
  return issues;
}

function checkEndpoint(file: string, path: string, endpoint: string): ConfigIssue[] {
  const m = /^[a-z.]+:\/\/[^/:]*:(\d+)/.exec(endpoint);
  if (m && Number(m[1]) > 65535) return [{ file, path, message: 'port out of range (1-65535)', got: endpoint }];
  return [];
}

function checkEnv(file: string, path: string, name: string | undefined, env: NodeJS.ProcessEnv): ConfigIssue[] {
  if (name === undefined || env[name] !== undefined) return [];
  return [{ file, path, message: `credential variable ${name} is not set in the environment` }];
}

function checkFile(file: string, path: string, name: string | undefined, baseDir: string): ConfigIssue[] {
  if (name === undefined || existsSync(resolve(baseDir, name))) return [];
  return [{ file, path, message: 'file not found', got: name }];
}

function checkCredentials(
  file: string,
  at: string,
  c: Chamber,
  env: NodeJS.ProcessEnv,
  baseDir: string,
): ConfigIssue[] {
  if (c.driver !== 'opcua') return [];
  const auth = c.opcua.auth;
  if (auth.type === 'username') {
    return [
      ...checkEnv(file, `${at}.opcua.auth.username_env`, auth.username_env, env),
      ...checkEnv(file, `${at}.opcua.auth.password_env`, auth.password_env, env),
    ];
  }
  if (auth.type === 'certificate') {
    return [
      ...checkFile(file, `${at}.opcua.auth.cert_file`, auth.cert_file, baseDir),
      ...checkFile(file, `${at}.opcua.auth.key_file`, auth.key_file, baseDir),
    ];
  }
  return [];
}

function checkMqtt(file: string, config: Config, env: NodeJS.ProcessEnv, baseDir: string): ConfigIssue[] {
  const m = config.mqtt;
  if (!m.url) return [];
  return [
    ...checkEnv(file, 'mqtt.username_env', m.username_env, env),
    ...checkEnv(file, 'mqtt.password_env', m.password_env, env),
    ...checkFile(file, 'mqtt.ca_file', m.ca_file, baseDir),
    ...checkFile(file, 'mqtt.cert_file', m.cert_file, baseDir),
    ...checkFile(file, 'mqtt.key_file', m.key_file, baseDir),
  ];
}

/**
 * What a component is given of the loaded configuration: the resolved chambers, the data
 * folder and only the configuration sections it names — so each component's constructor
 * says what it reads and cannot reach into the rest.
 */
export type ConfigSlice<K extends keyof Config> = Pick<LoadedConfig, 'dataDir' | 'chambers'> & {
  config: Pick<Config, K>;
};
