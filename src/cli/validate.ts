import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, EXIT_CONFIG, formatIssue, type ConfigIssue } from '../core/errors.ts';
import { loadConfig } from '../config/loader.ts';
import { displayPath, loadProfileFile, loadProfiles } from '../config/profiles.ts';
import { readYamlFile } from '../config/yaml-file.ts';
import { describeRun, isTestcaseDocument, runTestcaseFile, testcaseFileOf } from '../drivers/testcase-run.ts';

type Out = (line: string) => void;

export const VALIDATE_USAGE = `usage: octopus validate <file.yaml>… [--verbose]

Checks configuration files (config/*.yaml), device profiles (drivers/<kind>/*.yaml) and
testcase files (drivers/<kind>/testcases/*.yaml) and prints every problem at once, with
file, line, path (tags by name) and value; exit 2 when there is any.

A profile is checked for its shape (unknown fields with "did you mean"), udunits2 units,
CF standard names and their canonical units, Modbus address layout and Modicon look-alike
addresses; then its testcases (testcases/<vendor>-<model>.yaml beside it) are run and each
case printed as pass or FAIL. A testcase file is run against the profile it names.
--verbose prints every check of every case with expected and actual values.`;

export const TEST_PROFILE_USAGE = `usage: octopus test-profile <profile.yaml | vendor-model>… 

Runs a device profile's testcases (drivers/<kind>/testcases/<vendor>-<model>.yaml) through
the driver's own decode and write functions and prints every check of every case with
expected and actual values; exit 2 if the profile is invalid, a case fails, a tag has no
case, or the testcase file is missing.`;

/** Validates configuration, profile and testcase files; prints every problem; exit 2 if any. */
export function validateFiles(args: string[], out: Out, err: Out): number {
  const { values, positionals: files } = parseArgs({
    args,
    allowPositionals: true,
    options: { verbose: { type: 'boolean', short: 'v' } },
  });
  if (files.length === 0) {
    err(VALIDATE_USAGE);
    return EXIT_CONFIG;
  }
  const issues: ConfigIssue[] = [];
  for (const file of files) {
    const found = validateOne(file, values.verbose ?? false, out);
    if (found.issues.length) issues.push(...found.issues);
    else out(`ok  ${displayPath(file)}: ${found.summary}`);
  }
  return finish(issues, err);
}

/** `octopus test-profile`: a profile (file or id) and its testcases, every check printed. */
export function testProfiles(args: string[], out: Out, err: Out): number {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals.length === 0) {
    err(TEST_PROFILE_USAGE);
    return EXIT_CONFIG;
  }
  const issues: ConfigIssue[] = [];
  for (const arg of positionals) {
    let file = arg;
    if (!existsSync(arg) && /^[a-z0-9-]+$/.test(arg)) {
      const known = loadProfiles().profiles.get(arg);
      if (!known) {
        issues.push({ file: arg, path: '(file)', message: `no profile file or known profile id "${arg}"` });
        continue;
      }
      file = known.file;
    }
    const r = loadProfileFile(file);
    issues.push(...r.issues);
    if (!r.profile) continue;
    const tc = testcaseFileOf(r.profile.file);
    if (!existsSync(tc)) {
      issues.push({
        file: displayPath(r.profile.file),
        path: '(file)',
        message: `no testcases: write ${displayPath(tc)} (see drivers/${r.profile.profile.kind}/README.md)`,
      });
      continue;
    }
    const run = runTestcaseFile(tc, r.profile);
    for (const line of describeRun(run, true)) out(line);
    issues.push(...run.issues);
  }
  return finish(issues, err);
}

function finish(issues: ConfigIssue[], err: Out): number {
  for (const issue of issues) err(formatIssue(issue));
  if (issues.length) err(`${issues.length} problem${issues.length > 1 ? 's' : ''} found`);
  return issues.length ? EXIT_CONFIG : 0;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function validateOne(file: string, verbose: boolean, out: Out): { issues: ConfigIssue[]; summary?: string } {
  const read = readYamlFile(file, displayPath(file));
  if (!read.ok) return { issues: read.issues };
  if (isTestcaseDocument(read.data)) {
    const run = runTestcaseFile(file);
    for (const line of describeRun(run, verbose)) out(line);
    const cases = run.report?.cases.length ?? 0;
    return { issues: run.issues, summary: `testcases for ${run.profile?.id}: ${plural(cases, 'case')} passed` };
  }
  const isProfile = typeof read.data === 'object' && read.data !== null && 'kind' in read.data;
  if (isProfile) {
    const r = loadProfileFile(file);
    const summary = `${r.profile?.profile.kind} profile ${r.profile?.id}, ${plural(r.profile?.profile.tags.length ?? 0, 'tag')}`;
    if (!r.profile || r.issues.length) return { issues: r.issues, summary };
    const tc = testcaseFileOf(r.profile.file);
    if (!existsSync(tc))
      return {
        issues: [],
        summary: `${summary}; no testcases yet (${displayPath(tc)}, see drivers/${r.profile.profile.kind}/README.md)`,
      };
    const run = runTestcaseFile(tc, r.profile);
    for (const line of describeRun(run, verbose)) out(line);
    return { issues: run.issues, summary: `${summary}, ${plural(run.report?.cases.length ?? 0, 'testcase')} passed` };
  }
  try {
    const c = loadConfig(file, process.env);
    return {
      issues: [],
      summary: `${plural(c.chambers.length, 'chamber')} (${c.chambers.map((x) => x.chamber.id).join(', ')})`,
    };
  } catch (e) {
    if (e instanceof ConfigError) return { issues: e.issues };
    throw e;
  }
}
