import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { ConfigIssue } from '../core/errors.ts';
import { displayPath, loadProfileFile, loadProfiles, type LoadedProfile } from '../config/profiles.ts';
import { annotateIssues, readYamlFile } from '../config/yaml-file.ts';
import { runModbusTestcases } from './modbus/testcase.ts';
import { runOpcuaTestcases } from './opcua/testcase.ts';
import { formatSegments, type TestcaseReport } from './testcase-report.ts';

/** A testcase document names its profile and lists cases; a profile has `kind`. */
export function isTestcaseDocument(data: unknown): boolean {
  return typeof data === 'object' && data !== null && !('kind' in data) && 'cases' in data;
}

/** `drivers/<kind>/testcases/<vendor>-<model>.yaml` beside a profile file. */
export function testcaseFileOf(profileFile: string): string {
  return join(dirname(profileFile), 'testcases', basename(profileFile));
}

export interface TestcaseRun {
  file: string;
  profile?: LoadedProfile;
  report?: TestcaseReport;
  /** Every problem, located in the testcase file (failed checks included). */
  issues: ConfigIssue[];
}

/** The profile a testcase file is for: `../<id>.yaml` beside its testcases folder, else any known profile. */
function findProfile(testcaseFile: string, id: string): { profile?: LoadedProfile; issues: ConfigIssue[] } {
  const beside = resolve(dirname(testcaseFile), '..', `${id}.yaml`);
  if (existsSync(beside)) return loadProfileFile(beside);
  const set = loadProfiles([resolve(dirname(testcaseFile), '..')]);
  const found = set.profiles.get(id);
  if (found) return { profile: found, issues: [] };
  return {
    issues: [
      {
        file: displayPath(testcaseFile),
        path: 'profile',
        message: `no profile "${id}" (looked for ${displayPath(beside)} and in drivers/; known: ${[...set.profiles.keys()].sort().join(', ')})`,
        got: id,
      },
    ],
  };
}

/** Runs a testcase file against its profile (given, or found from the file's `profile:`). */
export function runTestcaseFile(file: string, given?: LoadedProfile): TestcaseRun {
  const label = displayPath(file);
  const read = readYamlFile(file, label);
  if (!read.ok) return { file, issues: read.issues };
  const doc = read.data as { profile?: unknown };
  let profile = given;
  if (!profile) {
    if (typeof doc.profile !== 'string')
      return {
        file,
        issues: annotateIssues(
          [
            {
              file: label,
              path: 'profile',
              message: 'required field is missing: the <vendor>-<model> id of the profile these cases are for',
            },
          ],
          label,
          read.data,
          read.locate,
        ),
      };
    const found = findProfile(file, doc.profile);
    if (!found.profile) return { file, issues: annotateIssues(found.issues, label, read.data, read.locate) };
    if (found.issues.length) return { file, profile: found.profile, issues: found.issues };
    profile = found.profile;
  }
  const p = profile.profile;
  const report = p.kind === 'modbus' ? runModbusTestcases(p, read.data) : runOpcuaTestcases(p, read.data);
  const issues: ConfigIssue[] = [
    ...report.problems.map((x) => ({ file: label, path: formatSegments(x.path), message: x.message })),
    ...report.cases.flatMap((c) =>
      c.checks.filter((k) => !k.ok).map((k) => ({ file: label, path: formatSegments(k.path), message: k.detail })),
    ),
  ];
  return { file, profile, report, issues: annotateIssues(issues, label, read.data, read.locate) };
}

/** One line per case (`pass`/`FAIL`), and with `verbose` one line per check with expected and actual. */
export function describeRun(run: TestcaseRun, verbose: boolean): string[] {
  if (!run.report) return [];
  const lines = [`testcases ${displayPath(run.file)} (profile ${run.profile?.id}):`];
  for (const c of run.report.cases) {
    const failed = c.checks.filter((k) => !k.ok).length;
    const summary = failed
      ? `${failed} of ${c.checks.length} checks failed`
      : `${c.checks.length} check${c.checks.length === 1 ? '' : 's'}`;
    lines.push(`  ${failed ? 'FAIL' : 'pass'}  cases[${c.index}] "${c.name}": ${summary}`);
    for (const k of c.checks)
      if (verbose || !k.ok) lines.push(`        ${k.ok ? 'ok  ' : 'FAIL'}  ${k.label}: ${k.detail}`);
  }
  for (const p of run.report.problems) lines.push(`  FAIL  ${formatSegments(p.path)}: ${p.message}`);
  return lines;
}
