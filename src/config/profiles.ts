import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConfigIssue } from '../core/errors.ts';
import { filesUnder } from '../core/files.ts';
import { Profile, profileId } from './profile-schema.ts';
import { lintProfile } from './profile-lint.ts';
import { annotateIssues, readYamlFile } from './yaml-file.ts';
import { zodToIssues } from './zod-issues.ts';

/** The repository root (profiles ship in <root>/drivers). */
export const PROJECT_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const BUILTIN_PROFILE_DIR = join(PROJECT_ROOT, 'drivers');

export interface LoadedProfile {
  id: string;
  file: string;
  profile: Profile;
}

export interface ProfileSet {
  profiles: Map<string, LoadedProfile>;
  issues: ConfigIssue[];
}

/** Path shown in messages: relative to the working directory when inside it. */
export function displayPath(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') ? rel : file;
}

/** Profile files under a folder: `<dir>/<kind>/*.yaml`, or `<dir>/*.yaml`; never testcases. */
export function profileFiles(dir: string): string[] {
  return filesUnder(dir, (name, depth) => depth <= 1 && name !== 'testcases').filter((f) =>
    /\.ya?ml$/.test(basename(f)),
  );
}

/** Loads and validates one profile file. */
export function loadProfileFile(file: string): { profile?: LoadedProfile; issues: ConfigIssue[] } {
  const label = displayPath(file);
  const read = readYamlFile(file, label);
  if (!read.ok) return { issues: read.issues };
  const located = (issues: ConfigIssue[]) => annotateIssues(issues, label, read.data, read.locate);
  const parsed = Profile.safeParse(read.data);
  if (!parsed.success) return { issues: located(zodToIssues(label, parsed.error, read.data, [], Profile)) };
  const profile = parsed.data;
  const issues = lintProfile(label, profile);
  const id = profileId(profile);
  const stem = basename(file).replace(/\.ya?ml$/, '');
  if (stem !== id)
    issues.push({
      file: label,
      path: 'model',
      message: `file name must be <vendor>-<model>.yaml, i.e. ${id}.yaml`,
      got: stem,
    });
  return { profile: { id, file, profile }, issues: located(issues) };
}

/** Loads every profile in the given folders (the built-in drivers/ first). */
export function loadProfiles(extraDirs: string[] = []): ProfileSet {
  const profiles = new Map<string, LoadedProfile>();
  const issues: ConfigIssue[] = [];
  for (const dir of [BUILTIN_PROFILE_DIR, ...extraDirs]) {
    for (const file of profileFiles(dir)) {
      const r = loadProfileFile(file);
      issues.push(...r.issues);
      if (!r.profile) continue;
      const prior = profiles.get(r.profile.id);
      if (prior && prior.file !== file) {
        issues.push({
          file: displayPath(file),
          path: 'model',
          message: `profile id "${r.profile.id}" is already defined in ${displayPath(prior.file)}`,
        });
        continue;
      }
      profiles.set(r.profile.id, r.profile);
    }
  }
  return { profiles, issues };
}
